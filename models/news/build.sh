#!/usr/bin/env bash
# Rebuilds the built-in news model (this directory's config.json, tokenizer.json and
# model.safetensors) from the corpora in ../shared/data: a hybrid (khabar's bow n-grams plus the
# encoder in models/encoder), trained on every shared corpus whose labels map onto the built-in
# taxonomy. labels.json says how each corpus's labels map (null drops that label's examples).
#
#   models/news/build.sh            # from the repository root; DATA=... to point elsewhere
#
# Corpora that come without a test split (masakhanews/*, xglue_nc_de) are cut here, line by line:
# every fifth line is kept out of training for the test tables in README.md, the others are
# trained on. The cuts go to $WORK (default bench/work/builtin, not part of the repository).
# Encoding the 60,000 training texts takes about half an hour on 2 cores the first time (29
# minutes on 2026-12-05); the vectors are kept in $CACHE (default bench/work/encoder-cache), so a
# rebuild on the same data only trains (two teachers, about two minutes each, then the model,
# about four). OUT=DIR writes the model elsewhere. Same data, same seed, same machine: the same
# bytes.
#
# OMIT="NAME ..." leaves sources out of training (the teachers' and the model's), to measure the
# model on a source it has never seen: a corpus named in CORPORA, l3cube_en, masakhanews_LANG,
# xglue_nc_de, news, news-extra-en, news-extra-hi, ag_news, national or leads. For example
#   OMIT="bbc_en masakhanews_eng leads" WORK=/tmp/unseen OUT=/tmp/unseen/model models/news/build.sh
# then score /tmp/unseen/model on bbc_en's test split and /tmp/unseen/masakhanews_eng.test.jsonl.
# Derived sources read their corpora whatever OMIT says: leave out leads with bbc_en or
# masakhanews_eng, and national with l3cube_en, l3cube_hi or l3cube_pa_lpc.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
WORK=${WORK:-bench/work/builtin}
CACHE=${CACHE:-bench/work/encoder-cache}
OMIT=" ${OMIT:-} "
args=()
add() { # NAME FILE: FILE is trained on, unless NAME is in $OMIT
  case "$OMIT" in
    *" $1 "*) echo "left out (OMIT): $1 ($2)" >&2 ;;
    *) args+=(--data "$2") ;;
  esac
}
OUT=${OUT:-models/news}
CORPORA="ag_news l3cube_hi bbc_en l3cube_mr_lpc l3cube_pa_lpc nepali_news urdu_news sib200_eng_Latn sib200_hin_Deva"
for c in $CORPORA; do
  [ -f "$DATA/$c/train.jsonl" ] || { echo "missing $DATA/$c/train.jsonl" >&2; exit 2; }
done
[ -f "$DATA/xglue_nc_de/dev.jsonl" ] || { echo "missing $DATA/xglue_nc_de/dev.jsonl" >&2; exit 2; }
mkdir -p "$WORK"
cut_file() { # source name: every fifth line to NAME.test.jsonl, the rest to NAME.train.jsonl
  awk 'NR % 5 != 0' "$1" > "$WORK/$2.train.jsonl"
  awk 'NR % 5 == 0' "$1" > "$WORK/$2.test.jsonl"
}
# l3cube_en's train split has 1,592 "trending" headlines that come with more than one label,
# many of them hundreds of times, under unrelated labels (12,554 of its 36,857 rows): a text that
# comes with more than one label is left out (needs python3).
[ -f "$DATA/l3cube_en/train.jsonl" ] || { echo "missing $DATA/l3cube_en/train.jsonl" >&2; exit 2; }
python3 - "$DATA/l3cube_en/train.jsonl" "$WORK/l3cube_en.train.jsonl" <<'PY'
import collections, json, sys
rows = open(sys.argv[1], encoding="utf-8").readlines()
labels = collections.defaultdict(set)
for line in rows:
    d = json.loads(line)
    labels[d.get("text")].add(d.get("label"))
