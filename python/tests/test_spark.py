"""examples/spark/classify.py in Spark's local mode, on a dataset made here.

Needs pyspark and Java; skipped without them, unless KHABAR_REQUIRE_SPARK=1 (python/ci.sh sets
it) makes their absence a failure.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = REPO / "examples" / "spark" / "classify.py"
REQUIRED = os.environ.get("KHABAR_REQUIRE_SPARK") == "1"


def need(condition, why):
    if not condition:
        if REQUIRED:
            pytest.fail(f"KHABAR_REQUIRE_SPARK=1 but {why}")
        pytest.skip(why)


try:
    import pyspark  # noqa: F401

    HAVE_PYSPARK = True
except ImportError:
    HAVE_PYSPARK = False

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402


@pytest.fixture(scope="module")
def dataset(news_test):
    texts, _ = news_test
    # Every text twice (so more than one Arrow batch per partition is not needed to see order
    # kept by id), with ids that are not row numbers.
    rows = [{"id": f"doc-{i * 7 + 3}", "body": t} for i, t in enumerate(texts + texts[::-1])]
    return rows


def run(*args, timeout=600):
    need(HAVE_PYSPARK, "pyspark is not installed")
    need(shutil.which("java") or os.environ.get("JAVA_HOME"), "no Java (JAVA_HOME or java on PATH)")
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args), "--master", "local[2]"],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def read_output(path):
    table = pq.read_table(path)
    assert table.schema.names == ["id", "label", "score"]
    assert table.schema.field("score").type == pa.float32()
    return {r["id"]: (r["label"], r["score"]) for r in table.to_pylist()}


def expected(clf, rows):
    preds = clf.predict_batch([r["body"] for r in rows])
    f32 = pa.array([p["score"] for p in preds], type=pa.float32()).to_pylist()
    return {r["id"]: (p["label"], s) for r, p, s in zip(rows, preds, f32)}


def test_spark_parquet_with_the_builtin_model(dataset, builtin, tmp_path):
    src = tmp_path / "articles.parquet"
    pq.write_table(pa.Table.from_pylist(dataset), src, row_group_size=50)
    run(src, tmp_path / "out", "--text-col", "body")
    got = read_output(tmp_path / "out")
    assert len(got) == len(dataset)
    assert got == expected(builtin, dataset)


def test_spark_json_lines_with_a_trained_model(dataset, bow, tmp_path):
    bow.save(tmp_path / "model")
    src = tmp_path / "articles.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for r in dataset:
            f.write(json.dumps({"key": r["id"], "body": r["body"]}, ensure_ascii=False) + "\n")
    run(src, tmp_path / "out", "--model", tmp_path / "model", "--text-col", "body", "--id-col", "key")
    table = pq.read_table(tmp_path / "out")
    assert table.schema.names == ["key", "label", "score"]
    got = {r["key"]: (r["label"], r["score"]) for r in table.to_pylist()}
    assert got == expected(bow, dataset)


def test_spark_names_a_missing_column(dataset, tmp_path):
    need(HAVE_PYSPARK, "pyspark is not installed")
    src = tmp_path / "articles.parquet"
    pq.write_table(pa.Table.from_pylist(dataset), src)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(tmp_path / "out"), "--master", "local[1]"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode != 0
    assert "no column 'text'" in done.stderr


def test_the_input_format_comes_from_the_extension(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("classify", SCRIPT)
    classify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(classify)
    assert classify.input_format("a/b.parquet", "auto") == "parquet"
    assert classify.input_format("a/b.JSONL", "auto") == "json"
    assert classify.input_format("a/b.ndjson.gz", "auto") == "json"
    assert classify.input_format("a/b.txt", "json") == "json"
    # A directory: its files say (Spark's own _SUCCESS and dot files are not looked at).
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "_SUCCESS").write_text("")
    (tmp_path / "d" / "part-0.snappy.parquet").write_text("")
    assert classify.input_format(str(tmp_path / "d"), "auto") == "parquet"
    with pytest.raises(SystemExit, match="--format"):
        classify.input_format("a/b.csv", "auto")
