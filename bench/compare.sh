#!/usr/bin/env bash
# Two khabar binaries side by side, in turns, on the shared corpora: the default model's bytes
# (model.safetensors must be identical for a change that should not change models), training
# seconds, the predictions of one model (identical or not), and one-thread prediction
# throughput (the `predict -v` figure, input repeated to ~40,000+ texts).
#
#   bench/compare.sh OLD_BINARY NEW_BINARY [ROUNDS]      (default 3 rounds; results on stdout)
#   CORPORA="ag_news bbc_en" bench/compare.sh ...        (only these corpora)
#
# Work files go to bench/work/compare (git-ignored: the corpora are licensed).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1"); new=$(realpath "$2"); rounds=${3:-3}
data=../shared/data
work=bench/work/compare
mkdir -p "$work"
corpora=${CORPORA:-"ag_news l3cube_hi l3cube_en bbc_en 20newsgroups sib200_hin_Deva sib200_eng_Latn"}
for c in $corpora; do
    test=$data/$c/test.jsonl
    [ -f "$test" ] || test=$data/$c/valid.jsonl
    python3 - "$test" "$work/$c.txt" <<'PY'
import json, sys
texts = []
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        t = " ".join(str(json.loads(line).get("text", "")).split())
    except ValueError:
        continue
    if t:
        texts.append(t)
reps = max(1, 40000 // max(1, len(texts)))
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for _ in range(reps):
        out.write("\n".join(texts) + "\n")
PY
done
echo "corpus round binary train_s model_sha predict_docs_per_s output_md5"
for c in $corpora; do
    for r in $(seq 1 "$rounds"); do
        for side in old new; do
            bin=$old; [ $side = new ] && bin=$new
            m=$work/m-$side-$c
            rm -rf "$m"
            s=$(date +%s.%N)
            "$bin" train -q --out "$m" --data "$data/$c/train.jsonl" --skip-bad >/dev/null
            e=$(date +%s.%N)
            # Both binaries predict with the old binary's model: the same input for both.
            model=$work/m-old-$c
            rate=$("$bin" predict -v --threads 1 --model "$model" --input "$work/$c.txt" \
                2>&1 >"$work/p-$side-$c.out" | grep -o '([0-9]* articles/s' | tr -dc 0-9)
            echo "$c $r $side $(echo "$e - $s" | bc) $(sha256sum "$m/model.safetensors" | cut -c1-16) $rate $(md5sum <"$work/p-$side-$c.out" | cut -c1-8)"
        done
    done
done
