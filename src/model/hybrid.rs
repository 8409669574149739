//! The models that read the pretrained encoder's sentence vector (see [`super::encoder`]):
//!
//! - `encoder` ([`EncoderModel`]): the vector and a linear layer ([`DenseHead`]) alone;
//! - `hybrid` ([`Hybrid`]): a `bow` model and an encoder layer, their logits added with two
//!   weights, `s_bow · bow + s_enc · encoder`. The weights are fitted on cross-validated
//!   scores of the training data (each document scored by models that did not train on it),
//!   minimizing the log-loss: the sum leans on whichever part predicts better on that corpus,
//!   and its probabilities come out calibrated. A weight of 0 for the encoder is bow alone.
//!
//! Both need the encoder their bundle names (its [`EncoderId`](super::encoder::EncoderId)).

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::bow::{self, Bow, BowConfig};
use super::dense::DenseHead;
use super::encoder::Encoder;
use super::{softmax_in_place, Checked};
use crate::error::{Error, Result};
use crate::text::Tokenizer;

/// The default number of pieces the encoder reads of each text: headlines and paragraphs
/// whole, the start of a long article (bench/NOTES.md, tenth round).
pub const DEFAULT_MAX_TOKENS: usize = 256;
/// The most the encoder reads (its position table's rows).
const MAX_MAX_TOKENS: usize = 512;
/// The fewest: `<s>`, one piece, `</s>`.
const MIN_MAX_TOKENS: usize = 3;

/// Name of the encoder layer's tensors in a bundle.
const HEAD: &str = "encoder_head";
/// Name of the hybrid's two weights in a bundle.
const SCALES: &str = "hybrid.scales";
/// Name of the cascade's settings in a bundle ([`Cascade`]: scale, then threshold).
const CASCADE: &str = "hybrid.cascade";
/// The cascade's threshold that sends every text to the encoder.
const NEVER_ALONE: f32 = 2.0;
/// The accuracy, on the cross-validated scores of the training data, that the cascade may
/// give up against both parts always: a tenth of a point.
const CASCADE_TOLERANCE: f64 = 0.001;
/// The default share of the documents on which the two ways differ (one right, the other
/// wrong, on the cross-validated scores) that the cascade must send to the encoder
/// ([`HybridConfig::cascade_keep`]). The tolerance alone lets the bow part answer almost
/// everything where the encoder adds little on cross-validation, yet the encoder adds more on
/// text unlike the training data (bench/NOTES.md, sixteenth round: 1.7 points on
/// l3cube_mr_lpc's test split against 0.4 cross-validated).
pub const DEFAULT_CASCADE_KEEP: f64 = 0.9;

/// How a hybrid model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The bow part alone, its scores calibrated to stand alone: the encoder never runs.
    Fast,
    /// The bow part alone when it is sure enough (its calibrated top probability at or above
    /// the model's [`Cascade::confident`]), both parts otherwise. A model trained before the
    /// cascade existed has no threshold and runs both parts on every text.
    #[default]
    Cascade,
    /// Both parts on every text.
    Accurate,
}

/// The first stage of a hybrid's cascade: its bow part answering alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cascade {
    /// The bow part's logits times this are its calibrated logits alone (fitted, as the
    /// hybrid's weights are, on cross-validated scores of the training data).
    pub scale: f32,
    /// From this top probability of the bow part alone up, the default mode trusts it and does
    /// not run the encoder: the lowest threshold that costs at most a tenth of a point of
    /// cross-validated accuracy against running both parts on every text and sends the
    /// encoder a share ([`HybridConfig::cascade_keep`], 90% by default) of the documents on
    /// which the two ways differ (above 1: never).
    pub confident: f32,
    /// Texts of at most this many words (whitespace-separated) are short: they answer alone
    /// from [`Cascade::short_confident`] instead (0: no text is, as in a model saved before
    /// short texts had a threshold of their own).
    pub short_words: u32,
    /// The threshold of short texts: the same rule as [`Cascade::confident`]'s held on the
    /// short training texts alone, and never lower than it. The cascade's tolerance then holds
    /// on headlines and sentences as well as on the whole, where longer texts would otherwise
    /// make up for what short ones lose; and a short text is cheap for the encoder (30 words
    /// are about a third of the 128 pieces the built-in model reads).
    pub short_confident: f32,
}

