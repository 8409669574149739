# The native half of the package (Rust, PyO3). Use `khabar` itself: these are its internals.
from typing import Any, Dict, List, Optional, Tuple

__version__: str

class _Classifier:
    @staticmethod
    def load(path: str, mode: str = "cascade", threads: Optional[int] = None) -> _Classifier: ...
    @staticmethod
    def default(mode: str = "cascade", threads: Optional[int] = None) -> _Classifier: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def is_multi_label(self) -> bool: ...
    @property
    def threads(self) -> int: ...
    @property
    def unsure_below(self) -> Optional[float]: ...
    def config(self) -> Dict[str, Any]: ...
    def save(self, path: str) -> None: ...
    def predict_batch(
        self, texts: List[str], top_k: int, threshold: Optional[float], unsure_label: str
    ) -> List[Dict[str, Any]]: ...
    def explain(self, text: str, n: int) -> Dict[str, Any]: ...
    def evaluate(self, texts: List[str], labels: Any) -> Dict[str, Any]: ...
    def predict_arrow(
        self, array: Any, threshold: Optional[float], unsure_label: str, nulls: str
    ) -> Tuple[int, int, Optional[bytes], bytes, bytes, bool, bytes]: ...

def train(
    texts: List[str],
    labels: Any,
    *,
    arch: str = "bow",
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
    sources: Optional[List[str]] = None,
    cv_by_source: bool = False,
    cv_copies_together: bool = False,
) -> _Classifier: ...
