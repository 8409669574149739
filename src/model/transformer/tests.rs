use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::model::{encode_into, window_starts};
use super::*;
use crate::text::{Tokenizer, TokenizerOptions};

const TEXTS: [&str; 6] = [
    "the striker scored a late goal in the final",
    "the keeper saved a penalty kick",
    "shares fell as markets slid",
    "the bank raised interest rates again today",
    "a late goal won the cup",
    "markets rose as shares rallied",
];

fn tokenizer() -> Tokenizer {
    Tokenizer::train(
        &TEXTS,
        &TokenizerOptions {
            vocab_size: 200,
            min_frequency: 1,
        },
    )
    .unwrap()
}

fn tiny_config() -> TransformerConfig {
    TransformerConfig {
        layers: 2,
        d_model: 8,
        heads: 2,
        ff: 12,
        max_len: 6,
        stride: 3,
        dropout: 0.1,
        ..TransformerConfig::default()
    }
}

fn tiny_trainer(dtype: DType) -> TransformerTrainer {
    TransformerTrainer::with_dtype(
        tiny_config(),
        &tokenizer(),
        &TEXTS,
        vec![0, 0, 1, 1, 0, 1],
        2,
        5,
        dtype,
    )
    .unwrap()
}

/// `restart` gives back the initial weights: training from there repeats itself exactly.
#[test]
fn restart_repeats_training_exactly() {
    let mut t = tiny_trainer(DType::F32);
    let batch: Vec<usize> = (0..6).collect();
    let first: Vec<f32> = (0..3).map(|_| t.step(&batch, 1e-3).unwrap()).collect();
    t.restart().unwrap();
    let second: Vec<f32> = (0..3).map(|_| t.step(&batch, 1e-3).unwrap()).collect();
    assert_eq!(first, second);
    assert!(first[2] != first[0]);
}

#[test]
fn window_starts_cover_the_document() {
    let w = |n, l, s| window_starts(n, l, s).collect::<Vec<_>>();
    assert_eq!(w(0, 128, 64), vec![0]);
    assert_eq!(w(128, 128, 64), vec![0]);
    assert_eq!(w(129, 128, 64), vec![0, 64]);
    assert_eq!(w(300, 128, 64), vec![0, 64, 128, 192]);
    assert_eq!(w(256, 128, 128), vec![0, 128]);
    for n in 1..200 {
        for (l, s) in [(16, 16), (16, 5), (7, 1)] {
            let starts = w(n, l, s);
            assert_eq!(starts[0], 0);
            assert!(starts.last().unwrap() + l >= n, "n {n} l {l} s {s}");
            if starts.len() > 1 {
                // The window before the last does not reach the end.
                assert!(starts[starts.len() - 2] + l < n);
            }
        }
    }
}

/// Every parameter (the embedding rows included) gets a finite, non-zero gradient: no
/// op on the way records no gradient.
#[test]
fn every_parameter_gets_a_finite_nonzero_gradient() {
    let t = tiny_trainer(DType::F32);
    // Documents of different lengths, so that padding and masks are exercised.
    let batch: Vec<usize> = (0..6).collect();
    let g = t.backward(&batch, 1.0, 1).unwrap();
    assert!(g.loss.is_finite() && g.loss > 0.0);
    assert_eq!(g.dense.len(), t.params.len());
    // 2 layers x 12 tensors + positions + final norm + head.
    assert_eq!(t.params.len(), 2 * 12 + 1 + 2 + 2);
    for (p, grad) in t.params.iter().zip(&g.dense) {
        assert!(grad.iter().all(|x| x.is_finite()), "{}", p.name);
        let sum: f32 = grad.iter().map(|x| x.abs()).sum();
        assert!(sum > 0.0, "{} gets no gradient", p.name);
    }
    let d = t.config.d_model;
    assert!(g.rows.len() > 10);
    for (k, r) in g.rows.iter().enumerate() {
        let row = &g.row_grads[k * d..(k + 1) * d];
        assert!(row.iter().all(|x| x.is_finite()));
        assert!(
            row.iter().any(|&x| x != 0.0),
            "embedding row {r} gets no gradient"
        );
    }
}

