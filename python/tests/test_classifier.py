import math
import threading
import time

import pytest

import khabar

STRIKER = "The striker scored twice as United beat City in the cup final"
SENSEX = "Sensex closes 400 points higher as bank shares rally"
RECIPE = "Preheat the oven to 180 degrees, whisk the eggs with sugar and fold in the flour"
HINDI = "भारत ने ऑस्ट्रेलिया को तीसरे टेस्ट में हराया"


def test_default_model_predicts_the_readme_examples(builtin):
    assert len(builtin.labels) == 11
    assert "sports" in builtin.labels and "business" in builtin.labels
    p = builtin.predict(STRIKER)
    assert set(p) == {"label", "score", "top"}
    assert p["label"] == "sports"
    assert p["score"] > 0.99
    assert builtin.predict(SENSEX)["label"] == "business"
    assert builtin.predict(HINDI)["label"] == "sports"


def test_top_is_sorted_and_holds_top_k_labels(builtin):
    p = builtin.predict(SENSEX)
    assert len(p["top"]) == 3
    scores = [t["score"] for t in p["top"]]
    assert scores == sorted(scores, reverse=True)
    assert p["top"][0] == {"label": p["label"], "score": p["score"]}
    everything = builtin.predict(SENSEX, top_k=100)["top"]
    assert sorted(t["label"] for t in everything) == sorted(builtin.labels)
    # Probabilities of a single-label model sum to 1.
    assert math.isclose(sum(t["score"] for t in everything), 1.0, rel_tol=1e-4)
    assert [t["label"] for t in builtin.predict(SENSEX, top_k=1)["top"]] == ["business"]
    with pytest.raises(ValueError, match="top_k"):
        builtin.predict(SENSEX, top_k=0)
    with pytest.raises(TypeError, match="top_k"):
        builtin.predict(SENSEX, top_k=True)


def test_predict_batch_keeps_input_order(bow, news_test):
    texts = news_test[0]
    one_by_one = [bow.predict(t) for t in texts]
    batch = bow.predict_batch(texts)
    assert batch == one_by_one
    assert bow.predict_batch(list(reversed(texts))) == list(reversed(one_by_one))
    assert bow.predict_batch([]) == []
    # Any iterable of str will do.
    assert bow.predict_batch(t for t in texts[:3]) == one_by_one[:3]


def test_predict_batch_rejects_what_is_not_text(bow):
    with pytest.raises(TypeError, match="single str"):
        bow.predict_batch("one string")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        bow.predict_batch(["fine", 3])


def test_threshold_answers_unsure_as_the_cli_does(builtin):
    # The README's `khabar predict --threshold 0.7` example.
    recipe, striker = builtin.predict_batch([RECIPE, STRIKER], threshold=0.7)
    assert recipe["label"] == "unsure"
    assert recipe["score"] < 0.7
    # The best label stays in top, with the score shown.
    assert recipe["top"][0]["score"] == recipe["score"]
    assert recipe["top"][0]["label"] != "unsure"
    assert striker["label"] == "sports"
    named = builtin.predict(RECIPE, threshold=0.7, unsure_label="other")
    assert named["label"] == "other"
    # threshold="model" is the model's own (`--unsure`).
    own = builtin.unsure_below
    assert own is not None and 0 < own < 1
    assert builtin.predict(RECIPE, threshold="model")["label"] == (
        "unsure" if recipe["score"] < own else recipe["top"][0]["label"]
    )
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match="between 0 and 1"):
            builtin.predict(RECIPE, threshold=bad)
    with pytest.raises(ValueError, match="'model'"):
        builtin.predict(RECIPE, threshold="sometimes")
    # Any real number will do (numpy's float32 is not a float).
    from fractions import Fraction

    assert builtin.predict(RECIPE, threshold=Fraction(7, 10))["label"] == "unsure"