impl Cascade {
    /// The threshold of `text`: [`Cascade::short_confident`] for a short text,
    /// [`Cascade::confident`] otherwise.
    pub fn threshold(&self, text: &str) -> f32 {
        if is_short(text, self.short_words) {
            self.short_confident
        } else {
            self.confident
        }
    }
}

/// Texts of at most this many words get the cascade's short threshold
/// ([`Cascade::short_words`]).
pub const SHORT_WORDS: u32 = 30;

/// Whether `text` has at most `words` words (whitespace-separated; never with `words` 0).
pub(crate) fn is_short(text: &str, words: u32) -> bool {
    words > 0 && text.split_whitespace().nth(words as usize).is_none()
}

/// The settings of the `encoder` architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderArchConfig {
    /// The most pieces the encoder reads of a text (`<s>` and `</s>` included).
    pub max_tokens: usize,
}

impl Default for EncoderArchConfig {
    fn default() -> Self {
        EncoderArchConfig {
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

fn check_max_tokens(max_tokens: usize) -> Result<()> {
    if !(MIN_MAX_TOKENS..=MAX_MAX_TOKENS).contains(&max_tokens) {
        return Err(Error::config(
            "max_tokens",
            format!("must be between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS} (got {max_tokens})"),
        ));
    }
    Ok(())
}

impl EncoderArchConfig {
    /// Checks the settings once.
    pub fn check(self) -> Result<Checked<EncoderArchConfig>> {
        check_max_tokens(self.max_tokens)?;
        Ok(Checked(self))
    }
}

/// The settings of the `hybrid` architecture: its bow part's, and the encoder's reading length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridConfig {
    /// The bow part.
    pub bow: BowConfig,
    /// The most pieces the encoder reads of a text.
    pub max_tokens: usize,
    /// The share (0 to 1) of the training documents on which the bow part alone and both parts
    /// differ (one right, the other wrong, cross-validated) that the default mode must send to
    /// the encoder: the higher, the closer the default mode comes to `--accurate`, and the
    /// slower it is. 0 leaves only the other condition on the cascade's threshold (a tenth of
    /// a point of cross-validated accuracy); bundles saved before this setting existed read as
    /// 0, which is how they were trained.
    #[serde(default)]
    pub cascade_keep: f64,
}

impl Default for HybridConfig {
    fn default() -> Self {
        HybridConfig {
            bow: BowConfig::default(),
            max_tokens: DEFAULT_MAX_TOKENS,
            cascade_keep: DEFAULT_CASCADE_KEEP,
        }
    }
}

impl HybridConfig {
    /// Checks the settings once (the bow part's with [`BowConfig::check`]).
    pub fn check(self) -> Result<Checked<HybridConfig>> {
        check_max_tokens(self.max_tokens)?;
        if !(0.0..=1.0).contains(&self.cascade_keep) {
            return Err(Error::config(
                "cascade_keep",
                format!("must be between 0 and 1 (got {})", self.cascade_keep),
            ));
        }
        let bow = self.bow.check()?.into_inner();
        Ok(Checked(HybridConfig { bow, ..self }))
    }
}

/// The `encoder` model: the encoder's vector and a linear layer.
#[derive(Debug, Clone)]
pub struct EncoderModel {
    /// Its settings.
    pub config: EncoderArchConfig,
    pub(crate) head: DenseHead,
    pub(crate) encoder: Arc<Encoder>,
}

impl EncoderModel {
    pub(crate) fn new(
        config: Checked<EncoderArchConfig>,
        head: DenseHead,
        encoder: Arc<Encoder>,
    ) -> Self {
        EncoderModel {
            config: config.into_inner(),
            head,
            encoder,
        }
    }

    /// The encoder it reads.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Number of trained weights (the encoder's not counted: they are not trained).
    pub fn num_parameters(&self) -> usize {
        self.head.num_parameters()
    }

    pub(crate) fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        self.head.tensors(HEAD)
    }

    pub(crate) fn from_tensors(
        config: Checked<EncoderArchConfig>,
        classes: usize,
        tensors: &HashMap<String, Tensor>,
        encoder: Arc<Encoder>,
    ) -> std::result::Result<EncoderModel, String> {
        let head = DenseHead::from_tensors(tensors, HEAD, classes, encoder.dim())?;
        Ok(EncoderModel::new(config, head, encoder))
    }
}

/// The `hybrid` model: bow and the encoder's layer, their logits weighted and added.
#[derive(Debug, Clone)]
pub struct Hybrid {
    /// Its settings (the bow part's as trained, compacted or not).
    pub config: HybridConfig,
    pub(crate) bow: Bow,
    pub(crate) head: DenseHead,
    /// The weights of the bow part's logits and of the encoder layer's.
    pub(crate) scales: [f32; 2],
    /// The bow part alone (absent in models trained before it existed).
    pub(crate) cascade: Option<Cascade>,
    pub(crate) encoder: Arc<Encoder>,
}

impl Hybrid {
    pub(crate) fn new(
        max_tokens: usize,
        cascade_keep: f64,
        bow: Bow,
        head: DenseHead,
        scales: [f32; 2],
        cascade: Option<Cascade>,
        encoder: Arc<Encoder>,
    ) -> Hybrid {
        Hybrid {
            config: HybridConfig {
                bow: bow.config.clone(),
                max_tokens,
                cascade_keep,
            },
            bow,
            head,
            scales,
            cascade,
            encoder,
        }
    }

