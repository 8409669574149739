#!/usr/bin/env bash
# The pretrained encoder's speed and what it costs the hybrid, on 1 thread and on all cores,
# beside bow, in one run; writes bench/ENCODER-SPEED.md.
#
#   bench/encoder_speed.sh            after a `bench/run --with-hybrid` (it reuses the bow and
#                                     hybrid models of bench/work/ag_news and l3cube_hi)
#
# 1. The encoder alone (examples/encoder_speed.rs): real pieces per second (padding not
#    counted, tokenization included) on ag_news test texts cut at 64 pieces and bbc_en test
#    texts cut at 256, the best of two rounds.
# 2. khabar predict -v (model load excluded): documents per second of the bow and hybrid
#    models on the first 300 test texts of ag_news and l3cube_hi, --threads 1 and all cores,
#    the median of 3 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
data="$repo/../shared/data"
work="$repo/bench/work"
out="$repo/bench/ENCODER-SPEED.md"
cargo build --release --quiet --example encoder_speed
cargo build --release --quiet
khabar="${CARGO_TARGET_DIR:-$repo/target}/release/khabar"
example="${CARGO_TARGET_DIR:-$repo/target}/release/examples/encoder_speed"

for c in ag_news l3cube_hi; do
    for m in bow hybrid; do
        [ -d "$work/$c/khabar-$m" ] || { echo "bench/encoder_speed.sh: no $work/$c/khabar-$m: run bench/run --with-hybrid first" >&2; exit 2; }
    done
done

rate() { # MODEL FILE THREADS... -> docs/s (median of 3)
    local model=$1 file=$2; shift 2
    for _ in 1 2 3; do
        "$khabar" predict -v --model "$model" --input "$file" "$@" 2>&1 >/dev/null |
            sed -n 's/.*(\([0-9.]*\) articles\/s.*/\1/p'
    done | sort -n | sed -n 2p
}

{
    echo "# The encoder's speed, and the hybrid's beside bow"
    echo
    echo "Written by \`bench/encoder_speed.sh\` (do not edit by hand)."
    echo
    echo "- Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD)"
    echo "- Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "## The encoder alone"
    echo
    echo '```'
    "$example" models/encoder "$data" 8000
    echo '```'
    echo
    echo "## Documents per second: bow and hybrid"
    echo
    echo "\`khabar predict -v\` on the first 300 test texts, model load excluded, median of 3 runs."
    echo
    echo "| corpus | model | 1 thread | all cores ($(nproc)) |"
    echo "|---|---|---|---|"
    for c in ag_news l3cube_hi; do
        head -n 300 "$work/$c/test.txt" > "$work/$c/speed300.txt"
        for m in bow hybrid; do
            one=$(rate "$work/$c/khabar-$m" "$work/$c/speed300.txt" --threads 1)
            all=$(rate "$work/$c/khabar-$m" "$work/$c/speed300.txt")
            echo "| $c | $m | $one | $all |"
        done
    done
    echo
    echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out"
cat "$out"
