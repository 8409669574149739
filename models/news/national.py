#!/usr/bin/env python3
"""National news, labeled by a teacher model: the built-in model's English crime and Indian
domestic politics.

The corpora's "national" labels (l3cube_en "India", l3cube_hi "national", l3cube_pa_lpc
"National") mix topics, so labels.json drops them. Yet they hold the only English crime news
and most of the Indian domestic politics here. build.sh trains a teacher (the encoder's vector and
a linear layer, `--arch encoder`, on the mapped corpora: it reads every language alike), lets it
score these articles, and trains the built-in model on two kinds of them:

- politics: the teacher's most probable topic is politics, with a probability of at least
  MIN_SCORE;
- crime: of the topics other than international, the teacher finds crime the most probable.
  National news is news of the country itself, and the teacher, which learned its English from
  ag_news (where crime abroad is World news), scores English crime news as international first.

    national.py pool DATA OUT.jsonl              # the national articles (texts with one label only)
    national.py select POOL.jsonl PRED.jsonl OUT.jsonl   # the kept ones, with the teacher's label

PRED.jsonl is `khabar predict --input POOL.jsonl --output jsonl --top-k 11` by the teacher.
Standard library only; the same inputs give the same output.
"""
import collections
import json
import sys

# (corpus file under DATA, its national label)
SOURCES = [
    ("l3cube_en/train.jsonl", "India"),
    ("l3cube_hi/train.jsonl", "national"),
    ("l3cube_pa_lpc/train.jsonl", "National"),
]
# National news's other articles are left out: their topics have enough data of their own.
MIN_SCORE = 0.5


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_predicted(path, pred_path):
    """The rows of `path` and a teacher's predictions of them (one line each, in order)."""
    rows, preds = read(path), read(pred_path)
    if len(rows) != len(preds):
        sys.exit(f"{pred_path}: {len(preds)} predictions for {len(rows)} articles in {path}")
    return rows, preds


def pool(data, out):
    kept = []
    for name, label in SOURCES:
        rows = read(f"{data}/{name}")
        labels = collections.defaultdict(set)
        for r in rows:
            labels[r.get("text")].add(r.get("label"))
        seen = set()
        for r in rows:
            t = r.get("text")
            if r.get("label") == label and t and len(labels[t]) == 1 and t not in seen:
                seen.add(t)
                kept.append({"text": t, "source": name})
    with open(out, "w", encoding="utf-8") as f:
        for r in kept:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"national news: {len(kept)} articles", file=sys.stderr)


def select(pool_path, pred_path, out):
    rows, preds = read_predicted(pool_path, pred_path)
    counts = collections.Counter()
    with open(out, "w", encoding="utf-8") as f:
        for r, p in zip(rows, preds):
            domestic = [t["label"] for t in p["top"] if t["label"] != "international"]
            if len(domestic) + 1 != len(p["top"]):
                sys.exit(f"{pred_path}: every topic's score is needed (predict --top-k 11)")
            if p["label"] == "politics" and p["score"] >= MIN_SCORE:
                label = "politics"
            elif domestic[0] == "crime":
                label = "crime"
            else:
                continue
            counts[(r["source"].split("/")[0], label)] += 1
            f.write(json.dumps({"text": r["text"], "label": label}, ensure_ascii=False) + "\n")
    for (source, label), n in sorted(counts.items()):
        print(f"national news kept: {source} {label} {n}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "pool":
        pool(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "select":
        select(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