    /// The encoder it reads.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The bow part.
    pub fn bow(&self) -> &Bow {
        &self.bow
    }

    /// The weights of the bow part's logits and of the encoder layer's in the sum.
    pub fn scales(&self) -> [f32; 2] {
        self.scales
    }

    /// The bow part answering alone: its calibration and the cascade's threshold (`None` for a
    /// model trained before the cascade existed).
    pub fn cascade(&self) -> Option<Cascade> {
        self.cascade
    }

    /// Number of trained weights (the encoder's not counted).
    pub fn num_parameters(&self) -> usize {
        self.bow.num_parameters() + self.head.num_parameters() + 2
    }

    /// The same model with its bow part compacted (see [`Bow::compact`]).
    pub fn compact(&self, options: bow::CompactOptions) -> Hybrid {
        Hybrid::new(
            self.config.max_tokens,
            self.config.cascade_keep,
            self.bow.compact(options),
            self.head.clone(),
            self.scales,
            self.cascade,
            Arc::clone(&self.encoder),
        )
    }

    /// The bow part's logits alone, calibrated (see [`Cascade::scale`]; a model without a
    /// cascade scales them by its weight in the sum).
    pub(crate) fn fast_logits_into(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        scratch: &mut bow::Scratch,
        out: &mut Vec<f32>,
    ) {
        self.bow.logits_of(tokenizer, text, scratch, out);
        let scale = self.cascade.map_or(self.scales[0], |c| c.scale);
        for o in out.iter_mut() {
            *o *= scale;
        }
    }

    /// Whether, in `mode`, `text`, whose bow part alone gives `fast_logits` (from
    /// [`Hybrid::fast_logits_into`]), needs the encoder.
    pub(crate) fn needs_encoder(&self, mode: Mode, text: &str, fast_logits: &[f32]) -> bool {
        match (mode, self.cascade) {
            (Mode::Fast, _) => false,
            (Mode::Accurate, _) | (Mode::Cascade, None) => true,
            (Mode::Cascade, Some(c)) => top_probability(fast_logits) < c.threshold(text),
        }
    }

    pub(crate) fn logits_into(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        vector: &[f32],
        scratch: &mut bow::Scratch,
        encoder_logits: &mut Vec<f32>,
        out: &mut Vec<f32>,
    ) {
        self.bow.logits_of(tokenizer, text, scratch, out);
        self.head.logits_into(vector, encoder_logits);
        for (o, e) in out.iter_mut().zip(encoder_logits.iter()) {
            *o = self.scales[0] * *o + self.scales[1] * e;
        }
    }

    pub(crate) fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut t = self.bow.tensors()?;
        t.extend(self.head.tensors(HEAD)?);
        t.push((
            SCALES.into(),
            Tensor::from_slice(&self.scales, 2, &Device::Cpu)?,
        ));
        if let Some(c) = self.cascade {
            let numbers = [
                c.scale,
                c.confident,
                c.short_words as f32,
                c.short_confident,
            ];
            t.push((
                CASCADE.into(),
                Tensor::from_slice(&numbers, 4, &Device::Cpu)?,
            ));
        }
        Ok(t)
    }

