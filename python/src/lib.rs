//! `khabar._khabar`: the native half of the `khabar` Python package.
//!
//! The public API is the Python module `khabar` (python/khabar/__init__.py), a thin layer over
//! this one. Everything that takes time here (loading, prediction, evaluation, training,
//! saving) runs with the GIL released, and every `khabar::Error` comes back as a Python
//! exception of `khabar._errors` carrying the library's message.

use khabar::model::Mode;
use khabar::{
    ArchConfig, BowConfig, Copies, Corpus, EncoderArchConfig, Example, HybridConfig, LabelScore,
    Prediction, TrainConfig, Trainer, TransformerConfig,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

mod arrow;

/// A `khabar::Error` as the Python exception of its kind (`khabar._errors`), with the library's
/// message: `KhabarOSError` for files and model bundles, `KhabarValueError` for settings,
/// usage and input, `KhabarError` for the rest.
fn to_py_err(e: khabar::Error) -> PyErr {
    use khabar::Error as E;
    let kind = match &e {
        E::Io { .. } | E::Bundle { .. } => "KhabarOSError",
        E::Config { .. } | E::Usage(_) | E::Input { .. } => "KhabarValueError",
        _ => "KhabarError",
    };
    let message = e.to_string();
    Python::attach(|py| {
        let class = match py.import("khabar._errors").and_then(|m| m.getattr(kind)) {
            Ok(c) => c,
            Err(err) => return err,
        };
        match class.call1((message,)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(err) => err,
        }
    })
}

/// `Result<T, khabar::Error>` to `PyResult<T>`.
trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for khabar::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}

/// A JSON value as the Python object `json.loads` would give.
fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// A hybrid model's way of answering, from its Python name.
fn parse_mode(mode: &str) -> PyResult<Mode> {
    match mode {
        "fast" => Ok(Mode::Fast),
        "cascade" | "default" => Ok(Mode::Cascade),
        "accurate" => Ok(Mode::Accurate),
        other => Err(PyValueError::new_err(format!(
            "mode must be 'fast', 'cascade' or 'accurate' (got {other:?})"
        ))),
    }
}

/// A threshold (a probability, or none) checked as `khabar predict --threshold` checks it.
fn check_threshold(clf: &khabar::Classifier, threshold: Option<f32>) -> PyResult<()> {
    let Some(p) = threshold else { return Ok(()) };
    if !(0.0..=1.0).contains(&p) {
        return Err(PyValueError::new_err(format!(
            "threshold must be a probability between 0 and 1 (got {p})"
        )));
    }
    if clf.is_multi_label() {
        return Err(PyValueError::new_err(
            "threshold applies to single-label models; a multi-label model answers every label \
             over its own threshold, chosen at training",
        ));
    }
    Ok(())
}

fn check_threads(threads: Option<usize>) -> PyResult<()> {
    if threads == Some(0) {
        return Err(PyValueError::new_err("threads must be at least 1"));
    }
    Ok(())
}

/// The native classifier behind `khabar.Classifier`.
#[pyclass(frozen, module = "khabar._khabar", name = "_Classifier")]
struct PyClassifier {
    inner: khabar::Classifier,
}

impl PyClassifier {
    fn wrap(clf: khabar::Classifier, mode: &str, threads: Option<usize>) -> PyResult<Self> {
        check_threads(threads)?;
        Ok(PyClassifier {
            inner: clf.with_mode(parse_mode(mode)?).with_threads(threads),
        })
    }

    /// One prediction as the dict of `khabar predict --output jsonl`: `label` (or the unsure
    /// label when the best score is under `threshold`), `score`, `top` (the `top_k` best), and
    /// for a multi-label model `labels` and `below_threshold`.
    fn prediction_dict<'py>(
        &self,
        py: Python<'py>,
        p: &Prediction,
        top_k: usize,
        threshold: Option<f32>,
        unsure_label: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let pair = |ls: &LabelScore| -> PyResult<Bound<'py, PyDict>> {
            let d = PyDict::new(py);
            d.set_item("label", &ls.label)?;
            d.set_item("score", ls.score)?;
            Ok(d)
        };
        let d = PyDict::new(py);
        let unsure = threshold.is_some_and(|t| p.score < t);
        d.set_item("label", if unsure { unsure_label } else { &p.label })?;
        d.set_item("score", p.score)?;
        let top = PyList::empty(py);
        for ls in p.top.iter().take(top_k) {
            top.append(pair(ls)?)?;
        }
        d.set_item("top", top)?;
        if let Some(labels) = &p.labels {
            let chosen = PyList::empty(py);
            for ls in labels {
                chosen.append(pair(ls)?)?;
            }
            d.set_item("below_threshold", labels.is_empty())?;
            d.set_item("labels", chosen)?;
        }
        Ok(d)
    }
}

