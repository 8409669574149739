"""Runs khabar and its peers on the shared corpora and appends one record per run to
bench/work/runs.jsonl (bench/report.py turns them into RESULTS.md and results.json).

Every tool trains on the same training rows and is scored on the same test rows. For each run:
test accuracy and macro-F1; training wall seconds of the whole command; prediction throughput
with the model load excluded; peak RSS (/usr/bin/time -v) of training and of prediction; model
size on disk. Usually started by bench/run, which installs the peers and builds khabar first.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import disk_size, measure, metrics, read_jsonl  # noqa: E402
from prepare import folds_of, prepare  # noqa: E402

ALL_CORPORA = [
    "ag_news",
    "l3cube_hi",
    "l3cube_en",
    "bbc_en",
    "20newsgroups",
    "sib200_hin_Deva",
    "sib200_eng_Latn",
    "masakhanews/eng",
    "l3cube_mr_lpc",
    "urdu_news",
    "nepali_news",
]
# --with-hybrid trains khabar --arch hybrid on every corpus unless --hybrid-corpora says
# otherwise. The encoder reads about 3,800 pieces a second on 2 cores: 20newsgroups (11,314 posts
# cut at 256 pieces) takes about 12 minutes of encoding to train and 8 to score, l3cube_en (36,857
# headlines) about 5 to train. Training an encoder architecture may take --hybrid-timeout.
HYBRID_TIMEOUT = 1800
QUICK_CORPORA = ["ag_news", "l3cube_hi", "bbc_en", "sib200_hin_Deva"]

FASTTEXT_CONFIGS = {
    "default": [],
    "paper": ["-dim", "10", "-wordNgrams", "2", "-lr", "0.25", "-epoch", "5"],
    "autotune": None,  # built per corpus: needs the validation cut
}
SKLEARN_CONFIGS = ["svc-word12", "svc-char25", "svc-word+char", "lr-word12"]
# The benchmark's encoding cache under bench/work, emptied at the start of a run with the hybrid.
BENCH_CACHE = "bench-encoder-cache"

# --quick leaves out the slow peers: fastText's 60 s autotune and the character n-gram SVCs.
QUICK_FASTTEXT = ["default", "paper"]
QUICK_SKLEARN = ["svc-word12", "lr-word12"]

THROUGHPUT = re.compile(r"classified (\d+) articles in ([0-9.]+) s \(([0-9.]+) articles/s, (\d+) threads\)")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Harness:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.threads = os.cpu_count() or 1
        self.runs_path = os.path.join(self.work, "runs.jsonl")
        self.python = sys.executable
        self.here = os.path.dirname(os.path.abspath(__file__))
        help_text = subprocess.run(
            [args.khabar, "train", "--help"], capture_output=True, text=True
        ).stdout
        self.skip_bad = "--skip-bad" in help_text

    def record(self, rec):
        # Keys starting with "_" are the run's predictions, kept for pooling folds only.
        kept = {k: v for k, v in rec.items() if not k.startswith("_")}
        with open(self.runs_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(kept, ensure_ascii=False) + "\n")
        if rec["status"] == "ok":
            log(
                "  %-8s %-16s acc %.4f  F1 %.4f  train %6.1f s  predict %s docs/s (1 thread)%s"
                % (
                    rec["tool"],
                    rec["config"],
                    rec["accuracy"],
                    rec["macro_f1"],
                    rec["train_s"] or 0.0,
                    fmt_rate(rec.get("predict_dps_1")),
                    ", %s (all)" % fmt_rate(rec["predict_dps_all"])
                    if rec.get("predict_dps_all")
                    else "",
                )
            )
        else:
            log("  %-8s %-16s %s: %s" % (rec["tool"], rec["config"], rec["status"], rec.get("reason", "")))

    def base(self, info, tool, config):
        return {"corpus": info["corpus"], "tool": tool, "config": config, "notes": []}

    def failed(self, rec, m, what):
        rec["status"] = "timed out" if m.timed_out else "failed"
        rec["reason"] = "%s: %s" % (what, m.why())
        return rec

    # khabar ------------------------------------------------------------------------------------

    def khabar(self, info, arch, speed=True):
        files = info["files"]
        config = "bow (defaults)" if arch == "bow" else arch
        rec = self.base(info, "khabar", config)
        out = os.path.join(info["dir"], "khabar-%s" % arch)
        subprocess.run(["rm", "-rf", out])
        cmd = [self.args.khabar, "train", "-q", "--out", out]
        if info["train_blank_dropped"] and self.skip_bad:
            cmd += ["--data", files["train_original"], "--skip-bad"]
            rec["notes"].append("trained with --skip-bad on the original train file")
        else:
            cmd += ["--data", files["train_jsonl"]]
        if arch != "bow":
            cmd += ["--arch", arch]
        limit = self.args.timeout
        if arch in ("hybrid", "encoder"):
            cmd += ["--cache-dir", os.path.join(self.work, BENCH_CACHE)]
            limit = max(limit, self.args.hybrid_timeout)
        m = measure(cmd, timeout=limit)
        if not m.ok:
            if arch != "bow" and m.rc == 2 and "invalid value" in m.stderr:
                rec["status"] = "not available"
                rec["reason"] = "khabar train rejects --arch %s" % arch
                return rec
            return self.failed(rec, m, "train")
        rec["train_s"], rec["train_rss_mib"] = m.wall, m.rss_mib
        rec["model_bytes"] = disk_size(out)

        cmd = [self.args.khabar, "eval", "--model", out, "--data", files["test_jsonl"], "--json"]
        if arch in ("hybrid", "encoder"):
            # The test texts' vectors are kept: the cross-lingual score reads them again.
            cmd += ["--cache-dir", os.path.join(self.work, BENCH_CACHE)]
        # The default is the cascade (the n-grams alone where they are sure enough); a hybrid is
        # also scored with the encoder on every text, from the same cached vectors.
        for key, extra in [("", [])] + ([("_accurate", ["--accurate"])] if arch == "hybrid" else []):
            errors = out + ".errors%s.jsonl" % key
            ev = subprocess.run(cmd + extra + ["--errors", errors], capture_output=True, text=True)
            if ev.returncode != 0:
                rec["status"] = "failed"
                rec["reason"] = "eval%s: %s" % (" " + " ".join(extra) if extra else "",
                                                ev.stderr.strip()[-200:])
                return rec
            e = json.loads(ev.stdout)
            rec.update({"n": e["n"], "accuracy" + key: e["accuracy"], "macro_f1" + key: e["macro_f1"]})
            truth, predicted = [], []
            for i, row in enumerate(e["confusion"]):
                for j, count in enumerate(row):
                    truth += [e["labels"][i]] * count
                    predicted += [e["labels"][j]] * count
            rec["_pairs" + key] = (truth, predicted)
            # The misclassified texts, less those train holds: the errors on unseen texts.
            with open(errors, encoding="utf-8") as f:
                wrong = [json.loads(line)["text"] in info["seen_texts"] for line in f]
            unseen = len(info["test_labels"]) - len(info["seen_in_train"])
            rec["unseen" + key] = unseen_counts(info, unseen - wrong.count(False))

        if not speed:
            rec["status"] = "ok"
            return rec
        rss = []
        speeds = (("predict_dps_1", ["--threads", "1"]), ("predict_dps_all", []))
        speed_file, repeats = files["speed_txt"], self.args.repeats
        if arch in ("hybrid", "encoder"):
            # About 100 times slower than bow: a short set, all cores, once.
            speeds, speed_file, repeats = speeds[1:], files["speed_encoder_txt"], 1
            rec["notes"].append(
                "throughput on the first %d test texts, all cores, one run"
                % info["speed_encoder_docs"])
        for key, threads in speeds:
            rates = []
            for _ in range(repeats):
                m = measure(
                    [self.args.khabar, "predict", "-v", "--model", out, "--input",
                     speed_file] + threads,
                    timeout=self.args.timeout,
                )
                hit = THROUGHPUT.search(m.stderr)
                if not m.ok or not hit:
                    return self.failed(rec, m, "predict")
                docs, secs = int(hit.group(1)), float(hit.group(2))
                rates.append(docs / secs if secs > 0 else None)
                if key == "predict_dps_all":
                    rec["predict_threads_all"] = int(hit.group(4))
                rss.append(m.rss_mib)
            rec[key] = median(rates)
        rec["predict_rss_mib"] = max(rss)
        rec["status"] = "ok"
        return rec

    def side_by_side(self, info, kh, ft):
        """Single-thread throughput of khabar (bow) and fastText (default) measured in turns,
        --repeats times each, medians kept: this machine has slow spells longer than one tool's
        runs, and taking turns puts both tools in the same ones."""
        if kh.get("status") != "ok" or ft.get("status") != "ok" or ft.get("load_s") is None:
            return
        files = info["files"]
        model = os.path.join(info["dir"], "khabar-bow")
        ft_model = os.path.join(info["dir"], "ft-default.bin")
        rates, fulls = [], []
        for _ in range(self.args.repeats):
            m = measure([self.args.khabar, "predict", "-v", "--threads", "1", "--model", model,
                         "--input", files["speed_txt"]], timeout=self.args.timeout)
            hit = THROUGHPUT.search(m.stderr)
            if not m.ok or not hit or float(hit.group(2)) <= 0:
                return
            rates.append(int(hit.group(1)) / float(hit.group(2)))
            m = measure(["fasttext", "predict", ft_model, files["ft_speed"]],
                        timeout=self.args.timeout)
            if not m.ok:
                return
            fulls.append(m.wall)
        full = median(fulls)
        if full - ft["load_s"] <= 0.01:
            return
        kh["predict_dps_1"] = median(rates)
        ft["predict_dps_1"] = info["speed_docs"] / (full - ft["load_s"])
        note = "one-thread throughput measured in turns with %s (%d runs each)"
        kh["notes"].append(note % ("fastText default", self.args.repeats))
        ft["notes"].append(note % ("khabar bow", self.args.repeats))

    # fastText ----------------------------------------------------------------------------------

    def fasttext(self, info, config, speed=True):
        files = info["files"]
        rec = self.base(info, "fastText", config)
        stem = os.path.join(info["dir"], "ft-%s" % config)
        for ext in (".bin", ".vec"):
            if os.path.exists(stem + ext):
                os.remove(stem + ext)
        common = ["-output", stem, "-thread", str(self.threads), "-verbose", "1"]
        if config == "autotune":
            cmd = ["fasttext", "supervised", "-input", files["ft_train90"]] + common
            cmd += ["-autotune-validation", files["ft_valid10"], "-autotune-duration", "60"]
            rec["notes"].append("trained on 90% of train; autotune validated on the other 10%")
        else:
            cmd = ["fasttext", "supervised", "-input", files["ft_train"]] + common
            cmd += FASTTEXT_CONFIGS[config]
        limit = self.args.timeout
        if config == "autotune":
            # The 60 s bound covers the search only; the final training on the parameters it
            # picks can run far longer (it passed 600 s on bbc_en). Bound the whole command.
            limit = min(limit, self.args.autotune_limit)
        m = measure(cmd, timeout=limit)
        if not m.ok:
            return self.failed(rec, m, "train")
        rec["train_s"], rec["train_rss_mib"] = m.wall, m.rss_mib
        model = stem + ".bin"
        rec["model_bytes"] = disk_size(model)
        if os.path.exists(stem + ".vec"):
            os.remove(stem + ".vec")

        with open(files["ft_labels"], encoding="utf-8") as f:
            back = json.load(f)
        pred_path = stem + ".predictions.txt"
        m = measure(["fasttext", "predict", model, files["ft_test"]], stdout=pred_path,
                    timeout=self.args.timeout)
        if not m.ok:
            return self.failed(rec, m, "predict")
        rss = [m.rss_mib]
        with open(pred_path, encoding="utf-8") as f:
            predicted = [back.get(line.strip(), "<none>") for line in f]
        scored(rec, info, predicted)
        if not speed:
            rec["status"] = "ok"
            return rec

        # Throughput: predicting the throughput set (the median of --repeats runs) minus the
        # load, which is the time to predict a one-line file (the fastest of two tries).
        fulls = []
        for _ in range(self.args.repeats):
            m = measure(["fasttext", "predict", model, files["ft_speed"]],
                        timeout=self.args.timeout)
            if not m.ok:
                return self.failed(rec, m, "predict")
            rss.append(m.rss_mib)
            fulls.append(m.wall)
        full = median(fulls)
        loads = []
        for _ in range(2):
            m = measure(["fasttext", "predict", model, files["ft_one"]], timeout=self.args.timeout)
            if not m.ok:
                return self.failed(rec, m, "predict")
            loads.append(m.wall)
        load = min(loads)
        rec["load_s"] = load
        if full - load > 0.01:
            rec["predict_dps_1"] = info["speed_docs"] / (full - load)
        else:
            rec["notes"].append("prediction too fast to separate from the load time")
        rec["predict_rss_mib"] = max(rss)
        rec["status"] = "ok"
        return rec

    # scikit-learn ------------------------------------------------------------------------------

    def sklearn(self, info, config, speed=True):
        files = info["files"]
        rec = self.base(info, "sklearn", config)
        stem = os.path.join(info["dir"], "sk-%s" % config)
        model = stem + ".pkl"
        peers = os.path.join(self.here, "peers.py")
        fit_path = stem + ".fit.json"
        m = measure(
            [self.python, peers, "train", "--config", config, "--train", files["peer_train"],
             "--model", model],
            stdout=fit_path,
            timeout=self.args.timeout,
        )
        if not m.ok:
            return self.failed(rec, m, "train")
        rec["train_s"], rec["train_rss_mib"] = m.wall, m.rss_mib
        with open(fit_path) as f:
            rec["fit_s"] = json.load(f)["fit_seconds"]
        rec["model_bytes"] = disk_size(model)
        pred_path = stem + ".predictions.txt"
        timing_path = stem + ".timing.json"
        m = measure(
            [self.python, peers, "predict", "--model", model, "--test", files["peer_test"],
             "--repeat", info["speed_repeat"], "--predictions", pred_path],
            stdout=timing_path,
            timeout=self.args.timeout,
        )
        if not m.ok:
            return self.failed(rec, m, "predict")
        with open(pred_path, encoding="utf-8") as f:
            predicted = [line.rstrip("\n") for line in f]
        scored(rec, info, predicted)
        with open(timing_path) as f:
            t = json.load(f)
        rec["predict_dps_1"] = t["docs"] / t["seconds"] if t["seconds"] > 0 else None
        rec["predict_rss_mib"] = m.rss_mib
        rec["status"] = "ok"
        return rec

    def cross_lingual(self, source, target):
        """The hybrid trained on `source` (English) scored on `target`'s test split (the same
        sentences in Hindi): what the encoder carries from one language to the other."""
        model = os.path.join(self.work, source, "khabar-hybrid")
        test = os.path.join(self.args.data, target, "valid.jsonl")
        rec = self.base({"corpus": target}, "khabar", "hybrid trained on %s" % source)
        ev = subprocess.run(
            [self.args.khabar, "eval", "--model", model, "--data", test, "--json",
             "--cache-dir", os.path.join(self.work, BENCH_CACHE)],
            capture_output=True, text=True,
        )
        if ev.returncode != 0:
            rec["status"], rec["reason"] = "failed", "eval: " + ev.stderr.strip()[-200:]
        else:
            e = json.loads(ev.stdout)
            rec.update(n=e["n"], accuracy=e["accuracy"], macro_f1=e["macro_f1"], status="ok",
                       train_s=None)
            rec["notes"].append("cross-lingual: trained on %s's train split only" % source)
        self.record(rec)

    # -------------------------------------------------------------------------------------------

    def corpus(self, corpus):
        start = time.perf_counter()
        # A corpus with a train split only is scored by cross-validation: one set of work files
        # per fold, every tool trained on each; fold 0's models are timed for throughput.
        infos = [prepare(corpus, self.args.data, self.work, fold=f)
                 for f in range(folds_of(corpus, self.args.data))]
        for info in infos:
            log(
                "%s: %d train, %d %s rows (%d/%d blank rows dropped, %d test texts also in "
                "train); throughput set %d docs"
                % (corpus, info["train_rows"], info["test_rows"], info["test_split"],
                   info["train_blank_dropped"], info["test_blank_dropped"],
                   len(info["seen_in_train"]), info["speed_docs"])
            )
        info = infos[0]
        runs = [("khabar", "bow")]
        if self.args.with_transformer:
            runs.append(("khabar", "transformer"))
        if self.args.with_hybrid and corpus in self.args.hybrid_corpora:
            runs.append(("khabar", "hybrid"))
        runs += [("fastText", c) for c in (QUICK_FASTTEXT if self.args.quick else FASTTEXT_CONFIGS)]
        runs += [("sklearn", c) for c in (QUICK_SKLEARN if self.args.quick else SKLEARN_CONFIGS)]
        khabar_bow = None
        for tool, config in runs:
            fn = {"khabar": self.khabar, "fastText": self.fasttext, "sklearn": self.sklearn}[tool]
            rec = pooled([fn(i, config, speed=i is info) for i in infos])
            if rec.get("status") == "ok" and "accuracy_accurate" in rec:
                rec["notes"].append("hybrid: accuracy by default (the cascade); with --accurate "
                                    "(the encoder on every text) %.4f, macro-F1 %.4f"
                                    % (rec["accuracy_accurate"], rec["macro_f1_accurate"]))
            if (tool, config) == ("khabar", "bow"):
                khabar_bow = rec  # recorded after the side-by-side with fastText's default
                continue
            if (tool, config) == ("fastText", "default") and khabar_bow is not None:
                self.side_by_side(info, khabar_bow, rec)
                self.record(khabar_bow)
                khabar_bow = None
            self.record(rec)
        if khabar_bow is not None:
            self.record(khabar_bow)
        meta = {k: v for k, v in info.items()
                if k not in ("files", "dir", "test_labels", "seen_in_train", "seen_texts")}
        meta["seen_in_train"] = sum(len(i["seen_in_train"]) for i in infos)
        if len(infos) > 1:
            meta["test_split"] = "%d-fold cross-validation" % len(infos)
            meta["test_rows"] = sum(i["test_rows"] for i in infos)
            meta["test_blank_dropped"] = sum(i["test_blank_dropped"] for i in infos)
            meta["train_rows"] = [i["train_rows"] for i in infos]
        meta["seconds"] = time.perf_counter() - start
        with open(os.path.join(self.work, "corpora.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(meta, ensure_ascii=False) + "\n")


def unseen_counts(info, correct_unseen):
    """[right, of]: the run's score on the test texts that train does not hold."""
    return [correct_unseen, len(info["test_labels"]) - len(info["seen_in_train"])]


