#!/usr/bin/env python3
"""Classify a Parquet or JSON-lines dataset with khabar on Spark, and write Parquet.

    spark-submit examples/spark/classify.py articles.parquet labeled/ --model my-model
    python examples/spark/classify.py articles.jsonl labeled/ --master 'local[2]'

Each row's text (``--text-col``, default ``text``) is classified; the output holds the row's id
(``--id-col``, default ``id``), its ``label`` and its ``score`` (the label's probability). The
texts travel to Python as Arrow batches (``mapInArrow``) and khabar reads them in place
(``Classifier.predict_arrow``). Each Python worker process loads the model once
(``khabar.cached``) and keeps it for every batch and task it runs after; it classifies on as
many threads as Spark gives a task (``spark.task.cpus``, 1 by default), since Spark runs one
worker per task slot.

Without ``--model`` the built-in news model is used. On a cluster the model directory must be
readable where the executors run: ship it with ``--archives my-model.tar.gz#my-model`` and give
``--model my-model`` (see the README's "Spark" section).
"""

import argparse
import sys
import time


def task_threads():
    """The cores Spark gives each task (``spark.task.cpus``, 1 by default). Spark runs one
    Python worker per task slot, so a worker that used every core of the machine would compete
    with the others."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    try:
        return max(1, int(ctx.cpus())) if ctx is not None else 1
    except (AttributeError, TypeError, ValueError):
        return 1


def classify_batches(batches, model, text_col, id_col, threshold, threads=None):
    """``mapInArrow``'s function: Arrow batches of (id, text) in, (id, label, score) out."""
    import pyarrow as pa

    import khabar

    # Loaded on the first batch a worker process sees, then kept for the process's life.
    clf = khabar.cached(model, threads=threads or task_threads())
    for batch in batches:
        out = clf.predict_arrow(batch.column(text_col), threshold=threshold)
        yield pa.RecordBatch.from_arrays(
            [batch.column(id_col), out.column("label"), out.column("score")],
            names=[id_col, "label", "score"],
        )


def input_format(path, given):
    """``parquet`` or ``json``: as given, else from the path's extension (or, for a
    directory, from its files' extensions)."""
    if given != "auto":
        return given
    import os

    names = [path]
    if os.path.isdir(path):
        names = [n for n in os.listdir(path) if not n.startswith((".", "_"))]
    for name in names:
        lower = name.lower()
        if lower.endswith(".parquet") or lower.endswith(".parq"):
            return "parquet"
        for ext in (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".json.gz", ".ndjson.gz"):
            if lower.endswith(ext):
                return "json"
    raise SystemExit(
        f"cannot tell the format of {path} from its name: give --format parquet or --format json"
    )


def classify(spark, input_path, output_path, *, model=None, text_col="text", id_col="id",
             fmt="auto", threshold=None, overwrite=False, threads=None):
    """Runs the job on ``spark``; returns the number of rows written."""
    from pyspark.sql.types import FloatType, StringType, StructField, StructType

    fmt = input_format(input_path, fmt)
    reader = spark.read
    df = reader.parquet(input_path) if fmt == "parquet" else reader.json(input_path)
    for col in (text_col, id_col):
        if col not in df.columns:
            raise SystemExit(
                f"{input_path}: no column {col!r} (columns: {', '.join(df.columns)}); "
                f"give --text-col and --id-col"
            )
    if not isinstance(df.schema[text_col].dataType, StringType):
        raise SystemExit(f"{input_path}: column {text_col!r} is {df.schema[text_col].dataType}, not a string")
    schema = StructType([
        df.schema[id_col],
        StructField("label", StringType(), True),
        StructField("score", FloatType(), True),
    ])
    out = df.select(id_col, text_col).mapInArrow(
        lambda batches: classify_batches(batches, model, text_col, id_col, threshold, threads), schema
    )
    writer = out.write.mode("overwrite" if overwrite else "errorifexists")
    writer.parquet(output_path)
    return spark.read.parquet(output_path).count()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="a Parquet or JSON-lines file or directory")
    ap.add_argument("output", help="the Parquet directory to write")
    ap.add_argument("--model", metavar="DIR", help="a model directory (default: the built-in news model)")
    ap.add_argument("--text-col", default="text", help="the column of the texts [text]")
    ap.add_argument("--id-col", default="id", help="the column copied to the output as the row's id [id]")
    ap.add_argument("--format", default="auto", choices=["auto", "parquet", "json"],
                    help="the input's format [auto: from the extension]")
    ap.add_argument("--threshold", type=float, metavar="P",
                    help="label 'unsure' where the best probability is below P")
    ap.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    ap.add_argument("--threads", type=int, metavar="N",
                    help="khabar's threads in each Python worker [spark.task.cpus, 1 by default]")
    ap.add_argument("--master", help="Spark master, for runs without spark-submit (e.g. 'local[2]')")
    a = ap.parse_args(argv)

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("khabar-classify")
    if a.master:
        builder = builder.master(a.master)
    spark = builder.getOrCreate()
    try:
        start = time.perf_counter()
        n = classify(spark, a.input, a.output, model=a.model, text_col=a.text_col, id_col=a.id_col,
                     fmt=a.format, threshold=a.threshold, overwrite=a.overwrite, threads=a.threads)
        took = time.perf_counter() - start
        print(f"classified {n} rows into {a.output} in {took:.1f} s", file=sys.stderr)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
