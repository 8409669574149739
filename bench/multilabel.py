#!/usr/bin/env python3
"""Multi-label benchmark: Reuters-21578 (ModApte, 90 topics) for khabar --multi-label against
scikit-learn and fastText, and nepali_news with and without class weights.

    bench/multilabel.py                 runs everything, writes the section of bench/RESULTS.md
                                        between its markers and bench/results-multilabel.json
    bench/multilabel.py --data DIR      where the corpora are (default: ../shared/data)

Needs what bench/run installs (fastText, GNU time, scikit-learn in bench/.venv; run bench/run
--quick once on a fresh machine). Builds khabar in release. Work files go to
bench/work/multilabel (git-ignored). The corpora are licensed: never commit them.

- khabar: `khabar train --multi-label --label-field labels` with default settings (one SVM per
  label, each label's threshold chosen for its F1 on 2-fold held-out scores), and with
  `--calibration-folds 0` (every threshold 0.5, the SVMs' own boundary); `khabar eval --json`.
- scikit-learn: OneVsRestClassifier(LinearSVC()) on TF-IDF word 1-2-grams (sublinear tf), its
  default decision (a score above 0), on the text prepared as bench/common.py prepares it.
- fastText: `fasttext supervised -loss ova` (one binary classifier per label), with its
  defaults and with `-epoch 25 -lr 0.5 -wordNgrams 2`; labels over a probability threshold
  (`predict-prob ... -1 T`), T the best of 0.05, 0.10, ..., 0.95 for micro-F1 on the test split
  itself: an oracle that favours fastText.

Metrics (the same definitions as `khabar eval` for multi-label models): micro precision, recall
and F1 over all (article, label) decisions; macro-F1 over the labels that some test article has
or that the model answered; subset accuracy; Hamming loss over articles x the 90 labels.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from common import measure, prepare_text, read_jsonl  # noqa: E402

KHABAR = os.path.join(REPO, "target", "release", "khabar")
VENV_PY = os.path.join(HERE, ".venv", "bin", "python")
BEGIN, END = "<!-- multilabel:begin -->", "<!-- multilabel:end -->"

SKLEARN = r"""
import json, sys, time
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC
train, test, out = sys.argv[1:4]
rows = [json.loads(l) for l in open(train, encoding="utf-8")]
tests = [json.loads(l) for l in open(test, encoding="utf-8")]
mlb = MultiLabelBinarizer()
y = mlb.fit_transform([r["labels"] for r in rows])
start = time.perf_counter()
vec = TfidfVectorizer(sublinear_tf=True, lowercase=False, token_pattern=r"\S+", ngram_range=(1, 2))
x = vec.fit_transform([r["text"] for r in rows])
clf = OneVsRestClassifier(LinearSVC(random_state=0)).fit(x, y)
fit_s = time.perf_counter() - start
start = time.perf_counter()
scores = clf.decision_function(vec.transform([r["text"] for r in tests]))
predict_s = time.perf_counter() - start
pred = [[mlb.classes_[j] for j in range(len(mlb.classes_)) if s[j] > 0] for s in scores]
json.dump({"fit_s": fit_s, "predict_s": predict_s, "predicted": pred}, open(out, "w"))
"""


def multi_metrics(gold, predicted, labels):
    """Micro P/R/F1, macro-F1, subset accuracy and Hamming loss of label sets."""
    tp, answered, support = {}, {}, {}
    for g, p in zip(gold, predicted):
        g, p = set(g), set(p)
        for l in p:
            answered[l] = answered.get(l, 0) + 1
            if l in g:
                tp[l] = tp.get(l, 0) + 1
        for l in g:
            support[l] = support.get(l, 0) + 1
    def f1(t, a, s):
        prec = t / a if a else 0.0
        rec = t / s if s else 0.0
        return 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    T, A, S = sum(tp.values()), sum(answered.values()), sum(support.values())
    seen = set(answered) | set(support)
    macro = sum(f1(tp.get(l, 0), answered.get(l, 0), support.get(l, 0)) for l in seen)
    wrong = sum(len(set(g) ^ set(p)) for g, p in zip(gold, predicted))
    return {
        "n": len(gold),
        "micro_precision": T / A if A else 0.0,
        "micro_recall": T / S if S else 0.0,
        "micro_f1": f1(T, A, S),
        "macro_f1": macro / len(seen) if seen else 0.0,
        "subset_accuracy": sum(set(g) == set(p) for g, p in zip(gold, predicted)) / len(gold),
        "hamming_loss": wrong / (len(gold) * len(labels)),
    }


def run_khabar(work, train, test, name, extra):
    model = os.path.join(work, name)
    m = measure([KHABAR, "train", "-q", "--multi-label", "--label-field", "labels",
                 "--data", train, "--out", model, *extra])
    if not m.ok:
        sys.exit(f"khabar train failed: {m.why()}")
    out = subprocess.run([KHABAR, "eval", "--json", "--label-field", "labels", "--model", model,
                          "--data", test], capture_output=True, text=True, check=True)
    e = json.loads(out.stdout)
    keys = ["n", "micro_precision", "micro_recall", "micro_f1", "macro_f1", "subset_accuracy",
            "hamming_loss"]
    r = {k: e[k] for k in keys}
    r.update(train_s=m.wall, train_rss_mib=m.rss_mib)
    return r


def run_sklearn(work, train_rows, test_rows, gold, labels):
    prep = lambda rows: [{"text": prepare_text(r["text"]), "labels": r["labels"]} for r in rows]
    paths = []
    for name, rows in (("train", prep(train_rows)), ("test", prep(test_rows))):
        p = os.path.join(work, f"sk-{name}.jsonl")
        with open(p, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        paths.append(p)
    script = os.path.join(work, "sklearn_ovr.py")
    with open(script, "w") as f:
        f.write(SKLEARN)
    out = os.path.join(work, "sk-out.json")
    m = measure([VENV_PY, script, paths[0], paths[1], out])
    if not m.ok:
        sys.exit(f"scikit-learn failed: {m.why()}")
    res = json.load(open(out))
    r = multi_metrics(gold, res["predicted"], labels)
    r.update(train_s=m.wall, fit_s=res["fit_s"], train_rss_mib=m.rss_mib)
    return r


def run_fasttext(work, train_rows, test_rows, gold, labels, name, extra):
    rows = list(train_rows)
    random.Random(0).shuffle(rows)
    train = os.path.join(work, "ft-train.txt")
    with open(train, "w", encoding="utf-8") as f:
        for r in rows:
            tags = " ".join("__label__" + l for l in r["labels"])
            f.write(f"{tags} {prepare_text(r['text'])}\n")
    test = os.path.join(work, "ft-test.txt")
    with open(test, "w", encoding="utf-8") as f:
        for r in test_rows:
            f.write(prepare_text(r["text"]) + "\n")
    model = os.path.join(work, name)
    m = measure(["fasttext", "supervised", "-input", train, "-output", model, "-loss", "ova",
                 "-thread", "2", *extra])
    if not m.ok:
        sys.exit(f"fastText failed: {m.why()}")
    out = subprocess.run(["fasttext", "predict-prob", model + ".bin", test, "-1", "0.01"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    scored = []
    for line in out:
        parts = line.split()
        scored.append([(parts[i][len("__label__"):], float(parts[i + 1]))
                       for i in range(0, len(parts) - 1, 2)])
    while len(scored) < len(gold):  # a line with nothing over 0.01 prints nothing
        scored.append([])
    best = None
    for t in [x / 20 for x in range(1, 20)]:
        pred = [[l for l, p in s if p >= t] for s in scored]
        r = multi_metrics(gold, pred, labels)
        if best is None or r["micro_f1"] > best[1]["micro_f1"]:
            best = (t, r)
    t, r = best
    r.update(threshold=t, train_s=m.wall, train_rss_mib=m.rss_mib)
    return r


def nepali(work, data):
    out = {}
    for weight in ("none", "balanced"):
        model = os.path.join(work, f"nepali-{weight}")
        m = measure([KHABAR, "train", "-q", "--skip-bad", "--class-weight", weight, "--data",
                     os.path.join(data, "nepali_news", "train.jsonl"), "--out", model])
        if not m.ok:
            sys.exit(f"khabar train (nepali_news) failed: {m.why()}")
        e = json.loads(subprocess.run(
            [KHABAR, "eval", "--json", "--skip-bad", "--model", model, "--data",
             os.path.join(data, "nepali_news", "test.jsonl")],
            capture_output=True, text=True, check=True).stdout)
        out[weight] = {"accuracy": e["accuracy"], "macro_f1": e["macro_f1"], "train_s": m.wall}
    return out


def section(res, meta):
    lines = [BEGIN, "", "## Multi-label: Reuters-21578 (ModApte, 90 topics)", "",
             f"Written by `bench/multilabel.py` ({meta['date']}, commit {meta['commit']}, "
             f"{meta['machine']}; load average {meta['load']} at the start). Train "
             f"{res['train_n']:,} articles, test {res['test_n']:,}; what each tool does and how "
             "the figures are computed: the script's header.", "",
             "| tool | config | micro-F1 | micro precision | micro recall | macro-F1 | subset "
             "accuracy | Hamming loss | train s | train peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for tool, config, r in res["runs"]:
        lines.append(
            f"| {tool} | {config} | {r['micro_f1']:.4f} | {r['micro_precision']:.4f} | "
            f"{r['micro_recall']:.4f} | {r['macro_f1']:.4f} | {r['subset_accuracy']:.4f} | "
            f"{r['hamming_loss']:.5f} | {r['train_s']:.1f} | {r['train_rss_mib']:.0f} |")
    lines += ["", "Published anchors: linear SVMs reach about 0.86-0.87 micro-F1 on this split "
              "(Joachims 1998; Yang & Liu 1999).", "",
              "## Class weights: nepali_news", "",
              "`khabar train --skip-bad --class-weight none|balanced`, `khabar eval --json` on "
              "the test split:", "", "| --class-weight | accuracy | macro-F1 | train s |",
              "|---|---|---|---|"]
    for w, r in res["nepali"].items():
        lines.append(f"| {w} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['train_s']:.1f} |")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    args = ap.parse_args()
    reuters = os.path.join(args.data, "reuters21578")
    if not os.path.isdir(reuters):
        sys.exit(f"bench/multilabel.py: the corpus is absent: no directory {reuters}")
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=REPO, check=True)
    work = os.path.join(HERE, "work", "multilabel")
    os.makedirs(work, exist_ok=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                 capture_output=True, text=True).stdout.strip(),
        "machine": f"{os.cpu_count()} cores",
        "load": round(os.getloadavg()[0], 2),
    }
    train_p, test_p = (os.path.join(reuters, f) for f in ("train.jsonl", "test.jsonl"))
    train_rows, test_rows = read_jsonl(train_p), read_jsonl(test_p)
    gold = [r["labels"] for r in test_rows]
    labels = sorted({l for r in train_rows + test_rows for l in r["labels"]})
    runs = []
    for config, extra in (("defaults (thresholds on 2 folds)", []),
                          ("--calibration-folds 0 (thresholds 0.5)", ["--calibration-folds", "0"])):
        print(f"khabar {config}", file=sys.stderr)
        runs.append(("khabar", config, run_khabar(work, train_p, test_p, config[:8].strip(), extra)))
    print("scikit-learn", file=sys.stderr)
    runs.append(("sklearn", "OvR LinearSVC, TF-IDF word 1-2",
                 run_sklearn(work, train_rows, test_rows, gold, labels)))
    for config, extra in (("ova, defaults", []),
                          ("ova, -epoch 25 -lr 0.5 -wordNgrams 2",
                           ["-epoch", "25", "-lr", "0.5", "-wordNgrams", "2"])):
        print(f"fastText {config}", file=sys.stderr)
        r = run_fasttext(work, train_rows, test_rows, gold, labels, "ft-" + str(len(runs)), extra)
        runs.append(("fastText", f"{config}, best threshold {r['threshold']:.2f}", r))
    print("nepali_news", file=sys.stderr)
    res = {"meta": meta, "train_n": len(train_rows), "test_n": len(test_rows), "runs": runs,
           "nepali": nepali(work, args.data)}
    with open(os.path.join(HERE, "results-multilabel.json"), "w") as f:
        json.dump(res, f, indent=1)
    path = os.path.join(HERE, "RESULTS.md")
    text = open(path, encoding="utf-8").read()
    new = section(res, meta)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + new + text[text.index(END) + len(END) + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + new
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(new)


if __name__ == "__main__":
    main()