def test_batch_calls_release_the_gil(bow, news_test):
    """While predict_batch works in one thread, another thread runs Python code.

    The main thread ticks every millisecond while a worker thread is inside predict_batch. With
    the GIL held for the whole call, the main thread cannot run at all until the call returns
    (at most one or two ticks slip in at its edges); with the GIL released it ticks all along.
    """
    texts = news_test[0]
    batch = list(texts)
    # A batch that takes at least 0.3 s here, whatever the machine.
    while True:
        start = time.perf_counter()
        bow.predict_batch(batch)
        took = time.perf_counter() - start
        if took >= 0.3:
            break
        batch = batch * max(2, math.ceil(0.4 / max(took, 1e-3)))

    state = {"inside": False, "done": False}

    def work():
        state["inside"] = True
        bow.predict_batch(batch)
        state["done"] = True

    ticks_inside = 0
    worker = threading.Thread(target=work)
    worker.start()
    while not state["done"]:
        if state["inside"] and not state["done"]:
            ticks_inside += 1
        time.sleep(0.001)
    worker.join()
    # 0.3 s at one tick per millisecond or so; 20 leaves a wide margin for a slow machine.
    assert ticks_inside >= 20, f"the main thread ran only {ticks_inside} times during the call"


def test_explain_adds_up_to_the_logit(builtin):
    e = builtin.explain(SENSEX, n=3)
    assert e["label"] == "business"
    assert e["score"] == builtin.predict(SENSEX)["score"]
    assert 0 < len(e["raised"]) <= 3 and len(e["lowered"]) <= 3
    total = e["bias"] + sum(c["weight"] for c in e["raised"] + e["lowered"]) + e["other"]
    assert math.isclose(total, e["logit"], abs_tol=1e-3)
    weights = [c["weight"] for c in e["raised"]]
    assert weights == sorted(weights, reverse=True) and weights[0] > 0
    assert {c["kind"] for c in e["raised"]} <= {"word", "subword", "word n-gram", "char n-gram", "encoder"}
    # The README's example: "sensex" is among the features that raised business most.
    assert {"feature": "sensex", "kind": "word"} in [
        {"feature": c["feature"], "kind": c["kind"]} for c in e["raised"]
    ]
    with pytest.raises(ValueError):
        builtin.explain(SENSEX, n=-1)


def test_evaluate_agrees_with_counting_by_hand(bow, news_test):
    texts, gold = news_test
    report = bow.evaluate(texts, gold)
    predicted = [p["label"] for p in bow.predict_batch(texts)]
    assert report["n"] == len(texts)
    right = sum(p == g for p, g in zip(predicted, gold))
    assert report["accuracy"] == pytest.approx(right / len(texts))
    f1s = []
    for label in sorted(set(gold) | set(predicted)):
        tp = sum(p == g == label for p, g in zip(predicted, gold))
        predicted_n = sum(p == label for p in predicted)
        support = sum(g == label for g in gold)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per = report["per_class"][label]
        assert per["support"] == support
        assert per["precision"] == pytest.approx(precision)
        assert per["recall"] == pytest.approx(recall)
        assert per["f1"] == pytest.approx(f1)
    assert report["macro_f1"] == pytest.approx(sum(f1s) / len(f1s))
    assert sum(map(sum, report["confusion"])) == len(texts)
    assert report["top_k_accuracy"]["1"] == pytest.approx(report["accuracy"])


def test_evaluate_counts_unknown_labels_as_errors(bow):
    report = bow.evaluate(["The striker scored twice", "Sensex closes higher"], ["sports", "weather"])
    assert "weather" in report["labels"]
    assert report["per_class"]["weather"]["recall"] == 0.0
    assert report["accuracy"] <= 0.5


def test_evaluate_needs_as_many_labels_as_texts(bow):
    with pytest.raises(ValueError, match="same length"):
        bow.evaluate(["a", "b"], ["sports"])
    with pytest.raises(ValueError, match="at least one"):
        bow.evaluate([], [])


