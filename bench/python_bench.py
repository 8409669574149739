#!/usr/bin/env python3
"""Throughput of the Python package against the `khabar predict` binary, same texts and model,
and of the Spark example in local mode.

    python bench/python_bench.py [--khabar target/release/khabar] [--repeats 5] [--no-spark]

Needs the package installed (`pip install ./python`), pyarrow, and for the Spark figures pyspark
and Java. The texts are the AG News test split from ../shared/data when it is there (7,600
news summaries), else data/news/test.jsonl repeated to 9,600 texts; the model is a `bow` model
trained on the matching train split (seed 1) and, with --builtin, the built-in model in
`fast` mode too. Figures are documents per second, the best of --repeats runs; the models'
load time is left out of every figure but the command's wall time. The Spark job runs on the
texts 20 times over (--spark-copies) in 8 Parquet files, with 1 and 2 cores (`local[1]`,
`local[2]`; best of 2 runs after a first one), against `khabar predict` on the same rows as
JSON lines (jsonl output, with the ids); "per CPU-second" divides the rows by the CPU time of
every process of the job (Spark: the driver, the JVM and the Python workers; the command: its
own), which is what one executor core gives.
"""

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "ag_news"


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def corpus():
    if (SHARED / "test.jsonl").exists():
        return "ag_news (../shared/data)", read_jsonl(SHARED / "train.jsonl"), read_jsonl(SHARED / "test.jsonl")[0]
    train = read_jsonl(REPO / "data" / "news" / "train.jsonl")
    test = read_jsonl(REPO / "data" / "news" / "test.jsonl")[0] * 100
    return "data/news (repeated 100 times)", train, test


