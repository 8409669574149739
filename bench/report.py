"""Turns the records of bench/harness.py (bench/work/runs.jsonl, corpora.jsonl, meta.json) into a
Markdown report and a JSON file, and optionally refreshes the table between the
`<!-- bench:begin -->` and `<!-- bench:end -->` markers of the README. Nothing in the outputs is
typed by hand: rerun bench/run to change them."""

import argparse
import datetime
import json
import os
import re
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import read_jsonl  # noqa: E402

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def sh(cmd, cwd=None):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd).stdout.strip()
    except OSError:
        return ""


def machine(repo, khabar):
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)
    try:
        import sklearn

        sk = sklearn.__version__
    except ImportError:
        sk = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "os": "%s %s" % (platform.system(), platform.release()),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": sh(["git", "rev-parse", "--short", "HEAD"], cwd=repo),
        "uncommitted_changes": bool(dirty),
        "versions": {
            "khabar": sh([khabar, "--version"]),
            "rustc": sh(["rustc", "--version"]),
            "fasttext": "fastText " + (sh(["dpkg-query", "-W", "-f", "${Version}", "fasttext"]) or "?"),
            "scikit-learn": sk,
            "python": platform.python_version(),
        },
    }


def num(x, fmt):
    return "–" if x is None else fmt.format(x)


def best_peer(runs):
    peers = [r for r in runs if r["tool"] != "khabar" and r["status"] == "ok"]
    if not peers:
        return None
    return max(peers, key=lambda r: (r["accuracy"], r["macro_f1"]))


def summary(runs):
    """khabar (bow, defaults) against the most accurate peer."""
    k = next((r for r in runs if r["tool"] == "khabar" and r["config"].startswith("bow")), None)
    p = best_peer(runs)
    if not k or k["status"] != "ok" or not p:
        return None
    s = {
        "khabar": "khabar " + k["config"],
        "peer": "%s %s" % (p["tool"], p["config"]),
        "khabar_accuracy": k["accuracy"],
        "peer_accuracy": p["accuracy"],
        "accuracy_diff": k["accuracy"] - p["accuracy"],
        "macro_f1_diff": k["macro_f1"] - p["macro_f1"],
        "train_time_ratio": k["train_s"] / p["train_s"],
        "khabar_train_s": k["train_s"],
        "peer_train_s": p["train_s"],
        "khabar_dps_1": k.get("predict_dps_1"),
        "khabar_dps_all": k.get("predict_dps_all"),
        "peer_dps_1": p.get("predict_dps_1"),
        "peer_fit_s": p.get("fit_s"),
    }
    if k.get("predict_dps_1") and p.get("predict_dps_1"):
        s["throughput_ratio_1"] = k["predict_dps_1"] / p["predict_dps_1"]
    if k.get("predict_dps_all") and p.get("predict_dps_1"):
        s["throughput_ratio_all"] = k["predict_dps_all"] / p["predict_dps_1"]
    return s


def summary_line(corpus, s):
    if s is None:
        return "**%s: khabar vs best peer**: not available (a run failed)." % corpus
    line = (
        "**%s: khabar vs best peer** (%s, accuracy %.4f): accuracy %+.4f (%.4f), macro-F1 %+.4f; "
        "training takes %.2f× the time (%.1f s vs %.1f s)"
        % (corpus, s["peer"], s["peer_accuracy"], s["accuracy_diff"], s["khabar_accuracy"],
           s["macro_f1_diff"], s["train_time_ratio"], s["khabar_train_s"], s["peer_train_s"])
    )
    if s.get("peer_fit_s") is not None:
        line += " (%s's fit alone: %.1f s)" % (s["peer"], s["peer_fit_s"])
    if "throughput_ratio_1" in s:
        line += "; prediction %.2f× the throughput on one thread (%s vs %s docs/s)" % (
            s["throughput_ratio_1"], num(s["khabar_dps_1"], "{:,.0f}"), num(s["peer_dps_1"], "{:,.0f}"))
    if "throughput_ratio_all" in s:
        line += ", %.2f× with all cores" % s["throughput_ratio_all"]
    return line + "."