    pub(crate) fn from_tensors(
        config: Checked<HybridConfig>,
        n_subwords: usize,
        classes: usize,
        mut tensors: HashMap<String, Tensor>,
        encoder: Arc<Encoder>,
    ) -> std::result::Result<Hybrid, String> {
        let config = config.into_inner();
        let head = DenseHead::from_tensors(&tensors, HEAD, classes, encoder.dim())?;
        let scales = tensors
            .remove(SCALES)
            .ok_or_else(|| format!("tensor '{SCALES}' is missing"))?;
        let scales = two_numbers(SCALES, scales)?;
        let cascade = match tensors.remove(CASCADE) {
            Some(t) => Some(cascade_of(t)?),
            None => None,
        };
        let bow = Bow::from_tensors(Checked(config.bow), n_subwords, classes, tensors)?;
        Ok(Hybrid::new(
            config.max_tokens,
            config.cascade_keep,
            bow,
            head,
            scales,
            cascade,
            encoder,
        ))
    }
}

/// The two finite numbers of the bundle's tensor `name`.
fn two_numbers(name: &str, t: Tensor) -> std::result::Result<[f32; 2], String> {
    let v = finite_numbers(name, t, &[2])?;
    Ok([v[0], v[1]])
}

/// The finite numbers of the bundle's tensor `name`, whose length must be one of `lengths`.
fn finite_numbers(
    name: &str,
    t: Tensor,
    lengths: &[usize],
) -> std::result::Result<Vec<f32>, String> {
    if !matches!(t.dims(), [n] if lengths.contains(n)) {
        let expected: Vec<String> = lengths.iter().map(|n| format!("[{n}]")).collect();
        return Err(format!(
            "tensor '{name}' has shape {:?}, expected {}",
            t.dims(),
            expected.join(" or ")
        ));
    }
    let v = t
        .to_dtype(DType::F32)
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| format!("tensor '{name}': {e}"))?;
    if v.iter().any(|s| !s.is_finite()) {
        return Err(format!("tensor '{name}' holds NaN or infinite values"));
    }
    Ok(v)
}

/// The cascade of the bundle's tensor: scale and threshold (a model saved before short texts
/// had a threshold of their own), or those, the short texts' length in words and their
/// threshold.
fn cascade_of(t: Tensor) -> std::result::Result<Cascade, String> {
    let v = finite_numbers(CASCADE, t, &[2, 4])?;
    let (scale, confident) = (v[0], v[1]);
    let (short_words, short_confident) = match v[..] {
        [_, _, words, threshold] => {
            if words < 0.0 || words.fract() != 0.0 || words > u32::MAX as f32 {
                return Err(format!(
                    "tensor '{CASCADE}': the short texts' length {words} is not a number of words"
                ));
            }
            (words as u32, threshold)
        }
        _ => (0, confident),
    };
    Ok(Cascade {
        scale,
        confident,
        short_words,
        short_confident,
    })
}

/// The bow part's top probability alone, calibrated: of its raw `logits` times `scale` (a
/// [`Cascade`]'s scale).
pub(crate) fn calibrated_top(scale: f32, logits: &[f32]) -> f32 {
    let z: Vec<f32> = logits.iter().map(|p| scale * p).collect();
    top_probability(&z)
}

/// The largest softmax probability of `logits`.
pub(crate) fn top_probability(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|z| (z - max).exp()).sum();
    1.0 / sum
}

/// The penalty on the squared weights in [`fit_scales`]: negligible beside a log-loss of real
/// cross-validated scores (weights near 1, log-losses near 0.3).
const SCALE_PENALTY: f64 = 1e-4;

