# Type stubs of the khabar package (python/khabar/__init__.py holds the docstrings).
import sys
from os import PathLike
from typing import Any, Dict, Iterable, List, Literal, Optional, Sequence, Union

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:
    from typing_extensions import NotRequired, TypedDict

import pyarrow

from ._errors import KhabarError as KhabarError
from ._errors import KhabarOSError as KhabarOSError
from ._errors import KhabarValueError as KhabarValueError

__version__: str

_Path = Union[str, PathLike[str]]
_Mode = Literal["fast", "cascade", "accurate"]
_Threshold = Union[float, Literal["model"], None]

class LabelScore(TypedDict):
    label: str
    score: float

class Prediction(TypedDict):
    """A prediction, as `khabar predict --output jsonl` writes it."""

    label: str
    score: float
    top: List[LabelScore]
    # Multi-label models only.
    labels: NotRequired[List[LabelScore]]
    below_threshold: NotRequired[bool]

class Contribution(TypedDict):
    feature: str
    kind: Literal["word", "subword", "word n-gram", "char n-gram", "encoder"]
    weight: float

class Explanation(TypedDict):
    label: str
    score: float
    logit: float
    bias: float
    raised: List[Contribution]
    lowered: List[Contribution]
    other: float

class ClassMetrics(TypedDict):
    precision: float
    recall: float
    f1: float
    support: int

class Evaluation(TypedDict):
    """As `khabar eval --json` writes it."""

    n: int
    accuracy: float
    macro_f1: float
    labels: List[str]
    per_class: Dict[str, ClassMetrics]
    confusion: List[List[int]]
    top_k_accuracy: Dict[str, float]
    expected_calibration_error: float
    reliability: List[Dict[str, float]]

class MultiEvaluation(TypedDict):
    """A multi-label model's evaluation, as `khabar eval --json` writes it."""

    n: int
    multi_label: Literal[True]
    micro_precision: float
    micro_recall: float
    micro_f1: float
    macro_f1: float
    subset_accuracy: float
    hamming_loss: float
    precision_at: Dict[str, float]
    recall_at: Dict[str, float]
    labels: List[str]
    per_label: Dict[str, ClassMetrics]

class Classifier:
    @classmethod
    def load(cls, path: _Path, *, mode: _Mode = "cascade", threads: Optional[int] = None) -> Classifier: ...
    @classmethod
    def default(cls, *, mode: _Mode = "cascade", threads: Optional[int] = None) -> Classifier: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def is_multi_label(self) -> bool: ...
    @property
    def threads(self) -> int: ...
    @property
    def unsure_below(self) -> Optional[float]: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    def predict(
        self, text: str, *, top_k: int = 3, threshold: _Threshold = None, unsure_label: str = "unsure"
    ) -> Prediction: ...
    def predict_batch(
        self,
        texts: Iterable[str],
        *,
        top_k: int = 3,
        threshold: _Threshold = None,
        unsure_label: str = "unsure",
    ) -> List[Prediction]: ...
    def predict_arrow(
        self,
        texts: Union[pyarrow.Array, pyarrow.ChunkedArray, Sequence[Optional[str]], Any],
        *,
        threshold: _Threshold = None,
        unsure_label: str = "unsure",
        nulls: Literal["null", "raise"] = "null",
    ) -> pyarrow.RecordBatch: ...
    def explain(self, text: str, n: int = 5) -> Explanation: ...
    def evaluate(
        self, texts: Sequence[str], labels: Union[Sequence[str], Sequence[Sequence[str]]]
    ) -> Union[Evaluation, MultiEvaluation]: ...
    def save(self, path: _Path) -> None: ...

def train(
    texts: Sequence[str],
    labels: Union[Sequence[str], Sequence[Sequence[str]]],
    *,
    arch: Literal["bow", "hybrid", "encoder", "transformer"] = "bow",
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    valid_fraction: Optional[float] = None,
    calibration_folds: Optional[int] = None,
    threads: Optional[int] = None,
    compact: Optional[bool] = None,
    keep_ngrams: Optional[float] = None,
    vocab_size: Optional[int] = None,
    patience: Optional[int] = None,
    multi_label: bool = False,
    max_tokens: Optional[int] = None,
    cascade_keep: Optional[float] = None,
    sources: Optional[Sequence[str]] = None,
    cv_by_source: bool = False,
    cv_copies_together: bool = False,
) -> Classifier: ...
def cached(path: Optional[_Path] = None, *, mode: _Mode = "cascade", threads: Optional[int] = None) -> Classifier: ...