def corpus_table(runs):
    best = max((r["accuracy"] for r in runs if r["status"] == "ok"), default=None)
    rows = [
        "| tool | config | accuracy | macro-F1 | train s | predict docs/s, 1 thread | "
        "predict docs/s, all cores | train peak RSS MiB | predict peak RSS MiB | model MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if r["status"] != "ok":
            rows.append("| %s | %s | %s: %s | | | | | | | |" % (
                r["tool"], r["config"], r["status"], r.get("reason", "").replace("|", "/")))
            continue
        acc = "%.4f" % r["accuracy"]
        if best is not None and r["accuracy"] == best:
            acc = "**%s**" % acc
        train = num(r.get("train_s"), "{:.1f}")
        if "fit_s" in r:
            train += " (fit %.1f)" % r["fit_s"]
        rows.append("| %s | %s | %s | %.4f | %s | %s | %s | %s | %s | %s |" % (
            r["tool"], r["config"], acc, r["macro_f1"], train,
            num(r.get("predict_dps_1"), "{:,.0f}"),
            num(r.get("predict_dps_all"), "{:,.0f}"),
            num(r.get("train_rss_mib"), "{:,.0f}"),
            num(r.get("predict_rss_mib"), "{:,.0f}"),
            num(r.get("model_bytes") and r["model_bytes"] / 1e6, "{:,.1f}"),
        ))
    notes = sorted({n for r in runs for n in r.get("notes", [])})
    return "\n".join(rows), notes


def hybrid_run(runs):
    """khabar --arch hybrid trained on the corpus itself, when it ran."""
    return next((r for r in runs if r["tool"] == "khabar" and r["config"] == "hybrid"
                 and r["status"] == "ok"), None)


def overview(corpora, runs_by, summaries):
    rows = [
        "| corpus | khabar bow accuracy | best peer | its accuracy | difference | train time ratio | "
        "throughput ratio, 1 thread | khabar hybrid accuracy | hybrid − best peer | "
        "hybrid `--accurate` |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in corpora:
        s = summaries.get(c["corpus"])
        h = hybrid_run(runs_by.get(c["corpus"], []))
        hyb = "| %.4f | %+.4f | %s |" % (
            h["accuracy"], h["accuracy"] - s["peer_accuracy"],
            num(h.get("accuracy_accurate"), "{:.4f}")) if (h and s) else "| – | – | – |"
        if not s:
            rows.append("| %s | (a run failed) | | | | | | | | |" % c["corpus"])
            continue
        rows.append("| %s | %.4f | %s | %.4f | %+.4f | %.2f× | %s %s" % (
            c["corpus"], s["khabar_accuracy"], s["peer"], s["peer_accuracy"], s["accuracy_diff"],
            s["train_time_ratio"], num(s.get("throughput_ratio_1"), "{:.2f}×"), hyb))
    return "\n".join(rows)


def unseen_table(corpora, runs_by):
    """Accuracy on the test texts that the training split does not hold, where it holds some:
    khabar bow, the hybrid and the best peer (by its accuracy on the whole test split)."""
    rows = [
        "| corpus | test texts also in train | khabar bow | best peer | khabar hybrid | hybrid `--accurate` |",
        "|---|---|---|---|---|---|",
    ]
    any_row = False
    for c in corpora:
        runs = runs_by.get(c["corpus"], [])
        if not c.get("seen_in_train"):
            continue
        bow = next((r for r in runs if r["tool"] == "khabar" and r["config"].startswith("bow")
                    and r["status"] == "ok"), None)
        peer, hyb = best_peer(runs), hybrid_run(runs)

        def acc(r, key="unseen"):
            if not r or not r.get(key) or not r[key][1]:
                return "–"
            return "%.4f" % (r[key][0] / r[key][1])

        rows.append("| %s | %s of %s | %s | %s (%s) | %s | %s |" % (
            c["corpus"], "{:,}".format(c["seen_in_train"]), "{:,}".format(c["test_rows"]),
            acc(bow), acc(peer), peer and "%s %s" % (peer["tool"], peer["config"]), acc(hyb),
            acc(hyb, "unseen_accurate")))
        any_row = True
    return "\n".join(rows) if any_row else None


def split_line(c):
    """The corpus section's first line: its test split (or folds), train and throughput set."""
    if c.get("folds"):
        sizes = sorted(c["train_rows"])
        return ("Scored by %d-fold cross-validation (the corpus has a train split only; folds "
                "stratified by label, seed 13): each tool trains %d times, on all folds but one "
                "(%s to %s documents), and is scored on the one left out: %s documents scored; "
                "%d labels; throughput set (fold 0): %s documents." % (
                    c["folds"], c["folds"], "{:,}".format(sizes[0]), "{:,}".format(sizes[-1]),
                    "{:,}".format(c["test_rows"]), len(c["labels"]),
                    "{:,}".format(c["speed_docs"])))
    return "%s split: %s documents; train: %s; %d labels; throughput set: %s documents." % (
        c["test_split"].capitalize(), "{:,}".format(c["test_rows"]),
        "{:,}".format(c["train_rows"]), len(c["labels"]), "{:,}".format(c["speed_docs"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--khabar", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--readme", help="refresh the README's table between the bench markers")
    args = ap.parse_args()

    runs = read_jsonl(os.path.join(args.work, "runs.jsonl"))
    corpora = read_jsonl(os.path.join(args.work, "corpora.jsonl"))
    with open(os.path.join(args.work, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    m = machine(args.repo, args.khabar)
    runs_by = {c["corpus"]: [r for r in runs if r["corpus"] == c["corpus"]] for c in corpora}
    summaries = {c: summary(rs) for c, rs in runs_by.items()}

    out = {"machine": m, "run": meta, "corpora": []}
    for c in corpora:
        out["corpora"].append(dict(c, runs=runs_by[c["corpus"]], summary=summaries[c["corpus"]]))
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")

    la = lambda v: ", ".join("%.2f" % x for x in v)  # noqa: E731
    # The commit of the run's start (the binary's), when the harness recorded it.
    if "commit" in meta:
        m["commit"], m["uncommitted_changes"] = meta["commit"], meta["uncommitted_changes"]
    commit = m["commit"] + (" (with uncommitted changes)" if m["uncommitted_changes"] else "")
    md = [
        "# khabar against fastText and scikit-learn",
        "",
        "Written by `bench/run%s` (do not edit by hand; rerun it instead). %s run of %d corpora, "
        "%.1f minutes in all." % ((" --quick" if meta["mode"] == "quick" else "")
                                  + (" --with-hybrid" if meta.get("with_hybrid") else ""),
                                  meta["mode"].capitalize(), len(corpora), meta["seconds"] / 60),
        "",
        "- Machine: %s, %d cores, %.1f GiB, %s" % (m["cpu"], m["cores"], m["memory_gib"], m["os"]),
        "- Date: %s; commit %s" % (m["date"], commit),
        "- Load average (1, 5, 15 min) at the start: %s; at the end: %s. Figures taken while "
        "other work shares the cores are slower and noisier." % (
            la(meta["loadavg_start"]), la(meta["loadavg_end"])),
        "- Tools: %s" % "; ".join(
            v if v.lower().startswith(k.lower()) else "%s %s" % (k, v)
            for k, v in m["versions"].items()),
        "",
        "## Summary",
        "",
        "khabar (bow, default settings) against the most accurate peer on each corpus. Ratios are "
        "khabar's figure over the peer's: train time below 1 means khabar trains faster, "
        "throughput above 1 means it predicts faster.",
        "",
        overview(corpora, runs_by, summaries),
        "",
    ]
    unseen = unseen_table(corpora, runs_by)
    if unseen:
        md += [
            "### On the test texts that are not training texts",
            "",
            "Some test splits repeat texts of their training split (the same string); a model "
            "may answer those from memory, and they can carry another label there (l3cube_en "
            "files one article under several topics). Accuracy on the other test texts:",
            "",
            unseen,
            "",
        ]
    md += [
        "## How these were measured",
        "",
        "- Every tool trains on the same training rows and is scored on the same test rows (the "
        "valid split where a corpus has no test split). A corpus with a train split only "
        "(masakhanews/eng) is scored by 5-fold cross-validation: the same stratified folds for "
        "every tool, each tool trained on all folds but one and scored on that one, five times; "
        "accuracy and macro-F1 of all the folds' predictions together, the times, memory and "
        "size of fold 0's run (the hybrid's training from an empty encoding cache there). Rows whose text is blank are dropped "
        "from both, for every tool (khabar refuses them); the counts are under each table.",
        "- khabar: `khabar train` with default settings (the default SVMs train to their optimum "
        "on all of train and hold nothing out; `--loss softmax` holds out 10% to choose the "
        "epoch, then trains again on all of it), `khabar eval --json` for the scores.",
        "- khabar hybrid (`bench/run --with-hybrid`): `khabar train --arch hybrid` with default "
        "settings and `--cache-dir bench/work/bench-encoder-cache`, emptied at the start of the run, so "
        "its training time includes encoding every training text (`khabar eval --cache-dir` "
        "keeps the test texts' vectors there too). Its accuracy is that of the default mode, the "
        "cascade (the n-gram part answers alone where its calibrated probability reaches the "
        "threshold chosen at training, the encoder reads the rest); *hybrid `--accurate`* runs "
        "the encoder on every text. Its throughput, in the default mode, is on the "
        "first 300 test texts, all cores, one run (it is tens to hundreds of times slower than "
        "bow); its model MB leaves out the pretrained encoder, which is built into khabar (32 MB "
        "of the binary). *hybrid trained on sib200_eng_Latn*: that corpus's hybrid scored on "
        "sib200_hin_Deva (the same sentences in Hindi).",
        "- fastText: `fasttext supervised` with `-thread %d` (the machine's cores) on `__label__` "
        "lines shuffled with a fixed seed: *default* = its defaults; *paper* = the AG News "
        "settings of its paper (`-dim 10 -wordNgrams 2 -lr 0.25 -epoch 5`); *autotune* = "
        "`-autotune-validation` on a 10%% cut of train (trained on the other 90%%), "
        "`-autotune-duration 60`; that bounds the search only, so the whole autotune command "
        "(search and final training) is stopped after %.0f s and then shows as timed out."
        % (meta["threads"], meta.get("autotune_limit_s", meta["timeout_s"])),
        "- scikit-learn: TF-IDF with sublinear tf + LinearSVC on word 1–2-grams (*svc-word12*), "
        "character 2–5-grams within word boundaries (*svc-char25*, `char_wb`), both "
        "(*svc-word+char*); TF-IDF word 1–2-grams + LogisticRegression (*lr-word12*); the "
        "classifiers with scikit-learn's default settings. Words "
        "are split on whitespace (`token_pattern=\\S+`), not on `\\w`, which drops Devanagari "
        "vowel signs.",
        "- The peers see the text lowercased with punctuation (Unicode category P) split off "
        "into tokens, the way fastText's scripts prepare it; this is done once beforehand and "
        "is not in their timings. khabar reads the raw text; its timings include its own "
        "normalization and tokenization.",
        "- *train s*: wall time of the whole training command (reading, fitting, saving). For "
        "scikit-learn that includes Python's start-up and imports; the fit alone is in brackets.",
        "- *predict docs/s*: throughput on the test texts repeated up to at least 20,000 "
        "documents (or 4 million characters), with the model load excluded; khabar's and "
        "fastText's are the median of %d runs each, and khabar's one-thread figure and "
        "fastText's default model's are measured in turns (khabar, fastText, khabar, ...), so "
        "that both meet the machine's slow spells alike. khabar: what "
        "`khabar predict -v` reports after loading (`--threads 1`, and all cores by default). "
        "fastText: the wall time of `fasttext predict model.bin` on that file minus the time "
        "of predicting a one-line file (its load; the faster of two tries); it predicts on one "
        "thread. scikit-learn: `transform` + `predict` timed in-process after unpickling, on "
        "one thread, over the test set and further passes over it until 2 s have gone by (at "
        "most as many documents as the throughput set)." % meta.get("repeats", 1),
        "- Any one command is stopped after %.0f s (then it shows as timed out), but the "
        "training of the hybrid, which encodes every training text: after %.0f s."
        % (meta["timeout_s"], meta.get("hybrid_timeout_s", meta["timeout_s"])),
        "- *peak RSS*: maximum resident set size from `/usr/bin/time -v`, of the training "
        "command and of the prediction command (the larger of khabar's two).",
        "- *model MB*: khabar's bundle directory, fastText's `.bin`, scikit-learn's pickle of "
        "the vectorizer and the model.",
        "",
    ]
    for c in corpora:
        table, notes = corpus_table(runs_by[c["corpus"]])
        md += [
            "## %s" % c["corpus"],
            "",
            split_line(c),
            "",
            table,
            "",
        ]
        if c["train_blank_dropped"] or c["test_blank_dropped"]:
            how = (" (khabar: `--skip-bad` on the original file)" if meta["khabar_skip_bad"]
                   else " (khabar has no `--skip-bad` yet: it trains on a copy without them)")
            md += ["Blank-text rows dropped: %d from train, %d from %s%s." % (
                c["train_blank_dropped"], c["test_blank_dropped"], c["test_split"], how), ""]
        for n in notes:
            md += ["Note: %s." % n, ""]
        md += [summary_line(c["corpus"], summaries[c["corpus"]]), ""]
    # The sections other scripts write (bench/multilabel.py, bench/serve_load.py, ...), each
    # between its `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers, stay as written.
    kept = ""
    if os.path.exists(args.markdown):
        with open(args.markdown, encoding="utf-8") as f:
            old = f.read()
        for section in re.finditer(r"<!-- ([a-z0-9_-]+):begin -->.*?<!-- \1:end -->", old, re.S):
            kept += "\n" + section.group(0) + "\n"
    with open(args.markdown, "w", encoding="utf-8") as f:
        f.write("\n".join(md) + kept)

    if args.readme:
        with open(args.readme, encoding="utf-8") as f:
            text = f.read()
        if BEGIN in text and END in text:
            block = "\n".join([
                BEGIN,
                "Latest full run (%s, %s, %d cores, load average %s at the start; commit %s; "
                "%.0f minutes); every figure, and how it is measured, in "
                "[bench/RESULTS.md](bench/RESULTS.md):" % (
                    m["date"], m["cpu"], m["cores"], "%.1f" % meta["loadavg_start"][0], commit,
                    meta["seconds"] / 60),
                "",
                overview(corpora, runs_by, summaries),
                "",
                END,
            ])
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            with open(args.readme, "w", encoding="utf-8") as f:
                f.write(head + block + tail)


if __name__ == "__main__":
    main()
