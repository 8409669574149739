//! The model bundle: the only on-disk format. A directory with
//!
//! - `config.json`: format version, architecture + hyperparameters, labels, normalization,
//!   training metadata;
//! - `tokenizer.json`: the trained tokenizer (loadable by any Hugging Face tokenizers binding);
//! - `model.safetensors`: the weights.
//!
//! A model that reads the pretrained encoder (`encoder`, `hybrid`) does not hold it: its
//! `config.json` names it (name and checksum, [`EncoderId`]), and loading finds it (the
//! built-in one, or one the caller gives) and refuses one of another identity.
//!
//! Saving writes a temporary sibling directory and renames it into place, so an interrupted save
//! never leaves a half-written bundle where a good one was.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ArchConfig, Calibrator, Encoder, EncoderId, Model, MultiLabel};
use crate::text::Tokenizer;

/// The bundle format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The bundle's configuration file.
pub const CONFIG_FILE: &str = "config.json";
/// The bundle's tokenizer file.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The bundle's weights file.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// How text is normalized before tokenization (recorded for other tools that read the bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalization {
    /// Unicode normalization form applied first ("NFKC").
    pub unicode: String,
    /// Whether text is lowercased after normalization.
    pub lowercase: bool,
}

impl Default for Normalization {
    fn default() -> Self {
        Normalization {
            unicode: "NFKC".into(),
            lowercase: true,
        }
    }
}

/// What training recorded about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingInfo {
    /// The training files.
    pub data: Vec<String>,
    /// The validation file, or a description of the automatic cut.
    pub valid: String,
    /// Examples the kept model was trained on: the validation examples excluded, unless
    /// `refit`.
    pub train_examples: usize,
    /// Examples used for model selection.
    pub valid_examples: usize,
    /// The random seed.
    pub seed: u64,
    /// Worker threads used.
    pub threads: usize,
    /// Epochs run.
    pub epochs: usize,
    /// The epoch whose weights were kept (best validation macro-F1).
    pub best_epoch: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Examples per optimizer step.
    pub batch_size: usize,
    /// Size of the learned subword vocabulary.
    pub vocab_size: usize,
    /// When training started, UTC, RFC 3339.
    pub started_at: String,
    /// Wall time of training, seconds.
    pub seconds: f64,
    /// Validation accuracy of the kept epoch.
    pub valid_accuracy: f64,
    /// Validation macro-F1 of the kept epoch.
    pub valid_macro_f1: f64,
    /// After the epoch was chosen on the automatic validation cut, the model was trained again
    /// on all the training data (cut included) for that many epochs; the validation figures are
    /// those of the first run.
    #[serde(default)]
    pub refit: bool,
    /// Examples of each label the kept model was trained on (empty in bundles written before
    /// the field existed).
    #[serde(default)]
    pub label_counts: BTreeMap<String, usize>,
    /// The command that asked for the training ([`TrainConfig::command`](crate::TrainConfig)),
    /// when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// The contents of `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleConfig {
    /// Bundle format version; loading refuses versions newer than [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The khabar version that wrote the bundle.
    pub khabar_version: String,
    /// The architecture and its hyperparameters.
    pub architecture: ArchConfig,
    /// Labels in the order of the model's outputs.
    pub labels: Vec<String>,
    /// Text normalization.
    pub normalization: Normalization,
    /// Training metadata (absent in hand-made bundles).
    #[serde(default)]
    pub training: Option<TrainingInfo>,
    /// The label map the training data's labels went through (`khabar train --label-map`):
    /// evaluation applies it to gold labels, so that they are named as the model names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_map: Option<crate::corpus::LabelMap>,
    /// The pretrained encoder the model reads (`encoder` and `hybrid` models): loading
    /// refuses an encoder of another identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderId>,
    /// The probability under which the model's answers were more often wrong than right, on
    /// the cross-validated scores of its training data (`encoder` and `hybrid` models):
    /// `predict --unsure` answers `unsure` below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsure_below: Option<f32>,
    /// The map that calibrates the model's probabilities, fitted on held-out scores at
    /// training (`bow` models; see [`Calibrator`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibrator: Option<Calibrator>,
    /// A multi-label model's thresholds (`khabar train --multi-label`): its scores are each
    /// label's own, and it answers every label whose score reaches that label's threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_label: Option<MultiLabel>,
    /// SHA-256 (hex) of `tokenizer.json` and `model.safetensors`, checked on load.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Everything a classifier is made of, as read from or written to a bundle.
pub(crate) struct Parts {
    pub config: BundleConfig,
    pub tokenizer: Tokenizer,
    pub model: Model,
}