#[pymethods]
impl PyClassifier {
    /// Loads a model bundle directory.
    #[staticmethod]
    #[pyo3(signature = (path, mode = "cascade", threads = None))]
    fn load(
        py: Python<'_>,
        path: std::path::PathBuf,
        mode: &str,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let clf = py.detach(|| khabar::Classifier::load(&path)).py_err()?;
        Self::wrap(clf, mode, threads)
    }

    /// The built-in news model.
    #[staticmethod]
    #[pyo3(signature = (mode = "cascade", threads = None))]
    fn default(py: Python<'_>, mode: &str, threads: Option<usize>) -> PyResult<Self> {
        let clf = py.detach(khabar::Classifier::default_model).py_err()?;
        Self::wrap(clf, mode, threads)
    }

    /// The labels, in the order of the model's outputs.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.labels().to_vec()
    }

    /// Whether the model is multi-label.
    #[getter]
    fn is_multi_label(&self) -> bool {
        self.inner.is_multi_label()
    }

    /// Threads of the batch calls.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// The threshold the model recorded at training (`khabar predict --unsure`), or None.
    #[getter]
    fn unsure_below(&self) -> Option<f32> {
        self.inner.config().unsure_below
    }

    /// The bundle's config.json, as a dict.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(self.inner.config())
            .map_err(|e| PyValueError::new_err(format!("config: {e}")))?;
        json_to_py(py, &v)
    }

    /// Saves the model as a bundle directory (atomically).
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).py_err()
    }

    /// Classifies texts (GIL released while they are classified); a list of dicts.
    #[pyo3(signature = (texts, top_k, threshold, unsure_label))]
    fn predict_batch<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        top_k: usize,
        threshold: Option<f32>,
        unsure_label: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        if top_k == 0 {
            return Err(PyValueError::new_err("top_k must be at least 1"));
        }
        check_threshold(&self.inner, threshold)?;
        let predictions = py.detach(|| self.inner.predict_batch(&texts)).py_err()?;
        drop(texts);
        let out = PyList::empty(py);
        for p in &predictions {
            out.append(self.prediction_dict(py, p, top_k, threshold, unsure_label)?)?;
        }
        Ok(out)
    }

    /// Why the text got its label: a dict of `khabar::Explanation`.
    fn explain<'py>(&self, py: Python<'py>, text: String, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let e = py.detach(|| self.inner.explain(&text, n)).py_err()?;
        let v = serde_json::to_value(&e)
            .map_err(|e| PyValueError::new_err(format!("explanation: {e}")))?;
        json_to_py(py, &v)
    }

    /// Measures the model on texts and their gold labels: the dict of `khabar eval --json`
    /// (for a multi-label model, `labels` holds a list of labels per text).
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        labels: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let examples = examples(texts, labels, self.inner.is_multi_label())?;
        let multi = self.inner.is_multi_label();
        let v = py
            .detach(|| {
                let corpus = Corpus::from_examples(examples);
                if multi {
                    self.inner.evaluate_multi(&corpus).map(|e| e.to_json())
                } else {
                    self.inner.evaluate(&corpus).map(|e| e.to_json())
                }
            })
            .py_err()?;
        json_to_py(py, &v)
    }

    /// Classifies an Arrow string array (an object with `__arrow_c_array__`), read in place
    /// with the GIL released. Returns the parts of the output columns for the Python side to
    /// assemble: `(length, null_count, validity, label_offsets, label_data, large, scores)`.
    #[pyo3(signature = (array, threshold, unsure_label, nulls))]
    fn predict_arrow<'py>(
        &self,
        py: Python<'py>,
        array: &Bound<'py, PyAny>,
        threshold: Option<f32>,
        unsure_label: &str,
        nulls: &str,
    ) -> PyResult<Bound<'py, PyTuple>> {
        check_threshold(&self.inner, threshold)?;
        let raise_on_null = match nulls {
            "null" => false,
            "raise" => true,
            other => {
                return Err(PyValueError::new_err(format!(
                    "nulls must be 'null' or 'raise' (got {other:?})"
                )))
            }
        };
        let capsules = array.call_method0("__arrow_c_array__").map_err(|e| {
            PyTypeError::new_err(format!(
                "expected an Arrow array (an object with __arrow_c_array__, such as a \
                 pyarrow.Array of strings): {e}"
            ))
        })?;
        let (schema, data) = capsules.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>()?;
        let input = arrow::StringInput::from_capsules(&schema, &data)?;
        if raise_on_null && input.null_count() > 0 {
            let first = input.first_null().unwrap_or(0);
            return Err(PyValueError::new_err(format!(
                "the array holds {} null text(s), the first at index {first}; pass nulls='null' \
                 to get null labels for them",
                input.null_count()
            )));
        }
        let out = py.detach(|| arrow::classify(&self.inner, &input, threshold, unsure_label))?;
        // The capsules (and the producer's buffers they keep alive) are released only now.
        drop(input);
        let validity = out.validity.as_deref().map(|v| PyBytes::new(py, v));
        PyTuple::new(
            py,
            [
                out.len.into_pyobject(py)?.into_any(),
                out.null_count.into_pyobject(py)?.into_any(),
                match validity {
                    Some(v) => v.into_any(),
                    None => py.None().into_bound(py),
                },
                PyBytes::new(py, &out.offsets).into_any(),
                PyBytes::new(py, &out.data).into_any(),
                pyo3::types::PyBool::new(py, out.large)
                    .to_owned()
                    .into_any(),
                PyBytes::new(py, &out.scores).into_any(),
            ],
        )
    }
}

