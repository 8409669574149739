//! A pretrained multilingual sentence encoder: multilingual-e5-small (BERT, 12 layers, hidden
//! 384, about 100 languages), which turns a text into a unit-length vector of 384 numbers whose
//! cosine with another text's says how close their meanings are, across languages.
//!
//! The model lives in a directory (`models/encoder/` in the repository, made by its
//! `build.sh`): `config.json` (dimensions, the checksums of the other files),
//! `tokenizer.json` (XLM-R SentencePiece) and `encoder.safetensors` (the weights, 4-bit Q4_0
//! for the big matrices). [`Encoder::load`] reads and checks it;
//! [`Encoder::embed`] encodes texts:
//!
//! - each text is prefixed with `"query: "` (as the model expects) and cut to its first
//!   `max_tokens` pieces, `<s>` and `</s>` included;
//! - texts of similar length are batched together (the longest first) and the batches run in
//!   parallel on the encoder's threads ([`Encoder::with_threads`]);
//! - the forward pass is BERT's, in f32 on the CPU, with khabar's candle ops (products on the
//!   calling thread, layer norms, bias adds) and two inference kernels of its own (GELU and the
//!   masked attention softmax, vectorized): the word table stays in Q4_0 in memory and only
//!   the rows a batch uses are expanded; the linear layers are expanded to f32 once, at load
//!   (f32 products are 2-3 times faster here than candle's Q4_0 ones);
//! - the vector is the mean of the last layer over the real tokens, L2-normalized;
//! - on a GPU (a build with the `cuda` feature; [`DEVICE_VARIABLE`] chooses), the same network
//!   runs through candle's own operations instead of the CPU kernels, one batch at a time.
//!
//! ```no_run
//! use khabar::model::encoder::Encoder;
//!
//! # fn main() -> khabar::Result<()> {
//! let encoder = Encoder::load("models/encoder")?;
//! let v = encoder.embed(&["Floods hit the farms", "बाढ़ से खेतों को नुकसान"], 128)?;
//! let cosine: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
//! assert!(cosine > 0.8);
//! # Ok(())
//! # }
//! ```

mod cache;
mod config;
mod device;
mod kernels;
mod net;
mod pieces;
mod q4;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use cache::{EncodingCache, Lookup};
pub use device::DEVICE_VARIABLE;

use crate::bundle::sha256_hex;
use crate::error::{Error, Result};
use crate::threads;
use config::{EncoderConfig, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use device::{device_from, DeviceNet};
use net::Net;
use pieces::{Pieces, MIN_TOKENS};

/// Most texts in one batch.
const BATCH_TEXTS: usize = 16;
/// Most tokens (padding included) in one batch: long texts go fewer at a time, which bounds
/// the attention scores' memory (8 texts of 256 pieces: a peak of 355 MB for the process on 2
/// threads, against 580 MB with 16).
const BATCH_TOKENS: usize = 2048;

/// Which encoder a model needs, as its bundle records it (see [`Encoder::id`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderId {
    /// The model's name (`multilingual-e5-small`).
    pub name: String,
    /// SHA-256 (hex) over the encoder's file checksums, prefix and pooling.
    pub checksum: String,
}

impl std::fmt::Display for EncoderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (checksum {})",
            self.name,
            &self.checksum[..self.checksum.len().min(16)]
        )
    }
}

/// A loaded sentence encoder. `Send + Sync`: load it once and share it between threads.
#[derive(Debug)]
pub struct Encoder {
    config: EncoderConfig,
    pieces: Pieces,
    net: Net,
    /// The network on the device `KHABAR_DEVICE` chose, if not the CPU's kernels.
    device: Option<DeviceNet>,
    threads: Option<usize>,
}

