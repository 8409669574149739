"""khabar: a news-topic classifier (Rust), from Python.

Classify with the built-in news model (English and Hindi, 11 topics)::

    import khabar
    clf = khabar.Classifier.default()
    clf.predict("The striker scored twice as United beat City in the cup final")
    # {'label': 'sports', 'score': 0.9997, 'top': [{'label': 'sports', 'score': 0.9997}, ...]}

or train one from your own labeled texts::

    clf = khabar.train(texts, labels)
    clf.save("my-model")
    clf = khabar.Classifier.load("my-model")

The batch calls (``predict_batch``, ``predict_arrow``, ``evaluate``) and ``train`` run on khabar's
own threads with the GIL released, so other Python threads keep running meanwhile. A model
directory is the same as ``khabar train`` writes and ``khabar predict --model`` reads.
"""

from __future__ import annotations

import numbers
import threading
from os import PathLike, fspath
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from . import _khabar
from ._errors import KhabarError, KhabarOSError, KhabarValueError

__version__ = _khabar.__version__

__all__ = [
    "Classifier",
    "KhabarError",
    "KhabarOSError",
    "KhabarValueError",
    "train",
    "cached",
    "__version__",
]

_MODES = ("fast", "cascade", "accurate")


def _threshold(clf: "_khabar._Classifier", threshold: Union[float, str, None]) -> Optional[float]:
    """A threshold as a probability or None; "model" is the model's own (``--unsure``)."""
    if threshold is None:
        return None
    if isinstance(threshold, str):
        if threshold != "model":
            raise ValueError(f"threshold must be a probability, 'model' or None (got {threshold!r})")
        own = clf.unsure_below
        if own is None:
            raise KhabarValueError(
                "threshold='model' uses the threshold a model records at training, and this "
                "model has none (bow models trained with calibrated probabilities, the default, "
                "and encoder and hybrid models have one): give a probability"
            )
        return own
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a probability, 'model' or None (got {threshold!r})")
    return float(threshold)


def _top_k(top_k: Any) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral):
        raise TypeError(f"top_k must be an int (got {top_k!r})")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1 (got {top_k})")
    return int(top_k)


