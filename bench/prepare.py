"""Writes the work files of one corpus under bench/work/<corpus>/: the inputs each tool needs,
derived from the shared corpus (which stays where it is; these copies are temporary and
git-ignored).

- rows whose text is blank are dropped from train and test for every tool (khabar rejects them;
  the count is recorded and shown in RESULTS.md),
- khabar reads JSONL (the original file when nothing was dropped) and, for throughput, the raw
  test texts one per line,
- the peers read the prepared text (common.prepare_text): JSONL for scikit-learn, `__label__X text`
  lines for fastText, shuffled with a fixed seed,
- a throughput set: the test texts repeated until there are enough of them for a stable reading.
"""

import json
import math
import os
import random

from common import one_line, prepare_text, read_jsonl, write_jsonl

SPEED_MIN_DOCS = 20000
SPEED_MAX_CHARS = 4_000_000
ENCODER_SPEED_DOCS = 300


def split_names(corpus_dir):
    """The test split's name: test, else valid, else None (train only: see cut_folds)."""
    for test in ("test", "valid"):
        if os.path.exists(os.path.join(corpus_dir, test + ".jsonl")):
            return "train", test
    return "train", None


# A corpus with a train split only (masakhanews/*) is scored by cross-validation: its rows are
# dealt into CUT_FOLDS stratified folds with this seed, the same for every tool, and each tool
# trains once per fold on the other folds and is scored on that one. (A single cut of a fifth left
# masakhanews/eng 60 test articles: one article moved a score by 1.7 points.)
CUT_FOLDS = 5
CUT_TEST_SEED = 13


def cut_folds(rows):
    """Each row's fold (below CUT_FOLDS): each label's rows shuffled and dealt round the folds,
    each label starting where the last one stopped."""
    by_label = {}
    for i, r in enumerate(rows):
        by_label.setdefault(r["label"], []).append(i)
    rng = random.Random(CUT_TEST_SEED)
    fold, dealt = [0] * len(rows), 0
    for label in sorted(by_label):
        idx = by_label[label]
        rng.shuffle(idx)
        for i in idx:
            fold[i] = dealt % CUT_FOLDS
            dealt += 1
    return fold


def folds_of(corpus, data_dir):
    """How many times each tool trains on the corpus: CUT_FOLDS for a train split only, else 1."""
    return CUT_FOLDS if split_names(os.path.join(data_dir, corpus))[1] is None else 1


def ft_label(label):
    return "__label__" + "_".join(label.split())


