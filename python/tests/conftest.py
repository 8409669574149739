import json
from pathlib import Path

import pytest

import khabar

REPO = Path(__file__).resolve().parents[2]
NEWS = REPO / "data" / "news"


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


@pytest.fixture(scope="session")
def news_train():
    """The small English and Hindi corpus that ships with the repository (six topics)."""
    return read_jsonl(NEWS / "train.jsonl")


@pytest.fixture(scope="session")
def news_test():
    return read_jsonl(NEWS / "test.jsonl")


@pytest.fixture(scope="session")
def bow(news_train):
    """A bow model trained on data/news/train.jsonl (seconds)."""
    texts, labels = news_train
    return khabar.train(texts, labels, seed=7)


@pytest.fixture(scope="session")
def builtin():
    return khabar.Classifier.default()
