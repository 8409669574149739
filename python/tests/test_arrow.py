import pytest

pa = pytest.importorskip("pyarrow")

SOME = [
    "Sensex closes 400 points higher as bank shares rally",
    "The striker scored twice as United beat City in the cup final",
    "भारत ने ऑस्ट्रेलिया को तीसरे टेस्ट में हराया",
    "",
    "Opposition lawmakers walked out of parliament on Wednesday",
]


def expected(clf, texts, **kw):
    return [p["label"] for p in clf.predict_batch(texts, **kw)], [
        p["score"] for p in clf.predict_batch(texts, **kw)
    ]


def f32(xs):
    return pa.array(xs, type=pa.float32()).to_pylist()


@pytest.mark.parametrize("string_type", [pa.string(), pa.large_string()])
def test_arrow_strings_in_record_batch_out(bow, news_test, string_type):
    texts = news_test[0] + SOME
    out = bow.predict_arrow(pa.array(texts, type=string_type))
    assert isinstance(out, pa.RecordBatch)
    assert out.schema.names == ["label", "score"]
    assert out.schema.field("label").type == pa.string()
    assert out.schema.field("score").type == pa.float32()
    labels, scores = expected(bow, texts)
    assert out.column("label").to_pylist() == labels
    assert out.column("score").to_pylist() == f32(scores)
    out.validate(full=True)


def test_arrow_nulls_give_null_rows(bow):
    texts = [SOME[0], None, SOME[1], None, None, SOME[2], SOME[4], None, SOME[3]]
    for string_type in (pa.string(), pa.large_string()):
        out = bow.predict_arrow(pa.array(texts, type=string_type))
        out.validate(full=True)
        assert out.num_rows == len(texts)
        assert out.column("label").null_count == 4
        assert out.column("score").null_count == 4
        labels, scores = expected(bow, [t for t in texts if t is not None])
        got = [(l, s) for l, s in zip(out.column("label").to_pylist(), out.column("score").to_pylist())]
        want = iter(zip(labels, f32(scores)))
        for t, row in zip(texts, got):
            assert row == ((None, None) if t is None else next(want))
    with pytest.raises(ValueError, match="2 null text.*first at index 1"):
        bow.predict_arrow(pa.array([SOME[0], None, None]), nulls="raise")
    with pytest.raises(ValueError, match="nulls must be"):
        bow.predict_arrow(pa.array([SOME[0]]), nulls="skip")


def test_arrow_slices_and_chunks(bow, news_test):
    texts = news_test[0][:40]
    with_nulls = [None if i % 7 == 3 else t for i, t in enumerate(texts)]
    whole = bow.predict_arrow(pa.array(with_nulls))
    # A slice starts inside the buffers (and inside a byte of the validity bitmap).
    sliced = bow.predict_arrow(pa.array(with_nulls).slice(5, 23))
    assert sliced.to_pylist() == whole.slice(5, 23).to_pylist()
    chunked = pa.chunked_array([with_nulls[:13], with_nulls[13:30], with_nulls[30:]])
    assert bow.predict_arrow(chunked).to_pylist() == whole.to_pylist()
    assert bow.predict_arrow(pa.chunked_array([], type=pa.string())).num_rows == 0
    assert bow.predict_arrow(pa.array([], type=pa.large_string())).num_rows == 0
    # Dictionary-encoded strings, and plain lists, are converted first.
    encoded = pa.array(with_nulls).dictionary_encode()
    assert bow.predict_arrow(encoded).to_pylist() == whole.to_pylist()
    assert bow.predict_arrow(list(texts[:3])).to_pylist() == whole.slice(0, 3).to_pylist()


def test_arrow_threshold(builtin):
    recipe = "Preheat the oven to 180 degrees, whisk the eggs with sugar and fold in the flour"
    texts = [recipe, SOME[1]]
    out = builtin.predict_arrow(pa.array(texts), threshold=0.7, unsure_label="?")
    labels, _ = expected(builtin, texts, threshold=0.7, unsure_label="?")
    assert out.column("label").to_pylist() == labels == ["?", "sports"]


def test_arrow_refuses_what_is_not_strings(bow):
    with pytest.raises(TypeError, match="strings"):
        bow.predict_arrow(pa.array([1, 2, 3]))
    with pytest.raises(TypeError, match="Arrow array"):
        bow.predict_arrow(object())
    with pytest.raises(TypeError, match="strings"):
        bow.predict_arrow(pa.array([b"bytes"], type=pa.binary()))