def prepare(corpus, data_dir, work_dir, seed=42, fold=0):
    """The work files of `corpus` (of its fold `fold` when it has a train split only)."""
    src = os.path.join(data_dir, corpus)
    train_name, test_name = split_names(src)
    # The work files and every tool's model go here: a fold of its own for a train split only.
    out = os.path.join(work_dir, corpus)
    if test_name is None:
        out = os.path.join(out, "fold%d" % fold)
    os.makedirs(out, exist_ok=True)
    info = {"corpus": corpus, "test_split": test_name, "files": {}, "dir": out}
    files = info["files"]

    def path(name):
        return os.path.join(out, name)

    cut = None
    if test_name is None:
        # Train only: the fold's rows are the test split, the other folds' the training split,
        # written as the "original" files of both roles.
        rows = read_jsonl(os.path.join(src, "train.jsonl"))
        folds = cut_folds(rows)
        cut = {"train": [r for r, f in zip(rows, folds) if f != fold],
               "test": [r for r, f in zip(rows, folds) if f == fold]}
        info["test_split"] = "fold %d of %d (stratified, seed %d)" % (fold, CUT_FOLDS, CUT_TEST_SEED)
        info["fold"], info["folds"] = fold, CUT_FOLDS
        for role in ("train", "test"):
            write_jsonl(path("%s.cut.jsonl" % role), cut[role])

    splits = {}
    for role, name in (("train", train_name), ("test", test_name)):
        if cut is not None:
            original = path("%s.cut.jsonl" % role)
        else:
            original = os.path.join(src, name + ".jsonl")
        rows = read_jsonl(original)
        kept = [r for r in rows if r["text"].strip()]
        info["%s_rows" % role] = len(kept)
        info["%s_blank_dropped" % role] = len(rows) - len(kept)
        files["%s_original" % role] = original
        if len(kept) == len(rows):
            files["%s_jsonl" % role] = original
        else:
            files["%s_jsonl" % role] = path("%s.nonblank.jsonl" % role)
            write_jsonl(files["%s_jsonl" % role], kept)
        splits[role] = kept

    train, test = splits["train"], splits["test"]
    # Test texts given in train too (the same string): scored apart as well, since a model can
    # answer them from memory (l3cube_en's test split repeats 1,672 of its training headlines).
    train_texts = set(r["text"] for r in train)
    info["seen_in_train"] = sorted(i for i, r in enumerate(test) if r["text"] in train_texts)
    info["seen_texts"] = set(test[i]["text"] for i in info["seen_in_train"])
    labels_to_ft = {}
    for r in train + test:
        labels_to_ft[r["label"]] = ft_label(r["label"])
    if len(set(labels_to_ft.values())) != len(labels_to_ft):
        raise SystemExit("%s: labels collide once spaces become '_'" % corpus)
    info["labels"] = sorted(set(r["label"] for r in train))
    with open(path("ft_labels.json"), "w", encoding="utf-8") as f:
        json.dump({v: k for k, v in labels_to_ft.items()}, f, ensure_ascii=False)
    files["ft_labels"] = path("ft_labels.json")

    # Throughput set of the models that read the encoder (about 100 times slower): the first
    # test texts, not repeated.
    with open(path("speed_encoder.txt"), "w", encoding="utf-8") as f:
        f.writelines(one_line(r["text"]) + "\n" for r in test[:ENCODER_SPEED_DOCS])
    files["speed_encoder_txt"] = path("speed_encoder.txt")
    info["speed_encoder_docs"] = min(len(test), ENCODER_SPEED_DOCS)

    # Throughput set: the test texts, repeated.
    chars = sum(len(r["text"]) for r in test)
    repeat = max(1, math.ceil(min(SPEED_MIN_DOCS / len(test), SPEED_MAX_CHARS / max(chars, 1))))
    info["speed_docs"] = repeat * len(test)
    info["speed_repeat"] = repeat

    raw_test = [one_line(r["text"]) for r in test]
    with open(path("test.txt"), "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in raw_test)
    with open(path("speed.txt"), "w", encoding="utf-8") as f:
        for _ in range(repeat):
            f.writelines(t + "\n" for t in raw_test)
    files["test_txt"] = path("test.txt")
    files["speed_txt"] = path("speed.txt")

    # Peers: prepared text.
    p_train = [{"text": prepare_text(r["text"]), "label": r["label"]} for r in train]
    p_test = [{"text": prepare_text(r["text"]), "label": r["label"]} for r in test]
    write_jsonl(path("peer_train.jsonl"), p_train)
    write_jsonl(path("peer_test.jsonl"), p_test)
    with open(path("peer_speed.txt"), "w", encoding="utf-8") as f:
        for _ in range(repeat):
            f.writelines(r["text"] + "\n" for r in p_test)
    files["peer_train"] = path("peer_train.jsonl")
    files["peer_test"] = path("peer_test.jsonl")
    files["peer_speed"] = path("peer_speed.txt")

    ft_lines = ["%s %s\n" % (labels_to_ft[r["label"]], r["text"]) for r in p_train]
    random.Random(seed).shuffle(ft_lines)
    cut = max(1, len(ft_lines) // 10)
    for name, lines in (
        ("ft_train.txt", ft_lines),
        ("ft_valid10.txt", ft_lines[:cut]),
        ("ft_train90.txt", ft_lines[cut:]),
    ):
        with open(path(name), "w", encoding="utf-8") as f:
            f.writelines(lines)
    with open(path("ft_test.txt"), "w", encoding="utf-8") as f:
        f.writelines(r["text"] + "\n" for r in p_test)
    with open(path("ft_one.txt"), "w", encoding="utf-8") as f:
        f.write(p_test[0]["text"] + "\n")
    files["ft_train"] = path("ft_train.txt")
    files["ft_train90"] = path("ft_train90.txt")
    files["ft_valid10"] = path("ft_valid10.txt")
    files["ft_test"] = path("ft_test.txt")
    files["ft_speed"] = path("peer_speed.txt")
    files["ft_one"] = path("ft_one.txt")
    info["test_labels"] = [r["label"] for r in test]
    return info