def scored(rec, info, predicted):
    """Accuracy and macro-F1 of a peer's predictions (in test order), and on unseen texts."""
    truth = info["test_labels"]
    rec.update(metrics(truth, predicted))
    rec["_pairs"] = (truth, predicted)
    seen = set(info["seen_in_train"])
    rec["unseen"] = unseen_counts(info, sum(
        t == p for i, (t, p) in enumerate(zip(truth, predicted)) if i not in seen))


def pooled(recs):
    """One record of a tool's runs on the folds of a corpus: accuracy and macro-F1 of all the
    folds' predictions together; everything else (training time and memory, throughput, size)
    of the first fold's run. One run: that run."""
    if len(recs) == 1:
        return recs[0]
    for k, r in enumerate(recs):
        if r.get("status") != "ok":
            r["reason"] = "fold %d: %s" % (k, r.get("reason", ""))
            return r
    rec = dict(recs[0])
    for key in ("", "_accurate"):
        if "_pairs" + key not in rec:
            continue
        truth = [t for r in recs for t in r["_pairs" + key][0]]
        predicted = [p for r in recs for p in r["_pairs" + key][1]]
        m = metrics(truth, predicted)
        rec.update({"n": m["n"], "accuracy" + key: m["accuracy"], "macro_f1" + key: m["macro_f1"]})
        rec["unseen" + key] = [sum(r["unseen" + key][0] for r in recs),
                               sum(r["unseen" + key][1] for r in recs)]
    rec["notes"] = rec["notes"] + [
        "%d-fold cross-validation: accuracy and macro-F1 of the %d folds' predictions together; "
        "training time and memory, throughput, prediction memory and size of fold 0's model "
        "(the hybrid's folds after the first find most training texts in the encoding cache)"
        % (len(recs), len(recs))]
    return rec