def best_of(repeats, f):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def find_khabar(given):
    if given:
        return given
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for candidate in (target / "release" / "khabar", shutil.which("khabar")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    sys.exit("no khabar binary: build it (cargo build --release) or give --khabar PATH")


def tree_cpu_seconds(root):
    """CPU seconds (user and system) used so far by process `root` and all its descendants
    alive, with the children they have reaped (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parent[pid] = int(fields[1])
        # utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the name.
        cpu[pid] = sum(int(x) for x in fields[11:15]) / tick
    total = 0.0
    for pid in cpu:
        p = pid
        while p in parent and p != root and p > 1:
            p = parent[p]
        if p == root:
            total += cpu[pid]
    return total


def cli_figures(khabar_bin, model_args, input_path, n, repeats, cpu=None):
    """(articles/s as `-v` reports it, load time left out; articles/s of the whole command).
    With a dict `cpu`, also the articles per CPU-second of the whole command, in cpu["rate"]."""
    import resource

    inner, whole = 0.0, 0.0
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [khabar_bin, "predict", *model_args, "--input", str(input_path), "--output", "jsonl", "-v"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            cpu["rate"] = max(cpu.get("rate", 0.0), n / used)
        m = re.search(r"classified (\d+) articles in ([\d.]+) s", done.stderr)
        assert m and int(m.group(1)) == n, done.stderr
        inner = max(inner, n / float(m.group(2)))
        whole = max(whole, n / wall)
    return inner, whole


def spark_figures(model_dir, parquet, n, masters, repeats):
    spec = importlib.util.spec_from_file_location("classify", REPO / "examples" / "spark" / "classify.py")
    classify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(classify)
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    out = {}
    for master in masters:
        spark = (SparkSession.builder.master(master).appName("khabar-bench")
                 .config("spark.ui.enabled", "false").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        runs, cpus = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(repeats + 1):
                cpu0 = tree_cpu_seconds(os.getpid())
                start = time.perf_counter()
                count = classify.classify(spark, str(parquet), f"{tmp}/out{i}", model=str(model_dir))
                runs.append(time.perf_counter() - start)
                cpus.append(tree_cpu_seconds(os.getpid()) - cpu0)
                assert count == n
        spark.stop()
        # The first run also starts the Python workers and loads the model in each.
        out[master] = {
            "first_docs_per_s": n / runs[0],
            "docs_per_s": n / min(runs[1:]),
            # Every process of the job: the driver, the JVM (Parquet, Arrow), the Python workers.
            "docs_per_cpu_s": n / min(cpus[1:]),
        }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--khabar", help="the khabar binary (default: $CARGO_TARGET_DIR or target/, release)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--builtin", action="store_true", help="also the built-in model in fast mode")
    ap.add_argument("--spark-copies", type=int, default=20,
                    help="the Spark dataset is the texts this many times over, in 8 Parquet files [20]")
    ap.add_argument("--json", help="write the figures to this file too")
    ap.add_argument("--markdown", default=str(Path(__file__).resolve().parent / "RESULTS.md"),
                    help="write the section between <!-- python:begin --> and <!-- python:end --> "
                         "of this file [bench/RESULTS.md]; '' for none")
    a = ap.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    import khabar

    khabar_bin = find_khabar(a.khabar)
    name, (train_texts, train_labels), texts = corpus()
    n = len(texts)
    print(f"corpus: {name}, {n} texts to classify; cores: {os.cpu_count()}; khabar binary: {khabar_bin}")
    results = {"corpus": name, "n": n, "cores": os.cpu_count(), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        bow = khabar.train(train_texts, train_labels, seed=1)
        print(f"trained bow on {len(train_texts)} texts in {time.perf_counter() - start:.1f} s")
        bow.save(tmp / "bow")
        input_path = tmp / "texts.jsonl"
        with open(input_path, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        # Spark: enough rows that the job's fixed costs (scheduling, Parquet) do not dominate,
        # in 8 files so that every core gets tasks.
        parquet = tmp / "spark-input"
        parquet.mkdir()
        big = texts * a.spark_copies
        files = 8
        for k in range(files):
            lo, hi = k * len(big) // files, (k + 1) * len(big) // files
            pq.write_table(pa.table({"id": list(range(lo, hi)), "text": big[lo:hi]}),
                           parquet / f"part-{k}.parquet")
        arrow_texts = pa.array(texts, type=pa.string())

        models = [("bow", khabar.Classifier.load(tmp / "bow"), ["--model", str(tmp / "bow")])]
        if a.builtin:
            models.append(("builtin --fast", khabar.Classifier.default(mode="fast"), ["--fast"]))
        for label, clf, model_args in models:
            r = {}
            # Same answers both ways, first.
            batch = clf.predict_batch(texts)
            arrow = clf.predict_arrow(arrow_texts)
            assert arrow.column("label").to_pylist() == [p["label"] for p in batch]
            r["predict_batch"] = n / best_of(a.repeats, lambda: clf.predict_batch(texts))
            r["predict_arrow"] = n / best_of(a.repeats, lambda: clf.predict_arrow(arrow_texts))
            one = khabar.Classifier.load(tmp / "bow", threads=1) if label == "bow" else None
            r["predict_batch_1_thread"] = (
                n / best_of(a.repeats, lambda: one.predict_batch(texts)) if one else None
            )
            r["predict_arrow_1_thread"] = (
                n / best_of(a.repeats, lambda: one.predict_arrow(arrow_texts)) if one else None
            )
            r["cli_classify"], r["cli_wall"] = cli_figures(khabar_bin, model_args, input_path, n, a.repeats)
            if one:
                r["cli_classify_1_thread"], r["cli_wall_1_thread"] = cli_figures(
                    khabar_bin, [*model_args, "--threads", "1"], input_path, n, a.repeats
                )
            results["models"][label] = r
            print(f"\n{label}:")
            for k, v in r.items():
                if v is not None:
                    print(f"  {k:24s} {v:12,.0f} docs/s")
        if not a.no_spark:
            spark = spark_figures(tmp / "bow", parquet, len(big), ["local[1]", "local[2]"], 2)
            # `khabar predict` on the same rows, one core and all of them.
            big_jsonl = tmp / "spark-input.jsonl"
            with open(big_jsonl, "w", encoding="utf-8") as f:
                for i, t in enumerate(big):
                    f.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")
            model_args = ["--model", str(tmp / "bow"), "--id-field", "id"]
            for threads in (1, None):
                extra = ["--threads", "1"] if threads else []
                cpu = {}
                inner, whole = cli_figures(khabar_bin, model_args + extra, big_jsonl, len(big), 2, cpu)
                spark[f"khabar predict, {'1 thread' if threads else 'all cores'}"] = {
                    "first_docs_per_s": whole, "docs_per_s": inner, "docs_per_cpu_s": cpu["rate"]}
            results["spark_bow"] = spark
            print(f"\nSpark (examples/spark/classify.py, bow; {len(big)} rows, Parquet in and out):")
            for master, r in spark.items():
                if master.startswith("local"):
                    print(f"  {master:28s} {r['docs_per_s']:10,.0f} docs/s, {r['docs_per_cpu_s']:8,.0f} per "
                          f"CPU-second   (first run, workers starting: {r['first_docs_per_s']:,.0f} docs/s)")
                else:
                    print(f"  {master:28s} {r['docs_per_s']:10,.0f} docs/s, {r['docs_per_cpu_s']:8,.0f} per "
                          f"CPU-second   (whole command: {r['first_docs_per_s']:,.0f} docs/s)")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    if a.markdown:
        write_section(Path(a.markdown), results, a)
        print(f"wrote {a.markdown}")


BEGIN, END = "<!-- python:begin -->", "<!-- python:end -->"


def write_section(path, results, a):
    """The figures as a section of bench/RESULTS.md, between its markers (replaced when there)."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent).stdout.strip()
    fmt = lambda v: "–" if v is None else f"{v:,.0f}"
    md = [BEGIN, "", "## Python package and Spark", "",
          f"`bench/python_bench.py` (commit {commit}, {time.strftime('%Y-%m-%d')}, "
          f"{results['cores']} cores): {results['n']:,} texts of {results['corpus']}, documents per "
          f"second, the best of {a.repeats} runs, the model's load left out but for the whole "
          "command's figure.", "",
          "| model | `predict_batch` | `predict_arrow` | `khabar predict` (classifying) | "
          "`khabar predict` (whole command) |", "|---|---|---|---|---|"]
    for label, r in results["models"].items():
        md.append(f"| {label}, all cores | {fmt(r['predict_batch'])} | {fmt(r['predict_arrow'])} | "
                  f"{fmt(r['cli_classify'])} | {fmt(r['cli_wall'])} |")
        if r.get("predict_batch_1_thread"):
            md.append(f"| {label}, 1 thread | {fmt(r['predict_batch_1_thread'])} | "
                      f"{fmt(r['predict_arrow_1_thread'])} | {fmt(r.get('cli_classify_1_thread'))} | "
                      f"{fmt(r.get('cli_wall_1_thread'))} |")
    spark = results.get("spark_bow")
    if spark:
        md += ["", f"Spark (examples/spark/classify.py, the bow model, the texts {a.spark_copies} times "
               "over in 8 Parquet files, Parquet out; best of 2 runs after a first one) against "
               "`khabar predict` on the same rows as JSON lines. Per CPU-second counts every process "
               "of the job (driver, JVM, Python workers): what one executor core gives.", "",
               "| run | rows/s | rows per CPU-second | first run (workers starting; the command: whole) |",
               "|---|---|---|---|"]
        for master, r in spark.items():
            md.append(f"| {master} | {fmt(r['docs_per_s'])} | {fmt(r['docs_per_cpu_s'])} | "
                      f"{fmt(r['first_docs_per_s'])} |")
    md += ["", END]
    section = "\n".join(md)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
