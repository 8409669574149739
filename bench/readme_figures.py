#!/usr/bin/env python3
"""Measures the figures the README quotes in its prose and checks them against it.

    bench/readme_figures.py            measure, compare, exit 1 if the README differs
    bench/readme_figures.py --write    measure and write the figures into README.md
    bench/readme_figures.py --only calibration      one figure (by name; see FIGURES)

The README's example outputs are checked by `cargo test --release --test readme`, and its
benchmark table is written by `bench/run`; this script covers the figures in between: the
built-in model's size, calibration errors, the label-map example, class weights, the memory
training takes. Most need the shared corpora (../shared/data; they are licensed and not in the
repository): a figure whose corpus is absent is skipped, and says so. Builds khabar in release
first. Models go to bench/work/readme-figures/ (git-ignored). Standard library only.
"""

import argparse
import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "..", "shared", "data")
WORK = os.path.join(REPO, "bench", "work", "readme-figures")
KHABAR = os.path.join(REPO, "target", "release", "khabar")


def khabar(*args, quiet=True):
    """Runs khabar; its standard output."""
    cmd = [KHABAR, *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"readme_figures: `{' '.join(cmd)}` failed:\n{out.stderr}")
    return out.stdout


def peak_rss_mib(*args):
    """Runs khabar under GNU time; its peak resident memory in MiB."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", KHABAR, *args],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"readme_figures: khabar {' '.join(args)} failed:\n{out.stderr}")
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def data(*parts):
    return os.path.join(DATA, *parts)


def train_eval(corpus, name, *options):
    """Trains with the default settings plus `options` on a corpus's train split (skipping bad
    rows) and evaluates on its test split: eval's JSON."""
    out = os.path.join(WORK, name)
    khabar("train", "-q", "--skip-bad", "--data", data(corpus, "train.jsonl"), "--out", out,
           *options)
    return json.loads(khabar("eval", "--json", "--skip-bad", "--model", out,
                             "--data", data(corpus, "test.jsonl")))


def f3(x):
    return f"{x:.3f}"


def thousands(n):
    return f"{n:,}"


def builtin():
    info = json.loads(khabar("info", "--json"))
    encoder = sum(os.path.getsize(os.path.join(REPO, "models", "encoder", f))
                  for f in ("encoder.safetensors", "tokenizer.json"))
    examples = info["config"]["training"]["train_examples"]
    return {
        "ngrams_mb": f"{info['sizes']['bytes_on_disk'] / 1e6:.1f}",
        "encoder_mb": f"{encoder / 1e6:.0f}",
        "examples": thousands(round(examples, -3)),
    }


def calibration():
    got = {}
    for corpus, key in (("ag_news", "ag"), ("l3cube_hi", "hi"), ("bbc_en", "bbc")):
        got[key] = f3(train_eval(corpus, corpus)["expected_calibration_error"])
        got[key + "0"] = f3(train_eval(corpus, corpus + "-uncalibrated",
                                       "--calibration-folds", "0")["expected_calibration_error"])
    return got