def median(xs):
    """The median of xs (None if any is None)."""
    if any(x is None for x in xs):
        return None
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def fmt_rate(x):
    return "-" if x is None else "{:,.0f}".format(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the shared corpora (../shared/data)")
    ap.add_argument("--work", required=True, help="work directory (bench/work)")
    ap.add_argument("--khabar", required=True, help="the khabar binary")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--with-transformer", action="store_true")
    ap.add_argument("--with-hybrid", action="store_true")
    ap.add_argument("--hybrid-corpora", nargs="*",
                    help="the corpora of --with-hybrid (default: all)")
    ap.add_argument("--corpora", nargs="*", help="a subset, by name")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per command")
    ap.add_argument("--hybrid-timeout", type=float, default=HYBRID_TIMEOUT,
                    help="seconds for training an encoder architecture (it encodes every text)")
    ap.add_argument("--autotune-limit", type=float, default=300,
                    help="seconds for the whole fastText autotune command (search + final fit)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each throughput measurement, of which the median is kept")
    args = ap.parse_args()
    if args.repeats < 1:
        raise SystemExit("error: --repeats must be at least 1")

    corpora = args.corpora or (QUICK_CORPORA if args.quick else ALL_CORPORA)
    if args.hybrid_corpora is None:
        args.hybrid_corpora = list(corpora)
    missing = [c for c in corpora if not os.path.isdir(os.path.join(args.data, c))]
    if missing:
        raise SystemExit("error: corpora missing under %s: %s" % (args.data, ", ".join(missing)))
    os.makedirs(args.work, exist_ok=True)
    h = Harness(args)
    for name in ("runs.jsonl", "corpora.jsonl", "meta.json"):
        if os.path.exists(os.path.join(h.work, name)):
            os.remove(os.path.join(h.work, name))
    log("khabar train %s --skip-bad" % ("has" if h.skip_bad else "does not have"))
    meta = {
        "mode": "quick" if args.quick else "full",
        "with_transformer": args.with_transformer,
        "with_hybrid": args.with_hybrid,
        "hybrid_corpora": args.hybrid_corpora if args.with_hybrid else [],
        "corpora": corpora,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # The commit the measured binary was built from (bench/run builds it just before).
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, cwd=os.path.dirname(h.here)).stdout.strip(),
        "uncommitted_changes": bool(subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
            text=True, cwd=os.path.dirname(h.here)).stdout.strip()),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "khabar_skip_bad": h.skip_bad,
        "threads": h.threads,
        "timeout_s": args.timeout,
        "hybrid_timeout_s": max(args.timeout, args.hybrid_timeout),
        "autotune_limit_s": args.autotune_limit,
        "repeats": args.repeats,
    }
    # Training times of the encoder architectures are from an empty cache: the benchmark's own
    # (models/news/build.sh keeps its vectors in bench/work/encoder-cache, left alone).
    if args.with_hybrid:
        subprocess.run(["rm", "-rf", os.path.join(h.work, BENCH_CACHE)])
    start = time.perf_counter()
    for c in corpora:
        h.corpus(c)
    if args.with_hybrid and {"sib200_eng_Latn", "sib200_hin_Deva"} <= set(args.hybrid_corpora):
        h.cross_lingual("sib200_eng_Latn", "sib200_hin_Deva")
    meta["seconds"] = time.perf_counter() - start
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    with open(os.path.join(h.work, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