/// Checks that a bundle may be saved at `dir`, as saving does first: `dir` does not exist, or is
/// an empty directory, or holds a bundle (its `config.json`), which a save replaces. Anything
/// else there (a file, a directory of other things) is refused with [`Error::Usage`], so that a
/// program can check its destination before it spends time on training, as `khabar train` does.
pub fn check_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.join(CONFIG_FILE).is_file() {
        let empty = dir.is_dir()
            && dir
                .read_dir()
                .map_err(|e| Error::io(dir, e))?
                .next()
                .is_none();
        if !empty {
            return Err(Error::Usage(format!(
                "{}: exists and is not a khabar model bundle; refusing to overwrite it",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Writes a bundle to `dir` atomically. An existing bundle at `dir` is replaced only once the new
/// one is complete; anything else there is left alone (error; see [`check_out_dir`]).
pub(crate) fn save(
    dir: &Path,
    config: &BundleConfig,
    tokenizer: &Tokenizer,
    model: &Model,
) -> Result<()> {
    check_out_dir(dir)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;

    let write = |file: &str, bytes: &[u8]| -> Result<()> {
        let p = tmp.path().join(file);
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
    };
    let tokenizer_json = tokenizer.to_json().as_bytes();
    write(TOKENIZER_FILE, tokenizer_json)?;
    let tensors: HashMap<String, candle_core::Tensor> = model.tensors()?.into_iter().collect();
    let weights = tmp.path().join(WEIGHTS_FILE);
    candle_core::safetensors::save(&tensors, &weights)?;
    let weight_bytes = std::fs::read(&weights).map_err(|e| Error::io(&weights, e))?;
    let mut config = config.clone();
    config.checksums = BTreeMap::from([
        (TOKENIZER_FILE.to_string(), sha256_hex(tokenizer_json)),
        (WEIGHTS_FILE.to_string(), sha256_hex(&weight_bytes)),
    ]);
    let config_json = serde_json::to_string_pretty(&config)
        .map_err(|e| Error::Internal(format!("cannot serialize config.json: {e}")))?;
    write(CONFIG_FILE, config_json.as_bytes())?;
    for f in [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE] {
        let p = tmp.path().join(f);
        std::fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&p, e))?;
    }

    // tempfile creates private files and directories; a model is meant to be shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(p, e))
        };
        set(tmp.path(), 0o755)?;
        for f in [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE] {
            set(&tmp.path().join(f), 0o644)?;
        }
    }

    // Files kept beside an existing bundle (a model card, a label map) move to the new one.
    if dir.is_dir() {
        copy_extra_files(dir, tmp.path())?;
    }

    // Move the old bundle aside, the new one in, then drop the old one. If anything fails
    // in between, the old bundle is put back.
    let tmp_path = tmp.keep();
    let backup = if dir.exists() {
        let b = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(dir, &b).map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp_path);
            Error::io(dir, e)
        })?;
        Some(b)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&tmp_path, dir) {
        if let Some(b) = &backup {
            let _ = std::fs::rename(b, dir);
        }
        let _ = std::fs::remove_dir_all(&tmp_path);
        return Err(Error::io(dir, e));
    }
    if let Some(b) = backup {
        let _ = std::fs::remove_dir_all(b);
    }
    Ok(())
}

/// Copies everything in `from` except the bundle's own three files into `to`.
fn copy_extra_files(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let name = entry.file_name();
        if [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE]
            .iter()
            .any(|f| name == *f)
        {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if src.is_dir() {
            std::fs::create_dir(&dst).map_err(|e| Error::io(&dst, e))?;
            copy_extra_files(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| Error::io(&src, e))?;
        }
    }
    Ok(())
}

/// Reads and checks a bundle directory; `encoder` is the encoder to give a model that reads
/// one (`None`: the built-in encoder).
pub(crate) fn load(dir: &Path, encoder: Option<Arc<Encoder>>) -> Result<Parts> {
    if !dir.is_dir() {
        return Err(Error::bundle(
            dir,
            "not a directory (a model bundle is a directory holding config.json, \
             tokenizer.json and model.safetensors)",
        ));
    }
    let read = |file: &str| -> Result<Vec<u8>> {
        let p = dir.join(file);
        std::fs::read(&p).map_err(|e| Error::bundle(&p, format!("cannot read: {e}")))
    };
    let config = read(CONFIG_FILE)?;
    let tokenizer = read(TOKENIZER_FILE)?;
    let weights = read(WEIGHTS_FILE)?;
    from_bytes(dir, &config, &tokenizer, weights.into(), encoder)
}