/// Backprop agrees with central finite differences of the loss, in F64, for a sample of the
/// entries of every parameter and of the embedding rows (dropout on: the masks are seeded).
#[test]
fn gradients_match_finite_differences() {
    let mut t = tiny_trainer(DType::F64);
    let batch: Vec<usize> = (0..6).collect();
    let seed = 9;
    let g = t.backward(&batch, 1.0, seed).unwrap();
    let loss_of = |t: &TransformerTrainer| -> f64 {
        t.loss(&batch, seed).unwrap().0.to_scalar::<f64>().unwrap()
    };
    let close = |numeric: f64, analytic: f64| {
        (numeric - analytic).abs() <= 1e-7 + 1e-4 * numeric.abs().max(analytic.abs())
    };
    let eps = 1e-5;
    let mut checked = 0;
    for pi in 0..t.params.len() {
        let n = t.params[pi].var.elem_count();
        let shape = t.params[pi].var.shape().clone();
        let orig: Vec<f64> = t.params[pi]
            .var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // A few entries of each tensor, spread over it.
        for k in (0..n).step_by((n / 3).max(1)).take(3) {
            let at = |delta: f64| {
                let mut w = orig.clone();
                w[k] += delta;
                let w = Tensor::from_vec(w, shape.clone(), &Device::Cpu).unwrap();
                t.params[pi].var.set(&w).unwrap();
                loss_of(&t)
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            let w = Tensor::from_vec(orig.clone(), shape.clone(), &Device::Cpu).unwrap();
            t.params[pi].var.set(&w).unwrap();
            let analytic = g.dense[pi][k] as f64;
            assert!(
                close(numeric, analytic),
                "{}[{k}]: numeric {numeric}, backprop {analytic}",
                t.params[pi].name
            );
            checked += 1;
        }
    }
    // Embedding rows: the table is f32, so use the perturbation actually stored.
    let d = t.config.d_model;
    for (s, &r) in g.rows.iter().enumerate().step_by(4) {
        for k in [0, d / 2, d - 1] {
            let at = r as usize * d + k;
            let orig = t.table[at];
            t.table[at] = orig + 1e-4;
            let up_delta = t.table[at] as f64 - orig as f64;
            let up = loss_of(&t);
            t.table[at] = orig - 1e-4;
            let down_delta = t.table[at] as f64 - orig as f64;
            let down = loss_of(&t);
            t.table[at] = orig;
            let numeric = (up - down) / (up_delta - down_delta);
            let analytic = g.row_grads[s * d + k] as f64;
            assert!(
                (numeric - analytic).abs() <= 1e-6 + 1e-4 * analytic.abs(),
                "row {r} dim {k}: numeric {numeric}, backprop {analytic}"
            );
            checked += 1;
        }
    }
    assert!(checked > 80, "{checked}");
}

#[test]
fn steps_reduce_the_loss() {
    let mut t = tiny_trainer(DType::F32);
    let batch: Vec<usize> = (0..6).collect();
    let first = t.step(&batch, 3e-3).unwrap();
    let mut last = first;
    for _ in 0..60 {
        last = t.step(&batch, 3e-3).unwrap();
    }
    assert!(last < first * 0.5, "{first} -> {last}");
}

/// The logits of a long document are the mean of the logits of its windows, and training
/// batches (padded, several documents) give the same logits as one document alone.
#[test]
fn long_documents_average_their_windows() {
    let t = tiny_trainer(DType::F32);
    let model = t.snapshot().unwrap();
    let tok = tokenizer();
    let mut s = Scratch::default();
    let text = TEXTS.join(" ");
    encode_into(&tok, &text, &mut s);
    let ids = s.ids.clone();
    let (l, stride) = (model.config.max_len, model.config.stride);
    assert!(ids.len() > 3 * l);
    let mut whole = Vec::new();
    model.logits_of_ids(&ids, &mut whole).unwrap();
    let starts: Vec<usize> = window_starts(ids.len(), l, stride).collect();
    let mut mean = vec![0f32; 2];
    let mut one = Vec::new();
    for &st in &starts {
        model
            .logits_of_ids(&ids[st..(st + l).min(ids.len())], &mut one)
            .unwrap();
        for (m, x) in mean.iter_mut().zip(&one) {
            *m += x / starts.len() as f32;
        }
    }
    for (a, b) in whole.iter().zip(&mean) {
        assert!((a - b).abs() < 1e-5, "{whole:?} vs {mean:?}");
    }
    // The trainer's padded batch forward agrees with the model's per-document forward.
    let batch: Vec<usize> = (0..6).collect();
    let (logits, _, _) = t.forward(&batch, &mut None).unwrap();
    let logits = logits.to_vec2::<f32>().unwrap();
    for (i, row) in logits.iter().enumerate() {
        model.logits_of_ids(&t.docs[i], &mut one).unwrap();
        for (a, b) in row.iter().zip(&one) {
            assert!((a - b).abs() < 1e-5, "doc {i}: {row:?} vs {one:?}");
        }
    }
}

#[test]
fn loading_checks_names_and_shapes() {
    let t = tiny_trainer(DType::F32);
    let model = t.snapshot().unwrap();
    let map: HashMap<String, Tensor> = model.tensors().unwrap().into_iter().collect();
    let c = model.config.clone();
    assert!(Transformer::from_tensors(c.clone().check().unwrap(), t.vocab, 2, &map).is_ok());
    let err = Transformer::from_tensors(c.clone().check().unwrap(), t.vocab, 3, &map).unwrap_err();
    assert!(err.contains("head.weight"), "{err}");
    let mut fewer = c.clone();
    fewer.layers = 1;
    let err = Transformer::from_tensors(fewer.check().unwrap(), t.vocab, 2, &map).unwrap_err();
    assert!(err.contains("unexpected"), "{err}");
    let mut missing = map.clone();
    missing.remove("encoder.layer.1.ffn.up.bias");
    let err =
        Transformer::from_tensors(c.clone().check().unwrap(), t.vocab, 2, &missing).unwrap_err();
    assert!(err.contains("missing"), "{err}");
    let mut bad = c;
    bad.heads = 3;
    // Settings that cannot work are refused before any tensor is read.
    let err = bad.check().unwrap_err();
    assert!(
        matches!(
            err,
            crate::Error::Config {
                field: "d_model",
                ..
            }
        ),
        "{err}"
    );
}