def _texts(texts: Any, what: str = "texts") -> List[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of str, not a single {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"{what}[{i}] is {type(t).__name__}, not str")
    return out


class Classifier:
    """A trained classifier: load it once (``load``, ``default``, or ``train``), then classify.

    Safe to share between threads; its batch calls release the GIL.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: "_khabar._Classifier") -> None:
        # Not for direct use: see Classifier.load, Classifier.default and khabar.train.
        if not isinstance(inner, _khabar._Classifier):
            raise TypeError(
                "use khabar.Classifier.load(path), khabar.Classifier.default() or "
                "khabar.train(texts, labels) to get a Classifier"
            )
        self._inner = inner

    @classmethod
    def load(
        cls, path: Union[str, "PathLike[str]"], *, mode: str = "cascade", threads: Optional[int] = None
    ) -> "Classifier":
        """Loads a model directory (as ``khabar train`` or ``Classifier.save`` writes it).

        ``mode`` says how a hybrid model answers: ``"cascade"`` (its n-gram part alone when it is
        sure enough, the encoder for the rest; the default), ``"fast"`` (never the encoder) or
        ``"accurate"`` (the encoder on every text); other models answer the same in every mode.
        ``threads`` caps the threads of the batch calls (default: one per core).

        Raises KhabarOSError when the directory is missing or not a valid model.
        """
        return cls(_khabar._Classifier.load(fspath(path), mode, threads))

    @classmethod
    def default(cls, *, mode: str = "cascade", threads: Optional[int] = None) -> "Classifier":
        """The built-in news model: English and Hindi, 11 topics (international, politics,
        business, sports, science-technology, entertainment, health, education, automobile,
        crime, lifestyle). It is compiled into the package: nothing to download."""
        return cls(_khabar._Classifier.default(mode, threads))

    @property
    def labels(self) -> List[str]:
        """The labels, in the order of the model's outputs."""
        return self._inner.labels

    @property
    def is_multi_label(self) -> bool:
        """Whether the model gives each text every label over its own threshold."""
        return self._inner.is_multi_label

    @property
    def threads(self) -> int:
        """Threads the batch calls run on."""
        return self._inner.threads

    @property
    def unsure_below(self) -> Optional[float]:
        """The probability under which the model's answers were more often wrong than right on
        held-out data at training (what ``threshold="model"`` uses), or None."""
        return self._inner.unsure_below

    @property
    def config(self) -> Dict[str, Any]:
        """The model's config.json: architecture, labels, training metadata, checksums."""
        return self._inner.config()

    def __repr__(self) -> str:
        arch = self.config.get("architecture", {}).get("kind", "?")
        return f"<khabar.Classifier {arch}, {len(self.labels)} labels>"

    def predict(
        self,
        text: str,
        *,
        top_k: int = 3,
        threshold: Union[float, str, None] = None,
        unsure_label: str = "unsure",
    ) -> Dict[str, Any]:
        """Classifies one text. Returns a dict, as ``khabar predict --output jsonl`` writes it:

        - ``label``: the most probable label (``unsure_label`` instead when its probability is
          below ``threshold``),
        - ``score``: that label's probability,
        - ``top``: the ``top_k`` most probable labels, best first, each ``{"label", "score"}``
          (the best label stays in ``top`` even when ``label`` is unsure),
        - for a multi-label model, also ``labels`` (every label over its threshold, best first)
          and ``below_threshold`` (true when there is none).

        ``threshold`` is a probability, ``"model"`` (the model's own, ``unsure_below``) or None.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        return self.predict_batch([text], top_k=top_k, threshold=threshold, unsure_label=unsure_label)[0]

    def predict_batch(
        self,
        texts: Iterable[str],
        *,
        top_k: int = 3,
        threshold: Union[float, str, None] = None,
        unsure_label: str = "unsure",
    ) -> List[Dict[str, Any]]:
        """Classifies many texts in parallel, with the GIL released; one dict per text (see
        ``predict``), in input order."""
        texts = _texts(texts)
        return self._inner.predict_batch(
            texts, _top_k(top_k), _threshold(self._inner, threshold), unsure_label
        )

    def predict_arrow(
        self,
        texts: Any,
        *,
        threshold: Union[float, str, None] = None,
        unsure_label: str = "unsure",
        nulls: str = "null",
    ):
        """Classifies an Arrow array of strings; returns a ``pyarrow.RecordBatch`` with the
        columns ``label`` (string) and ``score`` (float32), one row per input row, in order.

        ``texts`` is a ``pyarrow.Array`` or ``ChunkedArray`` of ``string``, ``large_string``
        (``string_view`` and dictionary-encoded strings are converted first), or any object with
        ``__arrow_c_array__`` holding strings. The texts are read in place from the Arrow
        buffers, with the GIL released: no Python string is made.

        ``nulls``: ``"null"`` (default) gives a null text a null label and a null score;
        ``"raise"`` raises ValueError naming the first null's index.
        """
        import pyarrow as pa

        if isinstance(texts, pa.ChunkedArray):
            chunks = texts.chunks or [pa.array([], type=texts.type)]
            parts = [
                self.predict_arrow(c, threshold=threshold, unsure_label=unsure_label, nulls=nulls)
                for c in chunks
            ]
            if len(parts) == 1:
                return parts[0]
            return pa.RecordBatch.from_arrays(
                [pa.concat_arrays([p.column(i) for p in parts]) for i in range(2)],
                names=["label", "score"],
            )
        if isinstance(texts, (list, tuple)):
            texts = pa.array(texts, type=pa.string())
        if isinstance(texts, pa.Array):
            if pa.types.is_dictionary(texts.type):
                texts = texts.dictionary_decode()
            if getattr(pa.types, "is_string_view", lambda t: False)(texts.type):
                texts = texts.cast(pa.large_string())
        n, null_count, validity, offsets, data, large, scores = self._inner.predict_arrow(
            texts, _threshold(self._inner, threshold), unsure_label, nulls
        )
        valid = None if validity is None else pa.py_buffer(validity)
        label = pa.Array.from_buffers(
            pa.large_string() if large else pa.string(),
            n,
            [valid, pa.py_buffer(offsets), pa.py_buffer(data)],
            null_count,
        )
        score = pa.Array.from_buffers(pa.float32(), n, [valid, pa.py_buffer(scores)], null_count)
        return pa.RecordBatch.from_arrays([label, score], names=["label", "score"])

    def explain(self, text: str, n: int = 5) -> Dict[str, Any]:
        """Why the text got its label (``khabar predict --explain N``): a dict with ``label``,
        ``score``, ``logit``, ``bias``, ``raised`` and ``lowered`` (the ``n`` features that raised
        and lowered the label's logit most, each ``{"feature", "kind", "weight"}``) and
        ``other`` (the sum of the features not listed). ``bias + sum(weights) + other`` is the
        logit. A transformer model cannot be explained (KhabarValueError)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int (got {n!r})")
        return self._inner.explain(text, n)

    def evaluate(self, texts: Sequence[str], labels: Sequence[Any]) -> Dict[str, Any]:
        """Measures the model on texts and their true labels, as ``khabar eval --json`` does:
        a dict with ``n``, ``accuracy``, ``macro_f1``, ``labels``, ``per_class`` (by label:
        ``precision``, ``recall``, ``f1``, ``support``), ``confusion`` (``[true][predicted]``
        over ``labels``), ``top_k_accuracy``, ``expected_calibration_error`` and
        ``reliability``. Labels the model does not know count as errors.

        For a multi-label model, ``labels`` holds a list of labels per text, and the dict has
        ``micro_f1``, ``macro_f1``, ``subset_accuracy``, ``hamming_loss``, ``precision_at``,
        ``recall_at`` and ``per_label`` instead (``khabar eval`` of such a model)."""
        texts = _texts(texts)
        if isinstance(labels, (str, bytes)):
            raise TypeError("labels must be a sequence (one per text), not a single str")
        labels = list(labels)
        if not texts and not labels:
            raise ValueError("evaluate needs at least one text and its label")
        return self._inner.evaluate(texts, labels)

    def save(self, path: Union[str, "PathLike[str]"]) -> None:
        """Saves the model as a directory (atomically: an existing model there stays intact
        until the new one is complete), readable by ``Classifier.load`` and ``khabar``."""
        self._inner.save(fspath(path))


def train(texts: Sequence[str], labels: Sequence[Any], **options: Any) -> Classifier:
    """Trains a classifier on texts and their labels, with the GIL released.

    Options (defaults: those of the architecture, as ``khabar train`` has them):

    - ``arch``: ``"bow"`` (default; n-grams, seconds to train), ``"hybrid"`` (bow and the
      built-in pretrained multilingual encoder), ``"encoder"``, ``"transformer"``,
    - ``epochs``, ``patience``, ``seed`` (the same data, seed and threads give the same model),
    - ``valid_fraction`` (share held out to choose the epochs, where the model needs that),
    - ``calibration_folds`` (bow: folds that calibrate the probabilities; 0: none),
    - ``threads`` (default: one per core), ``vocab_size``,
    - ``compact``, ``keep_ngrams`` (shrink a bow model after training, as ``khabar train``),
    - ``multi_label`` (``labels`` is then a list of lists of labels),
    - ``max_tokens`` (``"encoder"``, ``"hybrid"``: the most pieces the encoder reads of a text),
    - ``cascade_keep`` (``"hybrid"``: the share, 0 to 1, of the documents on which the n-grams
      alone and both parts differ that the default mode sends to the encoder),
    - ``sources`` (the source of each text, a str per text: the feed, site or file it came
      from) with ``cv_by_source=True`` (``"encoder"``, ``"hybrid"``: cross-validate by source,
      each source held out whole, as ``khabar train --cv-by-source`` does with its files),
    - ``cv_copies_together`` (``"encoder"``, ``"hybrid"``: keep every copy of a text given more
      than once in one fold of the cross-validation, as ``khabar train --cv-copies-together``).

    An unknown option raises TypeError naming it; a value out of range KhabarValueError.
    """
    known = {
        "arch", "epochs", "seed", "valid_fraction", "calibration_folds", "threads", "compact",
        "keep_ngrams", "vocab_size", "patience", "multi_label", "max_tokens", "cascade_keep",
        "sources", "cv_by_source", "cv_copies_together",
    }
    unknown = sorted(set(options) - known)
    if unknown:
        import difflib

        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(
            f"train() got unknown option(s) {', '.join(hints)}; the options are "
            f"{', '.join(sorted(known))}"
        )
    texts = _texts(texts)
    if isinstance(labels, (str, bytes)):
        raise TypeError("labels must be a sequence (one label per text), not a single str")
    if options.get("sources") is not None:
        if isinstance(options["sources"], (str, bytes)):
            raise TypeError("sources must be a sequence (one source per text), not a single str")
        options["sources"] = list(options["sources"])
    return Classifier(_khabar.train(texts, list(labels), **options))


_cache: Dict[Any, Classifier] = {}
_cache_lock = threading.Lock()


def cached(path: Union[str, "PathLike[str]", None] = None, *, mode: str = "cascade",
           threads: Optional[int] = None) -> Classifier:
    """The classifier of ``path`` (the built-in model when None), loaded once per process and
    kept: later calls with the same arguments return the same object. For worker processes
    that classify many batches (Spark's ``mapInArrow``, a web server's handlers)."""
    key = (None if path is None else fspath(path), mode, threads)
    with _cache_lock:
        clf = _cache.get(key)
        if clf is None:
            clf = (Classifier.default(mode=mode, threads=threads) if path is None
                   else Classifier.load(path, mode=mode, threads=threads))
            _cache[key] = clf
        return clf