/// The architecture named `arch`, with the encoder's reading length (`encoder`, `hybrid`) and
/// the cascade's setting (`hybrid`) where given; given to an architecture that has no use for
/// them, they are refused.
fn arch_config(
    arch: &str,
    max_tokens: Option<usize>,
    cascade_keep: Option<f64>,
) -> PyResult<ArchConfig> {
    let config = match arch {
        "bow" => ArchConfig::Bow(BowConfig::default()),
        "hybrid" => {
            let d = HybridConfig::default();
            ArchConfig::Hybrid(HybridConfig {
                max_tokens: max_tokens.unwrap_or(d.max_tokens),
                cascade_keep: cascade_keep.unwrap_or(d.cascade_keep),
                ..d
            })
        }
        "encoder" => {
            let d = EncoderArchConfig::default();
            ArchConfig::Encoder(EncoderArchConfig {
                max_tokens: max_tokens.unwrap_or(d.max_tokens),
            })
        }
        "transformer" => ArchConfig::Transformer(TransformerConfig::default()),
        other => {
            return Err(PyValueError::new_err(format!(
                "arch must be 'bow', 'hybrid', 'encoder' or 'transformer' (got {other:?})"
            )))
        }
    };
    let refuse = |option: &str, applies: &str| {
        Err(PyValueError::new_err(format!(
            "{option} applies to {applies}; arch={arch:?} does not use it"
        )))
    };
    if cascade_keep.is_some() && !matches!(config, ArchConfig::Hybrid(_)) {
        return refuse("cascade_keep", "arch='hybrid'");
    }
    if max_tokens.is_some() && !matches!(config, ArchConfig::Encoder(_) | ArchConfig::Hybrid(_)) {
        return refuse("max_tokens", "arch='encoder' and 'hybrid'");
    }
    Ok(config)
}