/// The weights `[s_bow, s_enc]` (both at least 0) that minimize the mean log-loss of
/// `softmax(s_bow · bow + s_enc · enc)` over documents whose true classes are `targets` (plus
/// a slight penalty on the weights): a grid over the encoder's share of the sum, and for each
/// share the best overall scale.
pub(crate) fn fit_scales(bow: &[Vec<f32>], enc: &[Vec<f32>], targets: &[u32]) -> [f32; 2] {
    let loss = |share: f64, scale: f64| -> f64 {
        let (a, b) = ((1.0 - share) * scale, share * scale);
        let mut z = Vec::new();
        let mut total = 0.0f64;
        for ((zb, ze), &y) in bow.iter().zip(enc).zip(targets) {
            z.clear();
            z.extend(
                zb.iter()
                    .zip(ze)
                    .map(|(p, q)| (a * *p as f64 + b * *q as f64) as f32),
            );
            softmax_in_place(&mut z);
            total -= (z[y as usize].max(1e-12) as f64).ln();
        }
        // A slight penalty on the weights: where the parts separate the documents perfectly
        // (no finite optimum), the sum that does so with the smallest weights wins.
        total / targets.len().max(1) as f64 + SCALE_PENALTY * (a * a + b * b)
    };
    let mut best = (f64::INFINITY, 1.0, 0.0);
    for step in 0..=20 {
        let share = step as f64 / 20.0;
        let (f, scale) = best_scale(|scale| loss(share, scale));
        if f < best.0 {
            best = (f, share, scale);
        }
    }
    let (_, share, scale) = best;
    [((1.0 - share) * scale) as f32, (share * scale) as f32]
}