kept = [l for l in rows if len(labels[json.loads(l).get("text")]) == 1]
open(sys.argv[2], "w", encoding="utf-8").writelines(kept)
print(f"l3cube_en: kept {len(kept)} of {len(rows)} rows (texts with one label only)", file=sys.stderr)
PY
# ag_news comes in below, once refine.py has given it finer labels.
for c in $CORPORA; do [ "$c" = ag_news ] || add "$c" "$DATA/$c/train.jsonl"; done
add l3cube_en "$WORK/l3cube_en.train.jsonl"
for d in "$DATA"/masakhanews/*/; do
  lang=$(basename "$d")
  cut_file "$d/train.jsonl" "masakhanews_$lang"
  add "masakhanews_$lang" "$WORK/masakhanews_$lang.train.jsonl"
done
cut_file "$DATA/xglue_nc_de/dev.jsonl" xglue_nc_de
add xglue_nc_de "$WORK/xglue_nc_de.train.jsonl"
# The project's own corpora, written for it (data/news's test split stays out): data/news-extra
# holds the topics that the shared corpora lack in English or in Hindi (crime, lifestyle, ...).
add news data/news/train.jsonl
add news-extra-en data/news-extra/en.jsonl
add news-extra-hi data/news-extra/hi.jsonl
cargo build --release --quiet
khabar="${CARGO_TARGET_DIR:-target}/release/khabar"
# ag_news's four labels, refined by a teacher trained on everything else: its World news holds
# every country's own politics, which this taxonomy files as politics; and by hand for its crime
# and car news (ag_news_by_hand.tsv; refine.py says why). A quarter of it is trained on (every
# fourth article, and all those read by hand): with all 12,000, 2004 wire news under four labels
# taught the n-grams what holds only for ag_news, and English news from sources the model never
# saw lost 7 to 11 points (bench/NOTES.md, twentieth round). AG_NEWS_EVERY=1 builds with all.
"$khabar" train --arch encoder --max-tokens 128 --seed 42 --skip-bad --cv-copies-together \
  --label-map models/news/labels.json --cache-dir "$CACHE" "${args[@]}" --out "$WORK/teacher-ag"
"$khabar" predict --model "$WORK/teacher-ag" --input "$DATA/ag_news/train.jsonl" --output jsonl \
  --top-k 1 --cache-dir "$CACHE" > "$WORK/ag_news.pred.jsonl"
python3 models/news/refine.py "$DATA/ag_news/train.jsonl" "$WORK/ag_news.pred.jsonl" \
  "$WORK/ag_news.train.jsonl" --every "${AG_NEWS_EVERY:-4}"
add ag_news "$WORK/ag_news.train.jsonl"
# National news (labels.json drops it: it mixes topics) labeled by a teacher, the encoder and a
# linear layer trained on the rest: its crime and politics articles (national.py says why).
"$khabar" train --arch encoder --max-tokens 128 --seed 42 --skip-bad --cv-copies-together \
  --label-map models/news/labels.json --cache-dir "$CACHE" "${args[@]}" --out "$WORK/teacher"
python3 models/news/national.py pool "$DATA" "$WORK/national.pool.jsonl"
"$khabar" predict --model "$WORK/teacher" --input "$WORK/national.pool.jsonl" --output jsonl \
  --top-k 11 --cache-dir "$CACHE" > "$WORK/national.pred.jsonl"
python3 models/news/national.py select "$WORK/national.pool.jsonl" "$WORK/national.pred.jsonl" \
  "$WORK/national.train.jsonl"
add national "$WORK/national.train.jsonl"
# English news from outside India comes only as whole articles: their leads, as short texts
# (leads.py says why).
python3 models/news/leads.py "$WORK/leads.train.jsonl" "$DATA/bbc_en/train.jsonl" \
  "$WORK/masakhanews_eng.train.jsonl"
add leads "$WORK/leads.train.jsonl"
# The cascade's thresholds: --cascade-keep 0.7, the lowest that loses at most a tenth of a point
# on the cross-validated scores (on the whole, and on texts of up to 30 words alone) and leaves
# the encoder 70% of the documents on which the two ways differ. Up to session 22 this was 0
# (the tolerance alone): its threshold moves with small changes in the data (0.531 in session
# 20's build, 0.470 with 14 Hindi items more), where 0.7 gave 0.550 and ag_news's default mode
# about 390 articles a second (bench/NOTES.md, twenty-third round). The default of 0.9 sent
# 12.6% of ag_news's test articles to the encoder in session 17 (362 a second on the Intel Xeon
# VM). CASCADE_KEEP=... builds with another.
# --cv-copies-together: the built-in model's cross-validation keeps a text given more than once
# in one fold (the default deals copies apart, as a random test split does; this data holds the
# same article in more than one corpus, and the model was built so up to session 23).
# CV_BY_SOURCE=1 fits the weights on folds that hold out whole --data files (train
# --cv-by-source; the cascade is still fitted on stratified folds). On those the n-grams alone
# beat both parts, so the tolerance alone (CASCADE_KEEP=0) lets them answer everything; with
# CASCADE_KEEP=0.5 the threshold was about 0.54. Measured, not adopted: by default within an article or two of this
# model on the proxies and in domain (bench/NOTES.md, twenty-second round).
"$khabar" train --arch hybrid --max-tokens 128 --cascade-keep "${CASCADE_KEEP:-0.7}" --cv-copies-together \
  --seed 42 --max-ngrams 200000 --skip-bad --label-map models/news/labels.json \
  --cache-dir "$CACHE" ${CV_BY_SOURCE:+--cv-by-source} "${args[@]}" --out "$OUT"
ls -l "$OUT"