/// Trains a classifier on texts and labels (one label per text, or for `multi_label` a list
/// of labels per text). Options left as None take the architecture's defaults.
#[pyfunction]
#[pyo3(signature = (
    texts, labels, *, arch = "bow", epochs = None, seed = None, valid_fraction = None,
    calibration_folds = None, threads = None, compact = None, keep_ngrams = None,
    vocab_size = None, patience = None, multi_label = false, max_tokens = None,
    cascade_keep = None, sources = None, cv_by_source = false, cv_copies_together = false
))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    texts: Vec<String>,
    labels: &Bound<'_, PyAny>,
    arch: &str,
    epochs: Option<usize>,
    seed: Option<u64>,
    valid_fraction: Option<f64>,
    calibration_folds: Option<usize>,
    threads: Option<usize>,
    compact: Option<bool>,
    keep_ngrams: Option<f64>,
    vocab_size: Option<usize>,
    patience: Option<usize>,
    multi_label: bool,
    max_tokens: Option<usize>,
    cascade_keep: Option<f64>,
    sources: Option<Vec<String>>,
    cv_by_source: bool,
    cv_copies_together: bool,
) -> PyResult<PyClassifier> {
    let n = texts.len();
    let examples = examples(texts, labels, multi_label)?;
    let arch = arch_config(arch, max_tokens, cascade_keep)?;
    let is_bow = matches!(arch, ArchConfig::Bow(_));
    if calibration_folds.is_some_and(|f| f > 0) && !is_bow {
        return Err(PyValueError::new_err(format!(
            "calibration_folds applies to arch='bow'; arch={:?} does not use it",
            arch.name()
        )));
    }
    for (asked, option) in [
        (cv_by_source, "cv_by_source"),
        (cv_copies_together, "cv_copies_together"),
    ] {
        if asked && is_bow {
            return Err(PyValueError::new_err(format!(
                "{option} applies to arch='encoder' and 'hybrid'; arch='bow' does not use it"
            )));
        }
    }
    if cv_by_source && sources.is_none() {
        return Err(PyValueError::new_err(
            "cv_by_source needs sources: the source of each text (a list of str, one per text)",
        ));
    }
    let mut corpus = Corpus::from_examples(examples);
    if let Some(sources) = sources {
        if sources.len() != n {
            return Err(PyValueError::new_err(format!(
                "sources must give one source per text (got {} sources for {n} texts)",
                sources.len()
            )));
        }
        // Each distinct source in the order it first comes, as files are read in order.
        let mut position: std::collections::HashMap<String, u32> = Default::default();
        for s in sources {
            let next = position.len() as u32;
            let p = *position.entry(s.clone()).or_insert_with(|| {
                corpus.sources.push(s.into());
                next
            });
            corpus.source_of.push(p);
        }
        if cv_by_source && corpus.sources.len() < 2 {
            return Err(PyValueError::new_err(
                "cv_by_source needs texts from two sources or more (sources names one)",
            ));
        }
    }
    let defaults = TrainConfig::for_arch(arch);
    let mut config = TrainConfig {
        epochs: epochs.unwrap_or(defaults.epochs),
        seed: seed.unwrap_or(defaults.seed),
        valid_fraction: valid_fraction.unwrap_or(defaults.valid_fraction),
        calibration_folds: calibration_folds.unwrap_or(defaults.calibration_folds),
        threads,
        compact: compact.unwrap_or(defaults.compact),
        keep_ngrams: keep_ngrams.unwrap_or(defaults.keep_ngrams),
        patience: patience.unwrap_or(defaults.patience),
        multi_label,
        cv_by_source,
        cv_copies: if cv_copies_together {
            Copies::Together
        } else {
            Copies::Apart
        },
        command: Some("khabar.train (Python)".into()),
        ..defaults
    };
    if let Some(v) = vocab_size {
        config.tokenizer.vocab_size = v;
    }
    config.validate().py_err()?;
    let clf = py.detach(|| Trainer::new(config).train(&corpus)).py_err()?;
    Ok(PyClassifier { inner: clf })
}

/// Texts and their labels as examples: one label (a str) per text, or with `multi_label` a
/// list of labels per text.
fn examples(
    texts: Vec<String>,
    labels: &Bound<'_, PyAny>,
    multi_label: bool,
) -> PyResult<Vec<Example>> {
    if multi_label {
        let labels: Vec<Vec<String>> = labels.extract().map_err(|_| {
            PyTypeError::new_err(
                "for a multi-label model, labels must be a list of lists of str (the labels of \
                 each text)",
            )
        })?;
        check_lengths(texts.len(), labels.len())?;
        let mut examples = Vec::with_capacity(texts.len());
        for (i, (t, ls)) in texts.into_iter().zip(labels).enumerate() {
            if ls.is_empty() {
                return Err(PyValueError::new_err(format!(
                    "labels[{i}] is empty: every text needs at least one label"
                )));
            }
            examples.push(Example::with_labels(t, ls));
        }
        Ok(examples)
    } else {
        let labels: Vec<String> = labels.extract().map_err(|_| {
            PyTypeError::new_err(
                "labels must be a list of str, one per text (a list of lists for a multi-label \
                 model)",
            )
        })?;
        check_lengths(texts.len(), labels.len())?;
        Ok(texts
            .into_iter()
            .zip(labels)
            .map(|(t, l)| Example::new(t, l))
            .collect())
    }
}

fn check_lengths(texts: usize, labels: usize) -> PyResult<()> {
    if texts != labels {
        return Err(PyValueError::new_err(format!(
            "texts and labels must have the same length (got {texts} texts and {labels} labels)"
        )));
    }
    Ok(())
}

/// The native half of the `khabar` package; use `khabar` itself.
#[pymodule]
fn _khabar(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyClassifier>()?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