impl Encoder {
    /// Reads the encoder directory `dir`: `config.json`, then `tokenizer.json` and
    /// `encoder.safetensors`, whose SHA-256 must be those `config.json` records. A missing,
    /// damaged or altered file is refused with [`Error::Bundle`] naming that file.
    pub fn load(dir: impl AsRef<Path>) -> Result<Encoder> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::bundle(
                dir,
                "not a directory (an encoder is a directory holding config.json, \
                 tokenizer.json and encoder.safetensors)",
            ));
        }
        let read = |file: &str| -> Result<Vec<u8>> {
            let p = dir.join(file);
            std::fs::read(&p).map_err(|e| Error::bundle(&p, format!("cannot read: {e}")))
        };
        Self::from_bytes(
            dir,
            &read(CONFIG_FILE)?,
            &read(TOKENIZER_FILE)?,
            &read(WEIGHTS_FILE)?,
        )
    }

    /// The encoder built into khabar (`models/encoder/` of the repository, embedded in the
    /// library), loaded once per process and shared: the hybrid and encoder models name it in
    /// their bundles, so they need no directory of their own.
    pub fn builtin() -> Result<Arc<Encoder>> {
        static BUILTIN: OnceLock<Arc<Encoder>> = OnceLock::new();
        if let Some(e) = BUILTIN.get() {
            return Ok(Arc::clone(e));
        }
        const CONFIG: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/encoder/config.json"
        ));
        const TOKENIZER: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/encoder/tokenizer.json"
        ));
        const WEIGHTS: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/encoder/encoder.safetensors"
        ));
        let encoder =
            Self::from_bytes(Path::new("<built-in encoder>"), CONFIG, TOKENIZER, WEIGHTS)?;
        // Two threads may load it at once; both get the one that was stored first.
        Ok(Arc::clone(BUILTIN.get_or_init(|| Arc::new(encoder))))
    }

    /// The encoder from the bytes of its three files; `dir` names them in errors.
    fn from_bytes(dir: &Path, config: &[u8], tokenizer: &[u8], weights: &[u8]) -> Result<Encoder> {
        let config_path = dir.join(CONFIG_FILE);
        let config: EncoderConfig = serde_json::from_slice(config)
            .map_err(|e| Error::bundle(&config_path, format!("invalid: {e}")))?;
        config.check().map_err(|(field, reason)| {
            Error::bundle(&config_path, format!("field '{field}' {reason}"))
        })?;
        // A file's bytes must have the SHA-256 that config.json records.
        let check = |file: &str, bytes: &[u8]| -> Result<()> {
            let want = config.files.get(file).ok_or_else(|| {
                Error::bundle(&config_path, format!("no checksum recorded for {file}"))
            })?;
            if sha256_hex(bytes) != *want {
                return Err(Error::bundle(
                    &dir.join(file),
                    "checksum mismatch: the file is not the one config.json describes \
                     (altered, truncated or from another build); rebuild the directory with \
                     models/encoder/build.sh",
                ));
            }
            Ok(())
        };
        check(TOKENIZER_FILE, tokenizer)?;
        check(WEIGHTS_FILE, weights)?;
        let pieces = Pieces::from_json(tokenizer, config.vocab_size, &config.prefix)
            .map_err(|e| Error::bundle(&dir.join(TOKENIZER_FILE), e))?;
        let w_path = dir.join(WEIGHTS_FILE);
        let tensors = candle_core::safetensors::load_buffer(weights, &candle_core::Device::Cpu)
            .map_err(|e| Error::bundle(&w_path, format!("cannot read the weights: {e}")))?;
        let net = Net::from_tensors(&config, tensors).map_err(|e| Error::bundle(&w_path, e))?;
        let device = match device_from(std::env::var(DEVICE_VARIABLE).ok().as_deref())? {
            None => None,
            Some(d) => Some(DeviceNet::new(&net, &d).map_err(|e| {
                Error::Usage(format!(
                    "{DEVICE_VARIABLE}: cannot put the encoder on {}: {e}",
                    device_name(&d)
                ))
            })?),
        };
        Ok(Encoder {
            config,
            pieces,
            net,
            device,
            threads: None,
        })
    }

    /// What identifies this encoder in a bundle: its name and a checksum of everything that
    /// shapes its vectors (the files' checksums, the prefix, the pooling). Two encoders with
    /// the same identity give the same vectors.
    pub fn id(&self) -> EncoderId {
        let c = &self.config;
        let mut what = format!("{}\n{}\n{}\n", c.name, c.prefix, c.pooling);
        for (file, sum) in &c.files {
            what += &format!("{file} {sum}\n");
        }
        EncoderId {
            name: c.name.clone(),
            checksum: sha256_hex(what.as_bytes()),
        }
    }

    /// The same encoder, running [`Encoder::embed`]'s batches on `threads` threads of its own
    /// (`None`, the default: one per core). Each batch runs on one thread.
    pub fn with_threads(mut self, threads: Option<usize>) -> Encoder {
        self.threads = threads;
        self
    }

    /// Where the forward pass runs: `cpu` (khabar's own kernels, the default) or `cuda:N`
    /// (a GPU, with the `cuda` feature; see [`DEVICE_VARIABLE`]).
    pub fn device(&self) -> String {
        self.device
            .as_ref()
            .map_or_else(|| "cpu".to_string(), |d| device_name(d.device()))
    }

    /// The model's name, as `config.json` gives it (`multilingual-e5-small`).
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The length of the vectors (384).
    pub fn dim(&self) -> usize {
        self.config.hidden
    }

    /// The number of pieces of its vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    /// The largest `max_tokens` (512): the rows of the position table.
    pub fn max_positions(&self) -> usize {
        self.config.max_positions
    }

    /// Bytes of weights held in memory (the tokenizer not included).
    pub fn weights_size(&self) -> usize {
        self.net.size_bytes()
    }

    /// The piece ids the model reads for `text`: `<s>`, the first `max_tokens - 2` pieces of
    /// `"query: "` + `text`, `</s>`. `max_tokens` runs from 3 to [`Encoder::max_positions`]
    /// ([`Error::Config`] otherwise).
    pub fn token_ids(&self, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
        self.check_max_tokens(max_tokens)?;
        self.pieces.ids(text, max_tokens)
    }

    /// The unit-length vector of each text, in input order, reading at most `max_tokens` pieces
    /// of each (see [`Encoder::token_ids`]). The same text gives the same vector whatever the
    /// thread count.
    pub fn embed<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        max_tokens: usize,
    ) -> Result<Vec<Vec<f32>>> {
        self.embed_on(texts, max_tokens, self.threads, &|_| Ok(()), &|_| Ok(()))
    }

    /// The number of pieces the encoder reads of each text (see [`Encoder::token_ids`]): what
    /// encoding them costs.
    pub fn count_tokens<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        max_tokens: usize,
    ) -> Result<Vec<usize>> {
        self.check_max_tokens(max_tokens)?;
        texts
            .par_iter()
            .map(|t| Ok(self.pieces.ids(t.as_ref(), max_tokens)?.len()))
            .collect()
    }

    /// [`Encoder::embed`] on `threads` threads: `started` hears the total number of pieces
    /// once the texts are cut into pieces, `done` the pieces of each batch once it is encoded;
    /// an error from either stops the work (a cancelled training).
    pub(crate) fn embed_on<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        max_tokens: usize,
        threads: Option<usize>,
        started: &(dyn Fn(usize) -> Result<()> + Sync),
        done: &(dyn Fn(usize) -> Result<()> + Sync),
    ) -> Result<Vec<Vec<f32>>> {
        self.check_max_tokens(max_tokens)?;
        threads::install(threads, || {
            let ids: Vec<Vec<u32>> = texts
                .par_iter()
                .map(|t| self.pieces.ids(t.as_ref(), max_tokens))
                .collect::<Result<_>>()?;
            started(ids.iter().map(Vec::len).sum())?;
            let batches = batches(&ids);
            let one = |batch: &Vec<usize>| -> Result<Vec<Vec<f32>>> {
                let vs = self.embed_batch(&ids, batch)?;
                done(batch.iter().map(|&i| ids[i].len()).sum())?;
                Ok(vs)
            };
            // Batches in parallel on the CPU; one after another on a device, which runs each
            // batch's operations in parallel itself.
            let vectors: Vec<Vec<Vec<f32>>> = match self.device {
                None => batches.par_iter().map(one).collect::<Result<_>>()?,
                Some(_) => batches.iter().map(one).collect::<Result<_>>()?,
            };
            let mut out = vec![Vec::new(); texts.len()];
            for (batch, vs) in batches.iter().zip(vectors) {
                for (&i, v) in batch.iter().zip(vs) {
                    out[i] = v;
                }
            }
            Ok(out)
        })?
    }

    /// The vectors of the texts `batch` (indices into `ids`, the longest first).
    fn embed_batch(&self, ids: &[Vec<u32>], batch: &[usize]) -> Result<Vec<Vec<f32>>> {
        let lens: Vec<usize> = batch.iter().map(|&i| ids[i].len()).collect();
        let width = lens.iter().copied().max().unwrap_or(0);
        let mut flat = Vec::with_capacity(batch.len() * width);
        for &i in batch {
            flat.extend_from_slice(&ids[i]);
            // Padding: any valid id; it is masked out and not pooled.
            flat.resize(flat.len() + width - ids[i].len(), ids[i][0]);
        }
        Ok(match &self.device {
            None => self.net.forward(&flat, &lens, width)?,
            Some(d) => d.forward(&self.net, &flat, &lens, width)?,
        })
    }

    fn check_max_tokens(&self, max_tokens: usize) -> Result<()> {
        let max = self.config.max_positions;
        if !(MIN_TOKENS..=max).contains(&max_tokens) {
            return Err(Error::config(
                "max_tokens",
                format!("must be between {MIN_TOKENS} and {max}"),
            ));
        }
        Ok(())
    }
}

/// `cpu` or `cuda:N`.
fn device_name(d: &candle_core::Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Batches of texts of similar length: the indices sorted by length (longest first, then by
/// index), cut into runs of at most [`BATCH_TEXTS`] texts and [`BATCH_TOKENS`] padded tokens.
fn batches(ids: &[Vec<u32>]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(ids[i].len()), i));
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match out.last_mut() {
            // The first text of a batch is its longest: it sets the width.
            Some(b) if b.len() < BATCH_TEXTS && (b.len() + 1) * ids[b[0]].len() <= BATCH_TOKENS => {
                b.push(i)
            }
            _ => out.push(vec![i]),
        }
    }
    out
}
