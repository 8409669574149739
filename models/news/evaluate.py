#!/usr/bin/env python3
"""Measures the built-in news model on the test split of every shared corpus it was trained from.

For each test set (labels mapped with labels.json, dropped labels left out), it reports the
accuracy of the built-in model in each mode (--fast: n-grams alone; the default cascade;
--accurate: n-grams and encoder on every article), the share of articles the cascade sent to the
encoder, documents per second (`khabar predict` on the whole file, as `predict -v` reports it),
accuracy by length bucket, and, for comparison, a bow model with default settings trained on that
corpus's own train split alone (same mapped labels, seed 42). bbc_en's and masakhanews/eng's
articles are also scored cut to their first 12 or 40 words (about a headline, a lead). It also
scores data/default_model_checks.jsonl and data/test-texts (whole Hindi articles, whole English
articles from outside India, single Hindi sentences on general topics), which no model trains on.

    python3 models/news/evaluate.py [--khabar target/release/khabar] [--data ../shared/data]
        [--work bench/work/builtin] [--modes fast,cascade,accurate] [--only ag_news,bbc_en]

Run models/news/build.sh first (it cuts the corpora that come without a test split into
--work). Results: a Markdown table on stdout, and every figure in WORK/eval/results.json.
Standard library only.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Buckets of article length, in words (whitespace-separated).
BUCKETS = [(0, 20, "≤20 words"), (21, 150, "21-150"), (151, 600, "151-600"), (601, 10**9, ">600")]
# Long articles are also scored on their first words only (about a headline; a lead).
LEAD_CUTS = [12, 40]


def test_sets(data, work):
    """(name, test file, train file or None) of every test set."""
    sets = [
        ("ag_news", f"{data}/ag_news/test.jsonl", f"{data}/ag_news/train.jsonl"),
        ("l3cube_hi", f"{data}/l3cube_hi/test.jsonl", f"{data}/l3cube_hi/train.jsonl"),
        ("l3cube_en", f"{data}/l3cube_en/test.jsonl", f"{data}/l3cube_en/train.jsonl"),
        ("bbc_en", f"{data}/bbc_en/test.jsonl", f"{data}/bbc_en/train.jsonl"),
        ("l3cube_mr_lpc", f"{data}/l3cube_mr_lpc/test.jsonl", f"{data}/l3cube_mr_lpc/train.jsonl"),
        ("l3cube_pa_lpc", f"{data}/l3cube_pa_lpc/test.jsonl", f"{data}/l3cube_pa_lpc/train.jsonl"),
        ("nepali_news", f"{data}/nepali_news/test.jsonl", f"{data}/nepali_news/train.jsonl"),
        ("urdu_news", f"{data}/urdu_news/test.jsonl", f"{data}/urdu_news/train.jsonl"),
        ("sib200_eng (valid)", f"{data}/sib200_eng_Latn/valid.jsonl", f"{data}/sib200_eng_Latn/train.jsonl"),
        ("sib200_hin (valid)", f"{data}/sib200_hin_Deva/valid.jsonl", f"{data}/sib200_hin_Deva/train.jsonl"),
        ("xglue_nc_de (cut)", f"{work}/xglue_nc_de.test.jsonl", f"{work}/xglue_nc_de.train.jsonl"),
    ]
    for lang in sorted(os.listdir(f"{data}/masakhanews")):
        sets.append((f"masakhanews/{lang} (cut)", f"{work}/masakhanews_{lang}.test.jsonl",
                     f"{work}/masakhanews_{lang}.train.jsonl"))
    # The same English articles cut to their first words: a headline, a lead (a fourth element,
    # the words kept of each text).
    for words in LEAD_CUTS:
        sets.append((f"bbc_en, first {words} words", f"{data}/bbc_en/test.jsonl",
                     f"{data}/bbc_en/train.jsonl", words))
    sets.append((f"masakhanews/eng (cut), first {LEAD_CUTS[-1]} words",
                 f"{work}/masakhanews_eng.test.jsonl", f"{work}/masakhanews_eng.train.jsonl",
                 LEAD_CUTS[-1]))
    return sets


def read_mapped(path, label_map):
    """The (text, label) pairs of a JSON-lines file, labels mapped, dropped ones left out."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            label = label_map.get(d["label"], d["label"])
            if label is None or not d.get("text", "").strip():
                continue
            rows.append((d["text"], label))
    return rows


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def predict(khabar, path, extra):
    """Predicted labels of every line of `path`, and the articles/s `predict -v` reports."""
    cmd = [khabar, "predict", "--input", path, "--output", "jsonl", "--top-k", "1", "-v"] + extra
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {p.stderr}")
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    m = re.search(r"\(([\d,.]+) articles/s", p.stderr)
    speed = float(m.group(1).replace(",", "")) if m else None
    return [d["label"] for d in lines], speed, [d["score"] for d in lines]


def accuracy(rows, predicted, keep=lambda text: True):
    pairs = [(g, p) for (t, g), p in zip(rows, predicted) if keep(t)]
    return (sum(g == p for g, p in pairs) / len(pairs), len(pairs)) if pairs else (None, 0)


