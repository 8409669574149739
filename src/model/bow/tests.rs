//! Unit tests of the `bow` model: features, caches, indexes, packed rows, trainers.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::config::*;
use super::features::WordCache;
use super::index::{first_slot, KeyIndex, NgramIndex};
use super::model::{dot, Bow, Scratch};
use super::packed::*;
use super::prepare::{merged_runs, run_lengths, DocFeatures, Prepared};
use super::softmax::SoftmaxTrainer;
use super::svm::{nb_ratios_squared, SvmTrainer, SVM_SCORE_SCALE};
use super::weights::{sublinear_tf, weigh_counts, SparseDoc};
use crate::model::{argmax, Fit};
use crate::rng::SplitMix64;
use crate::text::{Tokenizer, TokenizerOptions};

/// The texts the tiny models train on.
const TINY_TEXTS: [&str; 6] = [
    "the striker scored a late goal",
    "the keeper saved a penalty kick",
    "shares fell as markets slid",
    "the bank raised interest rates",
    "a late goal won the cup final",
    "markets rose as shares rallied",
];

/// The six texts prepared with the given labels, out of `classes`.
pub(super) fn tiny_prepared(
    config: BowConfig,
    targets: &[u32],
    classes: usize,
) -> (Arc<Prepared>, Tokenizer) {
    let texts = TINY_TEXTS;
    let tok = Tokenizer::train(
        &texts,
        &TokenizerOptions {
            vocab_size: 200,
            min_frequency: 1,
        },
    )
    .unwrap();
    let p = Prepared::new(
        config.check().unwrap(),
        &tok,
        &texts,
        targets.to_vec(),
        classes,
    );
    (Arc::new(p), tok)
}

/// A softmax trainer on the six texts, with their labels given.
fn tiny_labeled(config: BowConfig, targets: &[u32], classes: usize) -> (SoftmaxTrainer, Tokenizer) {
    let config = BowConfig {
        loss: Loss::Softmax,
        ..config
    };
    let (p, tok) = tiny_prepared(config, targets, classes);
    (SoftmaxTrainer::new(p, 3), tok)
}

/// A softmax trainer on the six texts, two labels.
fn tiny(config: BowConfig) -> (SoftmaxTrainer, Tokenizer) {
    tiny_labeled(config, &[0, 0, 1, 1, 0, 1], 2)
}

fn tiny_trainer(config: BowConfig) -> SoftmaxTrainer {
    tiny(config).0
}

/// An SVM trainer on the six texts.
fn tiny_svm(config: BowConfig, targets: &[u32], classes: usize) -> (SvmTrainer, Arc<Prepared>) {
    let (p, _) = tiny_prepared(config, targets, classes);
    (SvmTrainer::new(Arc::clone(&p)), p)
}

/// The model of a trainer as it stands.
fn model_of(t: &mut dyn Fit) -> Bow {
    match t.snapshot().unwrap() {
        crate::model::Model::Bow(b) => b,
        _ => unreachable!("a bow trainer"),
    }
}

/// The weighted rows of `text` as training makes them: the raw features of pass 1, their rows
/// and counts as pass 2 finds them, then weighed.
fn training_doc(bow: &Bow, tok: &Tokenizer, text: &str) -> SparseDoc {
    let raw = DocFeatures::default().doc(tok, &bow.config, text);
    let counts = raw.rows(bow.n_subwords, &bow.ngrams);
    let mut doc = SparseDoc::default();
    weigh_counts(&counts, &bow.idf, bow.config.weighting, &mut doc);
    doc
}