def label_map():
    os.makedirs(WORK, exist_ok=True)
    path = os.path.join(WORK, "ag-map.json")
    with open(path, "w") as f:
        json.dump({"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}, f)
    model = os.path.join(WORK, "ag-model")
    khabar("train", "-q", "--format", "csv", "--text-field", "2", "--text-field", "3",
           "--label-field", "1", "--label-map", path,
           "--data", data("ag_news", "raw", "test.csv"), "--out", model)
    e = json.loads(khabar("eval", "--json", "--model", model,
                          "--data", data("ag_news", "train.jsonl")))
    return {"acc": f3(e["accuracy"]), "n": thousands(e["n"])}


def class_weight():
    none = train_eval("nepali_news", "nepali-none", "--class-weight", "none")
    balanced = train_eval("nepali_news", "nepali-balanced", "--class-weight", "balanced")
    return {"f0": f3(none["macro_f1"]), "f1": f3(balanced["macro_f1"]),
            "a0": f3(none["accuracy"]), "a1": f3(balanced["accuracy"])}


def memory():
    train = data("20newsgroups", "train.jsonl")
    mib = peak_rss_mib("train", "-q", "--skip-bad", "--data", train, "--out",
                       os.path.join(WORK, "20newsgroups"))
    return {"file": f"{os.path.getsize(train) / 2**20:.0f}", "peak": f"{mib:.0f}"}


# Each figure: its name, the corpora it needs, how to measure it, the README text that quotes
# it (a regular expression whose named groups are the figures, in the measured format), and
# how far (relative) a measurement may be from the README's figure and still agree with it
# (0: equal as written; memory varies from run to run).
FIGURES = [
    ("builtin", [], builtin,
     r"n-grams \((?P<ngrams_mb>[\d.]+) MB\) and a linear layer over a pretrained\s+multilingual "
     r"encoder \((?P<encoder_mb>\d+) MB\), trained on about (?P<examples>[\d,]+) news", 0),
    ("calibration", ["ag_news", "l3cube_hi", "bbc_en"], calibration,
     r"makes by default is (?P<ag>[\d.]+) on ag_news, (?P<hi>[\d.]+) on l3cube_hi and "
     r"(?P<bbc>[\d.]+) on\s+bbc_en \((?P<ag0>[\d.]+), (?P<hi0>[\d.]+) and (?P<bbc0>[\d.]+) "
     r"uncalibrated\)", 0),
    ("label_map", ["ag_news"], label_map,
     r"ag_news/train\.jsonl +# accuracy (?P<acc>[\d.]+) on (?P<n>[\d,]+) articles", 0),
    ("class_weight", ["nepali_news"], class_weight,
     r"`balanced` took macro-F1 from (?P<f0>[\d.]+) to (?P<f1>[\d.]+) and accuracy from "
     r"(?P<a0>[\d.]+) to (?P<a1>[\d.]+)", 0),
    ("memory", ["20newsgroups"], memory,
     r"\(a (?P<file>\d+) MiB JSON lines file took (?P<peak>\d+) MiB\)", 0.1),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the figures into README.md")
    ap.add_argument("--only", nargs="*", help="only these figures, by name")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=REPO, check=True)
    os.makedirs(WORK, exist_ok=True)
    readme_path = os.path.join(REPO, "README.md")
    with open(readme_path) as f:
        readme = f.read()
    wrong = 0
    for name, corpora, measure, pattern, tolerance in FIGURES:
        if args.only and name not in args.only:
            continue
        found = re.search(pattern, readme)
        if not found:
            print(f"{name}: the README no longer has the text this figure is in: {pattern}")
            wrong += 1
            continue
        absent = [c for c in corpora if not os.path.isdir(data(c))]
        if absent:
            print(f"{name}: skipped: the shared corpora are absent ({', '.join(absent)})")
            continue
        got = measure()
        shown = found.groupdict()
        def agree(a, b):
            if a == b:
                return True
            x, y = float(a.replace(",", "")), float(b.replace(",", ""))
            return abs(x - y) <= tolerance * abs(x)
        diffs = {k: (shown[k], got[k]) for k in shown if not agree(shown[k], got[k])}
        if not diffs:
            print(f"{name}: ok ({', '.join(f'{k} {v}' for k, v in got.items())})")
            continue
        wrong += 1
        print(f"{name}: the README says " + ", ".join(
            f"{k} {a} where it measures {b}" for k, (a, b) in diffs.items()))
        if args.write:
            start, end = found.span()
            text = found.group(0)
            # Replace each group in place, from the last so that offsets hold.
            for k in sorted(shown, key=lambda k: found.start(k), reverse=True):
                s, e = found.start(k) - start, found.end(k) - start
                text = text[:s] + got[k] + text[e:]
            readme = readme[:start] + text + readme[end:]
    if args.write:
        with open(readme_path, "w") as f:
            f.write(readme)
        print(f"{wrong} figure(s) written")
        return 0
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