/// The encoder a bundle's model needs: `given` (or the built-in one), if its identity is the
/// one the bundle records.
fn resolve_encoder(
    config_path: &Path,
    wanted: Option<&EncoderId>,
    given: Option<Arc<Encoder>>,
) -> Result<Arc<Encoder>> {
    let Some(wanted) = wanted else {
        return Err(Error::bundle(
            config_path,
            "the model reads a pretrained encoder but the bundle does not say which (no field 'encoder')",
        ));
    };
    let (encoder, which) = match given {
        Some(e) => (e, "the encoder given"),
        None => (Encoder::builtin()?, "the built-in encoder"),
    };
    let have = encoder.id();
    if have != *wanted {
        return Err(Error::bundle(
            config_path,
            format!(
                "the model was trained with the encoder {wanted}, but {which} is {have}: \
                 load it with the encoder it was trained with (khabar's --encoder DIR, \
                 Classifier::load_with_encoder)"
            ),
        ));
    }
    Ok(encoder)
}

/// Builds a classifier's parts from the three files' bytes; `origin` names them in errors.
pub(crate) fn from_bytes(
    origin: &Path,
    config: &[u8],
    tokenizer: &[u8],
    weights: std::borrow::Cow<'_, [u8]>,
    encoder: Option<Arc<Encoder>>,
) -> Result<Parts> {
    let config_path = origin.join(CONFIG_FILE);
    let version: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| Error::bundle(&config_path, format!("not valid JSON: {e}")))?;
    match version.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v > FORMAT_VERSION as u64 => {
            return Err(Error::bundle(
                &config_path,
                format!(
                    "format version {v} is newer than this khabar reads ({FORMAT_VERSION}); \
                     upgrade khabar"
                ),
            ))
        }
        Some(_) => {}
        None => {
            return Err(Error::bundle(
                &config_path,
                "no format_version: not a khabar bundle",
            ))
        }
    }
    let config: BundleConfig = serde_json::from_value(version).map_err(|e| {
        let e = e.to_string();
        // Fields are added to the same format version (with defaults for older bundles):
        // one this build does not know most likely comes from a newer khabar.
        let hint = if e.contains("unknown field") {
            " (a setting this khabar does not know: the bundle may come from a newer khabar; upgrade khabar)"
        } else {
            ""
        };
        Error::bundle(&config_path, format!("invalid: {e}{hint}"))
    })?;
    if config.labels.len() < 2 {
        return Err(Error::bundle(&config_path, "fewer than two labels"));
    }
    if let Some(m) = &config.multi_label {
        m.check(config.labels.len())
            .map_err(|why| Error::bundle(&config_path, format!("field 'multi_label': {why}")))?;
    }
    if let Some(c) = &config.calibrator {
        c.check()
            .map_err(|why| Error::bundle(&config_path, format!("field 'calibrator': {why}")))?;
    }
    // The hyperparameters are checked here, once: a fault is the config file's.
    let architecture = config.architecture.clone().check().map_err(|e| match e {
        Error::Config { field, reason } => Error::bundle(
            &config_path,
            format!("field 'architecture.{field}': {reason}"),
        ),
        e => Error::bundle(&config_path, e.to_string()),
    })?;
    for (file, bytes) in [(TOKENIZER_FILE, tokenizer), (WEIGHTS_FILE, &weights[..])] {
        let path = origin.join(file);
        match config.checksums.get(file) {
            None => {
                return Err(Error::bundle(
                    &config_path,
                    format!("no checksum recorded for {file}"),
                ))
            }
            Some(want) if *want != sha256_hex(bytes) => return Err(Error::bundle(
                &path,
                "checksum mismatch: the file was altered or truncated since the bundle was saved",
            )),
            Some(_) => {}
        }
    }
    let encoder = if architecture.uses_encoder() {
        Some(resolve_encoder(
            &config_path,
            config.encoder.as_ref(),
            encoder,
        )?)
    } else {
        None
    };
    let tok_path = origin.join(TOKENIZER_FILE);
    let tokenizer = std::str::from_utf8(tokenizer)
        .map_err(|_| Error::bundle(&tok_path, "not UTF-8 text"))
        .and_then(|s| {
            Tokenizer::from_json(s).map_err(|e| Error::bundle(&tok_path, e.to_string()))
        })?;
    let w_path = origin.join(WEIGHTS_FILE);
    let tensors = candle_core::safetensors::load_buffer(&weights, &candle_core::Device::Cpu)
        .map_err(|e| Error::bundle(&w_path, format!("cannot read the weights: {e}")))?;
    // The file's bytes are copied into the tensors: free them before the model is built (peak
    // memory of a load).
    drop(weights);
    let model = Model::from_tensors(
        architecture,
        &tokenizer,
        config.labels.len(),
        tensors,
        encoder,
    )
    .map_err(|e| Error::bundle(&w_path, e))?;
    Ok(Parts {
        config,
        tokenizer,
        model,
    })
}