def test_train_save_load_gives_identical_predictions(bow, news_test, tmp_path):
    texts = news_test[0]
    bow.save(tmp_path / "model")
    assert {p.name for p in (tmp_path / "model").iterdir()} >= {
        "config.json",
        "tokenizer.json",
        "model.safetensors",
    }
    loaded = khabar.Classifier.load(tmp_path / "model")
    assert loaded.labels == bow.labels
    assert loaded.predict_batch(texts, top_k=6) == bow.predict_batch(texts, top_k=6)
    assert loaded.config["checksums"] == bow.config["checksums"] or bow.config["checksums"] == {}


def test_training_is_repeatable_and_learns(news_train, news_test):
    texts, labels = news_train
    a = khabar.train(texts, labels, seed=3, threads=2)
    b = khabar.train(texts, labels, seed=3, threads=2)
    assert a.predict_batch(news_test[0]) == b.predict_batch(news_test[0])
    assert sorted(a.labels) == sorted(set(labels))
    assert a.evaluate(*news_test)["accuracy"] > 0.8
    assert a.config["architecture"]["kind"] == "bow"


def test_train_options_map_onto_the_library(news_train):
    texts, labels = news_train
    clf = khabar.train(texts, labels, calibration_folds=0, compact=False, epochs=3, vocab_size=500)
    # Without calibration, a bow model records no unsure threshold.
    assert clf.unsure_below is None
    calibrated = khabar.train(texts, labels)
    assert calibrated.unsure_below is not None


def test_hybrid_options_reach_the_model(news_train):
    texts, labels = news_train
    clf = khabar.train(texts, labels, arch="hybrid", max_tokens=64, cascade_keep=0.5)
    arch = clf.config["architecture"]
    assert (arch["kind"], arch["max_tokens"], arch["cascade_keep"]) == ("hybrid", 64, 0.5)
    encoder = khabar.train(texts, labels, arch="encoder", max_tokens=32)
    assert encoder.config["architecture"]["max_tokens"] == 32
    with pytest.raises(ValueError, match="max_tokens applies to arch='encoder' and 'hybrid'"):
        khabar.train(texts, labels, max_tokens=64)
    with pytest.raises(ValueError, match="cascade_keep applies to arch='hybrid'"):
        khabar.train(texts, labels, arch="encoder", cascade_keep=0.5)
    with pytest.raises(khabar.KhabarValueError, match="cascade_keep"):
        khabar.train(texts, labels, arch="hybrid", cascade_keep=2.0)


def test_cross_validation_options_reach_training(news_train):
    texts, labels = news_train
    # Two sources: each held out whole, in two folds.
    sources = ["wire" if i % 3 else "site" for i in range(len(texts))]
    by_source = khabar.train(texts, labels, arch="encoder", sources=sources, cv_by_source=True)
    training = by_source.config["training"]
    assert training["valid"] == "2-fold cross-validation by source of the training data"
    assert training["valid_examples"] == len(texts)
    together = khabar.train(texts, labels, arch="encoder", cv_copies_together=True)
    assert together.config["training"]["valid"] == (
        "5-fold cross-validation (a repeated text's copies in one fold) of the training data"
    )
    with pytest.raises(ValueError, match="cv_by_source needs sources"):
        khabar.train(texts, labels, arch="encoder", cv_by_source=True)
    with pytest.raises(ValueError, match="cv_by_source needs texts from two sources or more"):
        khabar.train(texts, labels, arch="encoder", sources=["one"] * len(texts), cv_by_source=True)
    with pytest.raises(ValueError, match=r"one source per text \(got 2 sources for 300 texts\)"):
        khabar.train(texts, labels, arch="encoder", sources=["a", "b"], cv_by_source=True)
    with pytest.raises(TypeError, match="sources must be a sequence"):
        khabar.train(texts, labels, arch="encoder", sources="wire", cv_by_source=True)
    for option in ("cv_by_source", "cv_copies_together"):
        with pytest.raises(ValueError, match=f"{option} applies to arch='encoder' and 'hybrid'"):
            khabar.train(texts, labels, sources=sources, **{option: True})