/// The hand-written backward through the table agrees with finite differences of the loss.
#[test]
fn table_gradient_matches_finite_differences() {
    let config = BowConfig {
        dim: 4,
        loss: Loss::Softmax,
        min_count: 1,
        min_count_words: 1,
        char_ngrams: [2, 3],
        ..BowConfig::default()
    };
    let mut t = tiny_trainer(config);
    let batch: Vec<usize> = (0..6).collect();
    let back = t.backward(&batch).unwrap();
    assert!(back.touched.len() > 10);
    let eps = 1e-2f32;
    let mut checked = 0;
    for (s, &r) in back.touched.iter().enumerate().step_by(3) {
        for k in 0..4 {
            let at = r as usize * 4 + k;
            let orig = t.bow.table[at];
            t.bow.table[at] = orig + eps;
            let up = t.forward(&batch).unwrap().loss.to_scalar::<f32>().unwrap();
            t.bow.table[at] = orig - eps;
            let down = t.forward(&batch).unwrap().loss.to_scalar::<f32>().unwrap();
            t.bow.table[at] = orig;
            let numeric = (up - down) / (2.0 * eps);
            let analytic = back.grad_rows[s * 4 + k];
            assert!(
                (numeric - analytic).abs() <= 1e-3 + 0.05 * analytic.abs(),
                "row {r} dim {k}: numeric {numeric}, backprop {analytic}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 12);
    // The head gets gradients too, and they are not all zero.
    let (gw, gb) = back.head.as_ref().unwrap();
    assert_eq!((gw.len(), gb.len()), (2 * 4, 2));
    let sum: f32 = gw.iter().map(|x| x.abs()).sum();
    assert!(sum > 0.0 && sum.is_finite());
}

/// Prediction (word cache of rows, fused pooling) computes what training computes: the weighted
/// rows of a training document, pooled through the table and the head.
#[test]
fn prediction_matches_the_training_features() {
    // Label counts whose packed rows have no padding (3), some (2, 4) and a whole row's
    // worth of lanes beside the IDF (7).
    for (targets, classes) in [
        (&[0, 0, 1, 1, 0, 1][..], 2),
        (&[0, 1, 2, 0, 1, 2][..], 3),
        (&[0, 1, 2, 3, 0, 1][..], 4),
        (&[0, 1, 2, 3, 4, 5][..], 7),
    ] {
        let (mut t, tok) = tiny_labeled(
            BowConfig {
                dim: 8,
                loss: Loss::Softmax,
                min_count: 1,
                min_count_words: 1,
                ..BowConfig::default()
            },
            targets,
            classes,
        );
        let batch: Vec<usize> = (0..6).collect();
        for _ in 0..5 {
            t.step(&batch, 0.05).unwrap();
        }
        let bow = model_of(&mut t);
        assert_eq!(bow.stride() % 4, 0);
        assert!(bow.stride() > classes && bow.stride() <= classes + 4);
        predictions_match_the_training_features(&bow, &tok);
    }
}

fn predictions_match_the_training_features(bow: &Bow, tok: &Tokenizer) {
    let texts = [
        "the striker scored a late goal, and the late goal won!",
        "markets rose as shares rallied; shares fell",
        "",
        "unseen words only",
        "the the the the",
    ];
    let mut scratch = Scratch::default();
    let mut got = Vec::new();
    for round in 0..2 {
        for text in texts {
            // Reference: the training path.
            let doc = training_doc(bow, tok, text);
            let mut pooled = Vec::new();
            pool(&bow.table, bow.config.dim, &doc, &mut pooled);
            let want: Vec<f32> = bow
                .head_b
                .iter()
                .enumerate()
                .map(|(c, b)| {
                    b + dot(
                        &bow.head_w[c * bow.config.dim..(c + 1) * bow.config.dim],
                        &pooled,
                    )
                })
                .collect();
            bow.logits_of(tok, text, &mut scratch, &mut got);
            assert_eq!(got.len(), want.len());
            for (a, b) in want.iter().zip(&got) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "round {round}, {text:?}: {want:?} vs {got:?}"
                );
            }
        }
    }
}

/// Merging two sorted lists' runs gives the runs of both lists sorted together, counts of
/// a value in both added.
#[test]
fn merged_runs_are_the_runs_of_both_lists_sorted() {
    let cases: [(&[u64], &[u64]); 6] = [
        (&[], &[]),
        (&[1, 1, 4], &[]),
        (&[], &[2, 3, 3]),
        (&[1, 1, 4, 9], &[2, 4, 4, 10, 10]),
        (&[5, 6, 7], &[1, 2, 3]),
        (&[u64::MAX, u64::MAX], &[0, u64::MAX]),
    ];
    for (a, b) in cases {
        let mut both = [a, b].concat();
        both.sort_unstable();
        let expected: Vec<(u64, u32)> = run_lengths(&both).collect();
        assert_eq!(
            merged_runs(a, b).collect::<Vec<_>>(),
            expected,
            "{a:?} {b:?}"
        );
    }
}

/// Words and character n-grams get rows by `min_count_words`, word n-grams by
/// `min_count`: a key has a row exactly when enough documents hold it, counted by kind.
#[test]
fn each_kind_of_key_has_its_own_document_count() {
    for (words_min, pairs_min) in [(1, 2), (2, 1), (2, 2), (1, 1), (3, 1)] {
        let config = BowConfig {
            min_count: pairs_min,
            min_count_words: words_min,
            ..BowConfig::default()
        };
        let (t, tok) = tiny(config.clone());
        let mut words = DocFeatures::default();
        let (mut word_df, mut pair_df) = (HashMap::new(), HashMap::new());
        for text in TINY_TEXTS {
            let doc = words.doc(&tok, &config, text);
            for (k, _) in run_lengths(&doc.keys) {
                *word_df.entry(k).or_insert(0) += 1;
            }
            for (k, _) in run_lengths(&doc.pairs) {
                *pair_df.entry(k).or_insert(0) += 1;
            }
        }
        assert!(pair_df.values().any(|&n| n >= 2) && pair_df.values().any(|&n| n == 1));
        assert!(word_df.values().any(|&n| n >= 3) && word_df.values().any(|&n| n == 1));
        let mut want: Vec<u64> = word_df
            .iter()
            .filter(|&(_, &n)| n >= words_min)
            .chain(pair_df.iter().filter(|&(_, &n)| n >= pairs_min))
            .map(|(&k, _)| k)
            .collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(
            t.bow.ngrams.keys, want,
            "min counts {words_min} / {pairs_min}"
        );
    }
}

/// Compacting to `max_ngrams` keeps the n-gram rows with the largest `idf * |row|`, and
/// their values.
#[test]
fn compacting_keeps_the_rows_that_move_the_scores_most() {
    let (mut t, _) = tiny_svm(
        BowConfig {
            min_count: 1,
            min_count_words: 1,
            ..BowConfig::default()
        },
        &[0, 0, 1, 1, 0, 1],
        2,
    );
    t.begin(6);
    let batch: Vec<usize> = (0..6).collect();
    for _ in 0..5 {
        t.step(&batch, 0.0).unwrap();
    }
    let bow = &model_of(&mut t);
    let n = bow.num_ngrams();
    let score = |i: usize| {
        let r = bow.n_subwords + i;
        bow.idf[r] * bow.projected_row(r).map(|x| x * x).sum::<f32>().sqrt()
    };
    let mut ranked: Vec<usize> = (0..n).collect();
    ranked.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    // Distinct scores: the ranking is the weights', not the rows' order.
    assert!(score(ranked[0]) > score(ranked[n / 2]) && score(ranked[n / 2]) > 0.0);
    for max in [1, n / 3, n - 1] {
        let small = bow.compact(CompactOptions {
            max_ngrams: Some(max),
            ..CompactOptions::default()
        });
        let mut kept: Vec<usize> = ranked[..max].to_vec();
        kept.sort_unstable();
        let keys: Vec<u64> = kept.iter().map(|&i| bow.ngrams.keys[i]).collect();
        assert_eq!(small.ngrams.keys, keys, "max {max}");
        for (j, &i) in kept.iter().enumerate() {
            let (a, b) = (small.n_subwords + j, bow.n_subwords + i);
            assert_eq!(small.idf[a], bow.idf[b]);
            assert!(small.projected_row(a).eq(bow.projected_row(b)));
        }
    }
}

/// The cached per-word features of training documents are those of an empty cache, also for
/// words seen before and after the cache starts over.
#[test]
fn training_documents_have_the_features_of_an_empty_cache() {
    let (t, tok) = tiny(BowConfig {
        min_count: 1,
        min_count_words: 1,
        ..BowConfig::default()
    });
    let config = &t.bow.config;
    let mut words = DocFeatures::default();
    let texts = [
        "the striker scored a late goal, and the late goal won!",
        "markets rose as shares rallied; shares fell",
        "",
        "the the the the",
        "the striker scored a late goal, and the late goal won!",
    ];
    let mut seen = 0;
    for round in 0..2 {
        for text in texts {
            let want = DocFeatures::default().doc(&tok, config, text);
            let got = words.doc(&tok, config, text);
            assert_eq!(
                (got.subs, got.keys, got.pairs),
                (want.subs, want.keys, want.pairs),
                "round {round}: {text:?}"
            );
        }
        seen = seen.max(words.cache.index.len());
        // Start over, as a full cache does.
        words.cache.clear();
    }
    assert!(seen > 10, "{seen} words cached");
    let _: &WordCache<u64> = &words.cache;
    assert_eq!(
        run_lengths(&[1, 1, 2, 5, 5, 5]).collect::<Vec<_>>(),
        [(1, 2), (2, 1), (5, 3)]
    );
}

/// The n-gram index finds every key it was given, at its first position, and no other
/// key: keys that share their first slot, or their low 32 bits, are told apart.
#[test]
fn ngram_index_finds_exactly_its_keys() {
    let mut rng = SplitMix64::new(3);
    let mut keys: Vec<u64> = (0..5000).map(|_| rng.next_u64()).collect();
    keys.extend([0, 1, 2, 3, 1 << 32, 2 << 32, 3 << 32 | 1]);
    keys.push(keys[10]); // a repeat keeps its first index
    let index = NgramIndex::new(keys.clone());
    let n = keys.len() - 1;
    assert_eq!((index.len(), index.distinct), (n + 1, n));
    assert!(2 * index.slots.len() >= 3 * n);
    for (i, &k) in keys.iter().enumerate().take(n) {
        assert_eq!(index.get(k), Some(i as u32), "key {k:#x}");
        index.prefetch(k);
    }
    let present: std::collections::HashSet<u64> = keys.iter().copied().collect();
    for _ in 0..20_000 {
        let k = rng.next_u64();
        if !present.contains(&k) {
            assert_eq!(index.get(k), None);
            // The same low 32 bits as a key it has.
            let twin = keys[k as usize % n] ^ (k & 0xffff_ffff_0000_0000);
            if !present.contains(&twin) {
                assert_eq!(index.get(twin), None);
            }
        }
    }
    // 100 keys with the same first slot (in a table of 256) probe past each other.
    let crowded = keys_with_first_slot(&mut rng, 101, 7, 56);
    let index = NgramIndex::new(crowded[..100].to_vec());
    assert_eq!(index.slots.len(), 256);
    for (i, &k) in crowded[..100].iter().enumerate() {
        assert_eq!(index.get(k), Some(i as u32));
    }
    assert_eq!(index.get(crowded[100]), None);
    assert_eq!(NgramIndex::new(Vec::new()).get(7), None);
}

/// `count` random keys whose first slot is `slot` under `shift`.
fn keys_with_first_slot(rng: &mut SplitMix64, count: usize, slot: usize, shift: u32) -> Vec<u64> {
    let mut keys = Vec::new();
    while keys.len() < count {
        let k = rng.next_u64();
        if first_slot(k, shift) == slot {
            keys.push(k);
        }
    }
    keys
}

/// The word cache's index, grown one key at a time from the smallest table, finds
/// exactly its keys; emptied, none.
#[test]
fn key_index_finds_exactly_its_keys() {
    let mut rng = SplitMix64::new(4);
    let mut keys: Vec<u64> = (0..5000).map(|_| rng.next_u64()).collect();
    keys.extend([0, 1, 2, 3]);
    keys.extend(keys_with_first_slot(&mut rng, 50, 3, 50));
    let mut grown = KeyIndex::with_capacity(0);
    for (i, &k) in keys.iter().enumerate() {
        grown.insert(k, 2 * i as u32);
    }
    grown.insert(keys[10], 1); // a key keeps its first value
    assert_eq!(grown.len(), keys.len());
    assert!(2 * grown.slots.len() >= 3 * grown.len());
    for (i, &k) in keys.iter().enumerate() {
        assert_eq!(grown.get(k), Some(2 * i as u32));
        grown.prefetch(k);
    }
    let present: std::collections::HashSet<u64> = keys.iter().copied().collect();
    for _ in 0..20_000 {
        let k = rng.next_u64();
        if !present.contains(&k) {
            assert_eq!(grown.get(k), None);
        }
    }
    grown.clear();
    assert_eq!((grown.len(), grown.get(keys[0])), (0, None));
}

#[test]
fn sublinear_tf_is_one_plus_the_log() {
    for n in 1..200u32 {
        assert_eq!(sublinear_tf(n), 1.0 + (n as f32).ln(), "{n}");
    }
}

/// A model saved in half precision is kept in half precision where the CPU converts it, and
/// predicts exactly what the same rows in single precision predict.
#[test]
fn half_precision_rows_predict_what_single_precision_rows_do() {
    // Rows of 8, 16, 32 and 64 values (one label short of a full row, for 7 and 31).
    for classes in [2, 7, 12, 31, 40] {
        let stride = half_stride(classes);
        assert!(stride > classes && stride % 8 == 0, "{classes}");
        assert!(
            64 % (2 * stride) == 0 || (2 * stride) % 64 == 0,
            "{classes}"
        );
        let targets: Vec<u32> = (0..6).map(|i| (i * 5 % classes) as u32).collect();
        let (mut t, tok) = tiny_labeled(
            BowConfig {
                min_count: 1,
                min_count_words: 1,
                ..BowConfig::default()
            },
            &targets,
            classes,
        );
        t.step(&[0, 1, 2, 3, 4, 5], 0.1).unwrap();
        let saved = model_of(&mut t).compact(CompactOptions {
            fold: true,
            half: true,
            max_ngrams: None,
        });
        let loaded = Bow::from_tensors(
            saved.config.clone().check().unwrap(),
            saved.n_subwords,
            classes,
            saved.tensors().unwrap().into_iter().collect(),
        )
        .unwrap();
        assert_eq!(loaded.table().as_ref(), saved.table().as_ref());
        assert_eq!(
            matches!(loaded.packed, Packed::F16(_)),
            converts_half(),
            "{classes}"
        );
        assert_eq!(loaded.packed.address() % 64, 0);
        // The same rows in single precision.
        let mut single = loaded.clone();
        let f32_stride = packed_stride(classes);
        let mut rows = AlignedRows::<f32>::zeros(loaded.rows() * f32_stride);
        let values = (0..loaded.rows())
            .flat_map(|r| (0..classes).map(move |c| (r, c)))
            .map(|(r, c)| loaded.packed.value(r, c, classes));
        fill_rows(
            &mut rows,
            f32_stride,
            classes,
            loaded.idf.iter().copied(),
            values,
        );
        single.packed = Packed::F32(rows);
        assert_eq!(single.packed, saved.packed);
        let mut scratch = Scratch::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for text in [
            "the striker scored a late goal, and the late goal won!",
            "markets rose as shares rallied; shares fell",
            "",
            "the the the the",
        ] {
            loaded.logits_of(&tok, text, &mut scratch, &mut a);
            single.logits_of(&tok, text, &mut scratch, &mut b);
            assert_eq!(a.len(), classes);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{classes} labels, {text:?}");
        }
    }
}

/// Loading checks the table's values on both ways of keeping it.
#[test]
fn loading_rejects_a_table_with_nan() {
    for dim in [0, 8] {
        let mut t = tiny_trainer(BowConfig {
            dim,
            loss: Loss::Softmax,
            min_count: 1,
            min_count_words: 1,
            ..BowConfig::default()
        });
        t.step(&[0, 1, 2], 0.1).unwrap();
        let bow = model_of(&mut t);
        let load = |tensors: Vec<(String, Tensor)>| {
            Bow::from_tensors(
                bow.config.clone().check().unwrap(),
                bow.n_subwords,
                bow.num_classes(),
                tensors.into_iter().collect(),
            )
        };
        let again = load(bow.tensors().unwrap()).unwrap();
        assert_eq!(again.table_in_packed, dim == 0, "dim {dim}");
        assert_eq!(again.table().as_ref(), bow.table.as_slice());
        assert_eq!(again.packed, bow.packed);
        // Rows start on a cache line, loaded or computed, and in a copy.
        for packed in [&again.packed, &bow.packed, &bow.clone().packed] {
            assert_eq!(packed.address() % 64, 0, "dim {dim}");
        }
        let mut tensors = bow.tensors().unwrap();
        let mut table = bow.table.clone();
        table[5] = f32::NAN;
        let shape = tensors[0].1.dims().to_vec();
        tensors[0] = (
            "bow.table".into(),
            Tensor::from_vec(table, shape, &Device::Cpu).unwrap(),
        );
        let err = load(tensors).unwrap_err();
        assert!(err.contains("NaN"), "{err}");
    }
}

/// Online steps are batch steps of one document each.
#[test]
fn online_steps_are_steps_of_one_document() {
    let mut online = tiny_trainer(BowConfig {
        dim: 0,
        min_count: 1,
        min_count_words: 1,
        ..BowConfig::default()
    });
    assert!(online.online());
    let mut single = online.fork_trainer();
    let batch = [4usize, 1, 0, 5, 2];
    for round in 0..3 {
        let loss = online.step(&batch, 0.2).unwrap();
        let mut losses = 0.0;
        for &d in &batch {
            losses += single.batch_step(&[d], 0.2).unwrap();
        }
        let want = losses / batch.len() as f32;
        assert!(
            (loss - want).abs() < 1e-4,
            "round {round}: {loss} vs {want}"
        );
    }
    let (a, b) = (&online.bow.table, &single.bow.table);
    assert!(a.iter().any(|&x| x != 0.0));
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
    assert_eq!(online.v.len(), single.v.len());
    for (x, y) in online.v.iter().zip(&single.v) {
        assert!((x - y).abs() <= 1e-4 * y.max(1.0), "{x} vs {y}");
    }
}

/// The written-out loss of the linear model equals candle's, and so does its gradient.
#[test]
fn linear_loss_matches_candle() {
    let mut t = tiny_trainer(BowConfig {
        dim: 0,
        min_count: 1,
        min_count_words: 1,
        ..BowConfig::default()
    });
    t.step(&[0, 1, 2, 3, 4, 5], 0.2).unwrap();
    let batch = [5usize, 0, 3, 2];
    let (loss, grad) = t.linear_loss(&batch);
    let f = t.forward(&batch).unwrap();
    let (h, want) = (f.h, f.loss);
    let want_grad: Vec<f32> = want
        .backward()
        .unwrap()
        .get(h.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let want = want.to_scalar::<f32>().unwrap();
    assert!(loss > 0.1, "{loss}");
    assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
    assert_eq!(grad.len(), want_grad.len());
    for (a, b) in grad.iter().zip(&want_grad) {
        assert!((a - b).abs() < 1e-6, "{grad:?} vs {want_grad:?}");
    }
}

/// Scoring the prepared documents gives what the model predicts for their texts; a fork
/// starts from the initial weights and, given the same steps, reaches the same weights.
#[test]
fn prepared_documents_score_as_their_texts_and_forks_train_alike() {
    for dim in [0, 8] {
        let (mut t, tok) = tiny(BowConfig {
            dim,
            loss: Loss::Softmax,
            min_count: 1,
            min_count_words: 1,
            ..BowConfig::default()
        });
        let mut fork = t.fork_trainer();
        let fresh = model_of(&mut t);
        assert_eq!(model_of(&mut fork).table, fresh.table);
        for batch in [&[0usize, 1, 2][..], &[3, 4, 5], &[5, 0]] {
            t.step(batch, 0.1).unwrap();
            fork.step(batch, 0.1).unwrap();
        }
        let bow = model_of(&mut t);
        assert_eq!(model_of(&mut fork).table, bow.table);
        assert_ne!(bow.table, fresh.table);
        let texts = TINY_TEXTS;
        let mut scratch = Scratch::default();
        let mut logits = Vec::new();
        let from_texts: Vec<usize> = texts
            .iter()
            .map(|text| {
                bow.logits_of(&tok, text, &mut scratch, &mut logits);
                argmax(&logits)
            })
            .collect();
        assert_eq!(
            t.predict_docs(0..6).unwrap().unwrap(),
            from_texts,
            "dim {dim}"
        );
        assert_eq!(
            t.predict_docs(2..4).unwrap().unwrap(),
            from_texts[2..4],
            "dim {dim}"
        );
    }
}

/// Training steps lower the loss with each optimizer.
#[test]
fn steps_reduce_the_loss_with_every_optimizer() {
    for optimizer in [
        SparseOptimizer::AdagradRow,
        SparseOptimizer::Adagrad,
        SparseOptimizer::Adam,
        SparseOptimizer::Sgd,
    ] {
        let mut t = tiny_trainer(BowConfig {
            dim: 8,
            loss: Loss::Softmax,
            min_count: 1,
            min_count_words: 1,
            optimizer,
            ..BowConfig::default()
        });
        let batch: Vec<usize> = (0..6).collect();
        let first = t.step(&batch, 0.05).unwrap();
        let mut last = first;
        for _ in 0..30 {
            last = t.step(&batch, 0.05).unwrap();
        }
        assert!(last < first * 0.5, "{optimizer:?}: {first} -> {last}");
    }
}
/// After steps, `restart` gives back the weights of a new trainer, and training from there
/// repeats itself exactly.
#[test]
fn restart_returns_to_the_initial_weights() {
    for dim in [0, 8] {
        let config = BowConfig {
            dim,
            loss: Loss::Softmax,
            min_count: 1,
            min_count_words: 1,
            ..BowConfig::default()
        };
        let mut t = tiny_trainer(config.clone());
        let fresh = model_of(&mut t);
        let batch: Vec<usize> = (0..6).collect();
        let first: Vec<f32> = (0..5).map(|_| t.step(&batch, 0.05).unwrap()).collect();
        assert_ne!(model_of(&mut t).table, fresh.table);
        t.restart().unwrap();
        let again = model_of(&mut t);
        assert_eq!(again.table, fresh.table);
        assert_eq!(again.head_w, fresh.head_w);
        let second: Vec<f32> = (0..5).map(|_| t.step(&batch, 0.05).unwrap()).collect();
        assert_eq!(first, second, "dim {dim}");
    }
}

/// The naive Bayes ratios of a hand-counted example: row 0 is in both documents of label
/// 0, row 1 in one of each label, row 2 in the one document of label 1.
#[test]
fn nb_ratios_match_a_hand_count() {
    let doc = |rows: &[u32]| SparseDoc {
        rows: rows.to_vec(),
        weights: vec![1.0; rows.len()],
    };
    let docs = [doc(&[0, 1]), doc(&[0]), doc(&[1, 2])];
    let r2 = nb_ratios_squared(&docs, &[0, 0, 1], &[], 3, 2);
    // Label 0: p = 1 + [2, 1, 0] (sum 6), q = 1 + [0, 1, 1] (sum 5); label 1 the reverse.
    let r0 = [(2.5f32).ln(), (5.0f32 / 6.0).ln(), (5.0f32 / 12.0).ln()];
    for (row, r) in r0.iter().enumerate() {
        for label in 0..2 {
            let got = r2[row * 2 + label];
            assert!((got - r * r).abs() < 1e-5, "row {row} label {label}: {got}");
        }
    }
}

/// With several labels per document (multi-label), a document counts for each of its labels,
/// and the other labels' documents are those with the feature that lack the label.
#[test]
fn nb_ratios_of_multi_label_documents_match_a_hand_count() {
    let doc = |rows: &[u32]| SparseDoc {
        rows: rows.to_vec(),
        weights: vec![1.0; rows.len()],
    };
    let docs = [doc(&[0, 1]), doc(&[0]), doc(&[1, 2])];
    // The third document has labels 1 and 0.
    let r2 = nb_ratios_squared(&docs, &[0, 0, 1], &[vec![], vec![], vec![0]], 3, 2);
    // Label 0: p = 1 + [2, 2, 1] (sum 8), q = 1 + [0, 0, 0] (sum 3).
    // Label 1: p = 1 + [0, 1, 1] (sum 5), q = 1 + [2, 1, 0] (sum 6).
    let want = [
        [(9.0f32 / 8.0).ln(), 0.4f32.ln()],
        [(9.0f32 / 8.0).ln(), 1.2f32.ln()],
        [0.75f32.ln(), 2.4f32.ln()],
    ];
    for (row, rs) in want.iter().enumerate() {
        for (label, r) in rs.iter().enumerate() {
            let got = r2[row * 2 + label];
            assert!(
                (got - r * r).abs() < 1e-5,
                "row {row} label {label}: {got} vs {}",
                r * r
            );
        }
    }
}

/// Dual coordinate descent reaches the SVMs' optimum (the dual's optimality conditions
/// hold, with each label's C relative to its documents' mean squared length), the table
/// holds `sum_i alpha_i y_i r^2 x_i` for each label, documents past the run's first `n` are
/// neither used nor counted in the ratios, and the SVMs split in parts train the same
/// weights as in one.
#[test]
fn svm_descent_reaches_the_optimum_of_its_dual() {
    for loss in [Loss::Svm, Loss::NbSvm] {
        let train = |parts: usize| {
            let (mut t, p) = tiny_svm(
                BowConfig {
                    loss,
                    svm_c: 1.0,
                    min_count: 1,
                    min_count_words: 1,
                    ..BowConfig::default()
                },
                &[0, 1, 2, 0, 1, 2],
                3,
            );
            t.begin_in_parts(5, parts);
            assert_eq!(t.svm.as_ref().unwrap().parts.len(), parts);
            let batch: Vec<usize> = (0..5).collect();
            let losses: Vec<f32> = (0..300).map(|_| t.step(&batch, 0.0).unwrap()).collect();
            assert!(losses[299] < losses[0], "{loss:?}: {losses:?}");
            (t, p)
        };
        let (mut t, p) = train(1);
        let (n, classes, rows) = (5, 3, p.rows());
        let svm = t.svm.as_ref().unwrap();
        let r2 = match loss {
            Loss::NbSvm => svm.gather(rows, |p| &p.r2),
            _ => Vec::new(),
        };
        if loss == Loss::NbSvm {
            let want = nb_ratios_squared(&p.docs[..n], &p.targets[..n], &[], rows, classes);
            assert_eq!(r2, want);
            assert!(r2.iter().any(|&x| x > 0.1));
        } else {
            assert!(svm.parts.iter().all(|p| p.r2.is_empty()));
        }
        let ratio = |r: u32, c: usize| r2.get(r as usize * classes + c).copied().unwrap_or(1.0);
        let alpha = svm.gather(p.docs.len(), |p| &p.alpha);
        assert!(alpha[n * classes..].iter().all(|&a| a == 0.0));
        let inv_2c = svm.gather(1, |p| &p.inv_2c);
        let (table, bias) = svm.weights();
        let mut pooled = Vec::new();
        let mut want = vec![0f32; table.len()];
        let mut length = vec![0f32; classes];
        for d in 0..n {
            let doc = &p.docs[d];
            pool(&table, classes, doc, &mut pooled);
            for c in 0..classes {
                let y = if p.targets[d] as usize == c {
                    1.0
                } else {
                    -1.0
                };
                let a = alpha[d * classes + c];
                let g = y * (pooled[c] + bias[c]) - 1.0 + a * inv_2c[c];
                if a > 0.0 {
                    assert!(g.abs() < 1e-3, "{loss:?} doc {d} label {c}: gradient {g}");
                } else {
                    assert!(g > -1e-3, "{loss:?} doc {d} label {c}: gradient {g}");
                }
                for (&r, &w) in doc.rows.iter().zip(&doc.weights) {
                    want[r as usize * classes + c] += a * y * w * ratio(r, c);
                    length[c] += w * w * ratio(r, c) / n as f32;
                }
            }
        }
        for (x, w) in table.iter().zip(&want) {
            assert!((x - w).abs() < 1e-4, "{loss:?}: {x} vs {w}");
        }
        // 1 / (2 C) with C = svm_c (1) over the mean squared length.
        for (got, l) in inv_2c.iter().zip(&length) {
            assert!(
                (got - 0.5 * l).abs() < 1e-4,
                "{loss:?}: {got} vs {}",
                0.5 * l
            );
        }
        // Split in two or three parts, the SVMs train the same weights.
        for parts in [2, 3] {
            assert_eq!(
                train(parts).0.svm.as_ref().unwrap().weights(),
                (table.clone(), bias.clone())
            );
        }
        // The saved model scores as the SVMs do, scaled, its rows gathered from every part.
        let bow = model_of(&mut t);
        assert_eq!(
            bow.head_b,
            bias.iter().map(|b| b * SVM_SCORE_SCALE).collect::<Vec<_>>()
        );
        let scaled: Vec<f32> = table.iter().map(|w| w * SVM_SCORE_SCALE).collect();
        assert_eq!(bow.table().as_ref(), scaled.as_slice());
        for parts in [2, 3] {
            let bow = model_of(&mut train(parts).0);
            assert_eq!(bow.table().as_ref(), scaled.as_slice(), "{parts} parts");
        }
    }
}

#[test]
fn svm_losses_need_a_linear_model() {
    let config = BowConfig {
        loss: Loss::NbSvm,
        dim: 8,
        ..BowConfig::default()
    };
    let err = config.clone().check().unwrap_err();
    assert!(
        matches!(&err, crate::Error::Config { field: "loss", reason } if reason.contains("nb-svm") && reason.contains("dim")),
        "{err}"
    );
    let folded = BowConfig {
        folded: true,
        ..config
    };
    assert!(folded.check().is_ok());
}

/// `dim` 0 trains a linear model: one column per label, and the identity head never moves.
#[test]
fn dim_zero_trains_a_linear_model_with_a_fixed_identity_head() {
    let mut t = tiny_trainer(BowConfig {
        dim: 0,
        min_count: 1,
        min_count_words: 1,
        ..BowConfig::default()
    });
    let classes = t.bow.num_classes();
    assert_eq!(t.bow.config.dim, classes);
    assert!(t.bow.config.folded);
    let batch: Vec<usize> = (0..6).collect();
    let first = t.step(&batch, 0.1).unwrap();
    let mut last = first;
    for _ in 0..30 {
        last = t.step(&batch, 0.1).unwrap();
    }
    assert!(last < first * 0.5, "{first} -> {last}");
    let model = model_of(&mut t);
    for (i, &w) in model.head_w.iter().enumerate() {
        let identity = if i / classes == i % classes { 1.0 } else { 0.0 };
        assert_eq!(w, identity);
    }
    assert!(model.head_b.iter().all(|&b| b == 0.0));
}
