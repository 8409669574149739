#!/usr/bin/env bash
# Rebuilds the built-in news model (this directory's config.json, tokenizer.json and
# model.safetensors) from the corpora in ../shared/data. Same data, same seed: the same bytes.
#
#   models/news/build.sh            # from the repository root; DATA=... to point elsewhere
#
# Hindi (l3cube_hi) is given three times and bbc_en four times, so that the small corpora weigh
# more next to the 33,000 English headlines of l3cube_en; duplicates count once for the n-gram
# vocabulary and IDF. labels.json maps each corpus's labels to the shared taxonomy and drops
# l3cube's mixed-topic "national"/"India" news. The n-gram table is capped at 200,000 rows (the
# most frequent) so that the bundle stays under 10 MB. Whole words and character n-grams need two
# documents, and no row is dropped after training: the model was built before those defaults
# changed (`--min-count-words 1 --keep-ngrams 0.75`), and these options keep its bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
for c in ag_news l3cube_hi l3cube_en bbc_en; do
  [ -f "$DATA/$c/train.jsonl" ] || { echo "missing $DATA/$c/train.jsonl" >&2; exit 2; }
done
cargo build --release --quiet
./target/release/khabar train \
  --seed 42 --max-ngrams 200000 --min-count-words 2 --keep-ngrams 1 --skip-bad --label-map models/news/labels.json \
  --data "$DATA/ag_news/train.jsonl" \
  --data "$DATA/l3cube_hi/train.jsonl" --data "$DATA/l3cube_hi/train.jsonl" --data "$DATA/l3cube_hi/train.jsonl" \
  --data "$DATA/l3cube_en/train.jsonl" \
  --data "$DATA/bbc_en/train.jsonl" --data "$DATA/bbc_en/train.jsonl" --data "$DATA/bbc_en/train.jsonl" --data "$DATA/bbc_en/train.jsonl" \
  --out models/news
ls -l models/news