def test_train_refuses_unknown_and_bad_options(news_train):
    texts, labels = news_train
    with pytest.raises(TypeError, match=r"'epoch' \(did you mean 'epochs'\?\)"):
        khabar.train(texts, labels, epoch=3)
    with pytest.raises(khabar.KhabarValueError, match="epochs must be at least 1"):
        khabar.train(texts, labels, epochs=0)
    with pytest.raises(khabar.KhabarValueError, match="calibration_folds"):
        khabar.train(texts, labels, calibration_folds=1)
    with pytest.raises(ValueError, match="arch must be"):
        khabar.train(texts, labels, arch="forest")
    with pytest.raises(ValueError, match="same length"):
        khabar.train(texts, labels[:-1])
    with pytest.raises(TypeError, match="labels must be a list of str"):
        khabar.train(texts[:2], [1, 2])
    with pytest.raises(TypeError, match="not a single str"):
        khabar.train(texts[:2], "sports")
    # A corpus of one label cannot train a classifier: the library says so.
    with pytest.raises(khabar.KhabarValueError):
        khabar.train(["a goal", "a match", "a striker"], ["sports"] * 3)


def test_multi_label_training_answers_every_label(tmp_path):
    texts, labels = [], []
    for i in range(30):
        texts.append(f"the striker scored a goal in the match {i}")
        labels.append(["sports"])
        texts.append(f"shares and markets rose in trading {i}")
        labels.append(["business"])
        texts.append(f"the club's shares rose after the striker's goal in the match {i}")
        labels.append(["sports", "business"])
    clf = khabar.train(texts, labels, multi_label=True, seed=1)
    assert clf.is_multi_label
    p = clf.predict("shares rose in trading as the striker scored a goal in the match")
    assert {"labels", "below_threshold"} <= set(p)
    assert all(l["label"] in {"sports", "business"} for l in p["labels"])
    with pytest.raises(ValueError, match="single-label"):
        clf.predict("x", threshold=0.5)
    # Its evaluation, with a list of labels per text, agrees with the labels it answers.
    report = clf.evaluate(texts, labels)
    assert report["multi_label"] is True and report["n"] == len(texts)
    answered = [{l["label"] for l in p["labels"]} for p in clf.predict_batch(texts)]
    exact = sum(a == set(g) for a, g in zip(answered, labels)) / len(texts)
    assert report["subset_accuracy"] == pytest.approx(exact)
    with pytest.raises(TypeError, match="list of lists"):
        clf.evaluate(texts, ["sports"] * len(texts))
    with pytest.raises(TypeError, match="list of lists"):
        khabar.train(texts, ["sports"] * len(texts), multi_label=True)


def test_missing_model_dir_is_a_clear_os_error(tmp_path):
    with pytest.raises(khabar.KhabarOSError, match="not a directory") as info:
        khabar.Classifier.load(tmp_path / "no-such-model")
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, khabar.KhabarError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(khabar.KhabarOSError, match="config.json"):
        khabar.Classifier.load(tmp_path / "empty")


def test_bad_load_arguments(tmp_path):
    with pytest.raises(ValueError, match="mode must be"):
        khabar.Classifier.default(mode="quick")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        khabar.Classifier.default(threads=0)
    with pytest.raises(TypeError):
        khabar.Classifier(object())


def test_cached_loads_once(tmp_path, bow):
    bow.save(tmp_path / "m")
    first = khabar.cached(tmp_path / "m")
    assert khabar.cached(str(tmp_path / "m")) is first
    assert khabar.cached(tmp_path / "m", threads=1) is not first
    assert first.predict(SENSEX) == bow.predict(SENSEX)


def test_fast_mode_of_the_builtin_hybrid(builtin):
    fast = khabar.Classifier.default(mode="fast", threads=1)
    assert fast.threads == 1
    # Both answer the sure cases alike; the fast mode never reads the encoder.
    assert fast.predict(STRIKER)["label"] == builtin.predict(STRIKER)["label"] == "sports"