/// The scale between 1/100 and 100 that minimizes `loss` (golden-section search of its log),
/// with the loss there.
fn best_scale(loss: impl Fn(f64) -> f64) -> (f64, f64) {
    let (mut lo, mut hi) = ((0.01f64).ln(), (100.0f64).ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut x1 = hi - g * (hi - lo);
    let mut x2 = lo + g * (hi - lo);
    let (mut f1, mut f2) = (loss(x1.exp()), loss(x2.exp()));
    for _ in 0..40 {
        if f1 < f2 {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            f1 = loss(x1.exp());
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            f2 = loss(x2.exp());
        }
    }
    if f1 < f2 {
        (f1, x1.exp())
    } else {
        (f2, x2.exp())
    }
}

/// The cascade of a hybrid whose bow part's cross-validated logits are `bow` and whose
/// combined ones are `combined`, for the documents `texts`: the bow part's
/// calibration (the scale of minimum log-loss) and the lowest threshold on its top probability
/// at which answering alone above it costs at most [`CASCADE_TOLERANCE`] of accuracy against
/// `combined` on every document, and leaves to the encoder at least the share `keep` of the
/// documents on which the two ways differ (one right, the other wrong); the same rule on the
/// documents of at most [`SHORT_WORDS`] words alone gives the short texts' threshold (never
/// lower). With it, the share of the documents the bow part answers alone and the cascade's
/// accuracy on them all.
pub(crate) fn fit_cascade(
    bow: &[Vec<f32>],
    combined: &[Vec<f32>],
    targets: &[u32],
    texts: &[&str],
    keep: f64,
) -> (Cascade, f64, f64) {
    let (_, scale) = best_scale(|scale| {
        let mut z = Vec::new();
        let total: f64 = bow
            .iter()
            .zip(targets)
            .map(|(zb, &y)| {
                z.clear();
                z.extend(zb.iter().map(|p| (scale * *p as f64) as f32));
                softmax_in_place(&mut z);
                -(z[y as usize].max(1e-12) as f64).ln()
            })
            .sum();
        total / targets.len().max(1) as f64
    });
    let scale = scale as f32;
    // Each document's confidence alone, whether each way is right, and whether it is short.
    let docs: Vec<(f32, bool, bool, bool)> = bow
        .iter()
        .zip(combined)
        .zip(targets)
        .zip(texts)
        .map(|(((zb, zc), &y), text)| {
            (
                calibrated_top(scale, zb),
                super::argmax(zb) == y as usize,
                super::argmax(zc) == y as usize,
                is_short(text, SHORT_WORDS),
            )
        })
        .collect();
    let all: Vec<(f32, bool, bool)> = docs.iter().map(|d| (d.0, d.1, d.2)).collect();
    let short: Vec<(f32, bool, bool)> = docs
        .iter()
        .filter(|d| d.3)
        .map(|d| (d.0, d.1, d.2))
        .collect();
    let confident = threshold_of(all, keep);
    let short_confident = if short.is_empty() {
        confident
    } else {
        threshold_of(short, keep).max(confident)
    };
    let (mut alone, mut right) = (0usize, 0usize);
    for &(c, alone_right, both_right, is_short) in &docs {
        let threshold = if is_short { short_confident } else { confident };
        if c >= threshold {
            alone += 1;
            right += usize::from(alone_right);
        } else {
            right += usize::from(both_right);
        }
    }
    let n = docs.len().max(1) as f64;
    (
        Cascade {
            scale,
            confident,
            short_words: SHORT_WORDS,
            short_confident,
        },
        alone as f64 / n,
        right as f64 / n,
    )
}

/// [`fit_cascade`]'s threshold for `docs`: each one's calibrated confidence alone and whether
/// the bow part alone, and both parts, are right on it.
fn threshold_of(mut docs: Vec<(f32, bool, bool)>, keep: f64) -> f32 {
    docs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n = docs.len();
    let both: usize = docs.iter().filter(|d| d.2).count();
    let floor = both as f64 / n.max(1) as f64 - CASCADE_TOLERANCE;
    // Of the documents where the two ways differ, how many may be answered alone.
    let differ = docs.iter().filter(|d| d.1 != d.2).count();
    let may_skip = ((1.0 - keep) * differ as f64 + 1e-9).floor() as usize;
    // The first k documents (most confident first) answered alone.
    let mut right = both as i64;
    let mut skipped = 0usize;
    let mut chosen = NEVER_ALONE;
    for k in 1..=n {
        let (c, alone, with) = docs[k - 1];
        right += alone as i64 - with as i64;
        skipped += (alone != with) as usize;
        if skipped > may_skip {
            // Answering more alone only skips more of them.
            break;
        }
        // A threshold lets through every document as confident as the k-th.
        let boundary = k == n || docs[k].0 < c;
        if boundary && right as f64 / n as f64 >= floor {
            chosen = c;
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every document long: the cascade's short threshold plays no part.
    fn long(targets: &[u32]) -> Vec<&'static str> {
        vec![LONG; targets.len()]
    }

    /// A text of more than [`SHORT_WORDS`] words.
    const LONG: &str = "one two three four five six seven eight nine ten one two three four \
                        five six seven eight nine ten one two three four five six seven eight \
                        nine ten and one";

    #[test]
    fn scales_lean_on_the_part_that_predicts() {
        // The bow part is right on every document, the encoder part on none: all weight on
        // bow. And the other way round.
        let targets: Vec<u32> = (0..40).map(|i| i % 2).collect();
        let right: Vec<Vec<f32>> = targets
            .iter()
            .map(|&y| {
                if y == 0 {
                    vec![1.0, -1.0]
                } else {
                    vec![-1.0, 1.0]
                }
            })
            .collect();
        let wrong: Vec<Vec<f32>> = right.iter().map(|v| vec![v[1], v[0]]).collect();
        let [a, b] = fit_scales(&right, &wrong, &targets);
        assert!(a > 1.0 && b == 0.0, "{a} {b}");
        let [a, b] = fit_scales(&wrong, &right, &targets);
        assert!(b > 1.0 && a == 0.0, "{a} {b}");
        // Two parts of equal worth: each sure and right on its own third of the documents,
        // both unsure on a third, and both wrong on every fifth document, so that the loss
        // has a finite optimum. The weights come out equal, and both well above 0.
        let part = |offset: usize| -> Vec<Vec<f32>> {
            (0..40)
                .map(|i| {
                    if i % 5 == 4 {
                        wrong[i].clone()
                    } else if i % 3 == offset {
                        right[i].clone()
                    } else {
                        vec![0.1 * right[i][0], 0.1 * right[i][1]]
                    }
                })
                .collect()
        };
        let (a, b) = (part(0), part(1));
        let [wa, wb] = fit_scales(&a, &b, &targets);
        let [wb2, wa2] = fit_scales(&b, &a, &targets);
        assert!(wa > 0.1 && wb > 0.1, "{wa} {wb}");
        // Swapping the parts swaps the weights.
        assert!(
            (wa - wa2).abs() < 1e-4 && (wb - wb2).abs() < 1e-4,
            "{wa} {wb} {wa2} {wb2}"
        );
    }

    #[test]
    fn the_cascade_lets_the_bow_part_answer_where_it_is_sure_and_right() {
        // 100 documents of 2 classes. The combined scores are right on all but 2. The bow part
        // is sure and right on 60, sure and wrong on 5 (less sure than the 60), and unsure (a
        // coin toss, wrong) on 35.
        let mut bow = Vec::new();
        let mut combined = Vec::new();
        let mut targets = Vec::new();
        for i in 0..100u32 {
            let y = i % 2;
            let sign = if y == 0 { 1.0 } else { -1.0 };
            let z = match i {
                0..=59 => 6.0 + i as f32 / 60.0,
                60..=64 => -4.0,
                _ => -0.1,
            };
            bow.push(vec![sign * z, -sign * z]);
            let c = if i < 2 { -3.0 } else { 3.0 };
            combined.push(vec![sign * c, -sign * c]);
            targets.push(y);
        }
        let (c, _, _) = fit_cascade(
            &bow,
            &combined,
            &targets,
            &long(&targets),
            DEFAULT_CASCADE_KEEP,
        );
        assert!(c.scale > 0.0);
        let top = |z: &[f32]| top_probability(&z.iter().map(|v| c.scale * v).collect::<Vec<_>>());
        // The 60 sure and right ones answer alone; the 5 confidently wrong ones do not (5
        // points of accuracy), nor the unsure ones.
        assert!((0..60).all(|i| top(&bow[i]) >= c.confident), "{c:?}");
        assert!((60..100).all(|i| top(&bow[i]) < c.confident), "{c:?}");
        // A bow part right everywhere answers everywhere alone; one wrong everywhere nowhere.
        let (c, _, _) = fit_cascade(
            &combined[2..],
            &combined[2..],
            &targets[2..],
            &long(&targets[2..]),
            DEFAULT_CASCADE_KEEP,
        );
        assert!(c.confident <= 1.0);
        let wrong: Vec<Vec<f32>> = combined.iter().map(|z| vec![z[1], z[0]]).collect();
        let (c, _, _) = fit_cascade(
            &wrong,
            &combined,
            &targets,
            &long(&targets),
            DEFAULT_CASCADE_KEEP,
        );
        assert_eq!(c.confident, NEVER_ALONE);
    }

    #[test]
    fn a_cascade_reads_from_two_numbers_or_four() {
        let t = |v: &[f32]| Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap();
        // Before short texts had their own threshold: scale and threshold, for every text.
        let old = cascade_of(t(&[1.5, 0.6])).unwrap();
        assert_eq!((old.short_words, old.short_confident), (0, 0.6));
        assert_eq!(old.threshold("a short headline"), 0.6);
        let new = cascade_of(t(&[1.5, 0.6, 30.0, 0.8])).unwrap();
        assert_eq!(
            new,
            Cascade {
                scale: 1.5,
                confident: 0.6,
                short_words: 30,
                short_confident: 0.8
            }
        );
        assert_eq!(new.threshold("a short headline"), 0.8);
        for bad in [
            &[1.5, 0.6, 30.0][..],
            &[1.5, 0.6, -1.0, 0.8],
            &[1.5, 0.6, 2.5, 0.8],
            &[1.5, f32::NAN],
        ] {
            let e = cascade_of(t(bad)).unwrap_err();
            assert!(e.contains("hybrid.cascade"), "{e}");
        }
    }

    #[test]
    fn short_texts_get_a_threshold_that_holds_the_tolerance_on_them_alone() {
        // 10,000 long documents the bow part is sure and right on; 300 short ones: 100 it is
        // sure and right on, 200 it is less sure of, 5 of which it gets wrong where both parts
        // are right. Over all 10,300 the 5 are within the tolerance (a tenth of a point), so
        // the threshold lets every document answer alone; over the 300 short ones they are not.
        let (mut bow, mut combined, mut targets, mut words) = (vec![], vec![], vec![], vec![]);
        let mut push = |z: f32, bow_right: bool, short: bool, i: usize| {
            let y = (i % 2) as u32;
            let sign = if y == 0 { 1.0 } else { -1.0 };
            let b = if bow_right { z } else { -z };
            bow.push(vec![sign * b, -sign * b]);
            combined.push(vec![sign * 3.0, -sign * 3.0]);
            targets.push(y);
            words.push(if short { "a short headline" } else { LONG });
        };
        for i in 0..10_000 {
            push(8.0 - 2.0 * i as f32 / 10_000.0, true, false, i);
        }
        for i in 0..100 {
            push(7.0, true, true, i);
        }
        for i in 0..200 {
            push(3.0, i >= 5, true, i);
        }
        let (c, alone, right) = fit_cascade(&bow, &combined, &targets, &words, 0.0);
        assert_eq!(c.short_words, SHORT_WORDS);
        let top = |z: &[f32]| top_probability(&z.iter().map(|v| c.scale * v).collect::<Vec<_>>());
        let (unsure, sure) = (top(&bow[10_100]), top(&bow[10_000]));
        assert!(c.confident <= unsure, "{c:?}");
        assert!(
            unsure < c.short_confident && c.short_confident <= sure,
            "{c:?}"
        );
        // The short ones the bow part is unsure of go to the encoder, the rest answer alone.
        assert!((alone - 10_100.0 / 10_300.0).abs() < 1e-9, "{alone}");
        assert_eq!(right, 1.0);
        let text = |n: usize| vec!["word"; n].join(" ");
        assert_eq!(c.threshold(&text(30)), c.short_confident);
        assert_eq!(c.threshold(&text(31)), c.confident);
        // Without short documents in training, short texts get the threshold of the others.
        let (c, _, _) = fit_cascade(
            &bow[..10_000],
            &combined[..10_000],
            &targets[..10_000],
            &words[..10_000],
            0.0,
        );
        assert_eq!(c.short_confident, c.confident);
    }

    #[test]
    fn the_cascade_sends_the_encoder_most_documents_where_the_two_ways_differ() {
        // 1,000 documents, most confident first: the bow part is sure and right on 900, where
        // both ways agree; then right where the combined scores are wrong on 20, wrong where
        // they are right on 20, and right with them on 60. Answering everything alone loses
        // nothing on these scores (20 won, 20 lost), but the encoder would never see the
        // documents where it differs: 36 of the 40 must reach it.
        let n = 1000;
        let mut bow = Vec::new();
        let mut combined = Vec::new();
        let mut targets = Vec::new();
        for i in 0..n {
            let y = (i % 2) as u32;
            let sign = if y == 0 { 1.0 } else { -1.0 };
            let z = 8.0 - 6.0 * i as f32 / n as f32;
            let (bow_right, combined_right) = match i {
                0..=899 => (true, true),
                900..=919 => (true, false),
                920..=939 => (false, true),
                _ => (true, true),
            };
            let b = if bow_right { z } else { -z };
            let c = if combined_right { 3.0 } else { -3.0 };
            bow.push(vec![sign * b, -sign * b]);
            combined.push(vec![sign * c, -sign * c]);
            targets.push(y);
        }
        let (c, alone, right) = fit_cascade(
            &bow,
            &combined,
            &targets,
            &long(&targets),
            DEFAULT_CASCADE_KEEP,
        );
        let top = |z: &[f32]| top_probability(&z.iter().map(|v| c.scale * v).collect::<Vec<_>>());
        let sent: usize = (900..940).filter(|&i| top(&bow[i]) < c.confident).count();
        assert!(sent >= 36, "{sent} {c:?}");
        // The bow part still answers the 900 sure ones alone.
        assert!((0..900).all(|i| top(&bow[i]) >= c.confident), "{c:?}");
        assert!((0.9..0.91).contains(&alone), "{alone}");
        // The few differing ones answered alone are some the bow part gets right.
        assert!(right >= 0.98, "{right}");
        // Keeping none of them, the tolerance alone lets the bow part answer everything;
        // keeping all, it answers the 900 only.
        let (_, alone, _) = fit_cascade(&bow, &combined, &targets, &long(&targets), 0.0);
        assert_eq!(alone, 1.0);
        let (_, alone, right) = fit_cascade(&bow, &combined, &targets, &long(&targets), 1.0);
        assert_eq!((alone, right), (0.9, 0.98));
    }

    #[test]
    fn settings_are_checked() {
        assert!(EncoderArchConfig { max_tokens: 2 }.check().is_err());
        assert!(EncoderArchConfig { max_tokens: 513 }.check().is_err());
        assert!(EncoderArchConfig::default().check().is_ok());
        let err = HybridConfig {
            max_tokens: 1,
            ..HybridConfig::default()
        }
        .check()
        .unwrap_err();
        assert!(matches!(
            err,
            Error::Config {
                field: "max_tokens",
                ..
            }
        ));
        for keep in [-0.1, 1.5, f64::NAN] {
            let err = HybridConfig {
                cascade_keep: keep,
                ..HybridConfig::default()
            }
            .check()
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Config {
                        field: "cascade_keep",
                        ..
                    }
                ),
                "{keep}"
            );
        }
    }
}