def bucket_of(text):
    n = len(text.split())
    for lo, hi, name in BUCKETS:
        if lo <= n <= hi:
            return name
    return BUCKETS[-1][2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--khabar", default=f"{ROOT}/target/release/khabar")
    ap.add_argument("--data", default=os.path.normpath(f"{ROOT}/../shared/data"))
    ap.add_argument("--work", default=f"{ROOT}/bench/work/builtin")
    ap.add_argument("--model", default=None, help="a bundle directory instead of the built-in model")
    ap.add_argument("--modes", default="fast,cascade,accurate")
    ap.add_argument("--only", default="", help="comma-separated test set names (prefixes)")
    ap.add_argument("--no-alone", action="store_true", help="skip the models trained on one corpus")
    args = ap.parse_args()
    label_map = json.load(open(f"{HERE}/labels.json", encoding="utf-8"))
    out_dir = f"{args.work}/eval"
    os.makedirs(out_dir, exist_ok=True)
    modes = [m for m in args.modes.split(",") if m]
    model = ["--model", args.model] if args.model else []
    flags = {"fast": ["--fast"] + model, "cascade": model, "accurate": ["--accurate"] + model}
    info = json.loads(subprocess.run([args.khabar, "info", "--json"] + model, check=True,
                                     capture_output=True, text=True).stdout)
    confident = (info.get("cascade") or {}).get("bow_alone_from")
    results = {"modes": modes, "sets": [], "bow_alone_from": confident}
    only = [o for o in args.only.split(",") if o]
    for name, test, train, *cut in test_sets(args.data, args.work):
        if only and not any(name.startswith(o) for o in only):
            continue
        if not os.path.exists(test):
            print(f"skipped {name}: {test} is absent", file=sys.stderr)
            continue
        rows = read_mapped(test, label_map)
        if cut:
            rows = [(" ".join(t.split()[:cut[0]]), label) for t, label in rows]
        safe = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
        path = f"{out_dir}/{safe}.jsonl"
        write_jsonl(path, rows)
        entry = {"name": name, "examples": len(rows), "modes": {}}
        for mode in modes:
            started = time.time()
            predicted, speed, scores = predict(args.khabar, path, flags[mode])
            acc, _ = accuracy(rows, predicted)
            buckets = {}
            for _, _, b in BUCKETS:
                a, n = accuracy(rows, predicted, lambda t, b=b: bucket_of(t) == b)
                if n:
                    buckets[b] = {"accuracy": a, "examples": n}
            entry["modes"][mode] = {"accuracy": acc, "docs_per_s": speed,
                                    "seconds": time.time() - started, "buckets": buckets}
            if mode == "fast" and confident is not None:
                # The cascade sends to the encoder what the n-grams alone are less sure of.
                entry["to_encoder"] = sum(s < confident for s in scores) / max(len(scores), 1)
            print(f"{name} {mode}: {acc:.4f} ({speed} docs/s)", file=sys.stderr)
        if not args.no_alone and train and os.path.exists(train):
            alone = f"{out_dir}/alone_{safe}"
            cmd = [args.khabar, "train", "-q", "--seed", "42", "--skip-bad", "--label-map",
                   f"{HERE}/labels.json", "--data", train, "--out", alone]
            subprocess.run(cmd, check=True, capture_output=True)
            predicted, _, _ = predict(args.khabar, path, ["--model", alone])
            entry["alone"] = accuracy(rows, predicted)[0]
            print(f"{name} alone: {entry['alone']:.4f}", file=sys.stderr)
        results["sets"].append(entry)
    # The project's own test files: the hand-written checks and data/test-texts.
    own = [("checks", "data/default_model_checks.jsonl"),
           ("Hindi articles", "data/test-texts/hi-articles.jsonl"),
           ("English articles", "data/test-texts/en-articles.jsonl"),
           ("Hindi sentences", "data/test-texts/hi-sentences.jsonl")]
    for key, file in own:
        rows = read_mapped(f"{ROOT}/{file}", {})
        for mode in modes:
            predicted, _, _ = predict(args.khabar, f"{ROOT}/{file}", flags[mode])
            right = sum(g == p for (_, g), p in zip(rows, predicted))
            missed = [f"{g} -> {p}" for (_, g), p in zip(rows, predicted) if g != p]
            results.setdefault(key, {})[mode] = {"right": right, "of": len(rows), "missed": missed}
    json.dump(results, open(f"{out_dir}/results.json", "w"), indent=2, ensure_ascii=False)

    def pct(x):
        return "–" if x is None else f"{x:.3f}"
    head = "| test set | examples | " + " | ".join(modes) + " | corpus alone (bow) | sent to the encoder |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for e in results["sets"]:
        cells = [pct(e["modes"][m]["accuracy"]) for m in modes]
        share = e.get("to_encoder")
        share = "–" if share is None else f"{100 * share:.0f}%"
        print(f"| {e['name']} | {e['examples']:,} | " + " | ".join(cells) + f" | {pct(e.get('alone'))} | {share} |")
    print()
    for key, _ in own:
        for mode in modes:
            c = results[key][mode]
            print(f"{key} ({mode}): {c['right']} of {c['of']}")


if __name__ == "__main__":
    main()
