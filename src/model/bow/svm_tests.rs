//! Unit tests of the SVMs' class weights.

use std::sync::Arc;

use super::config::{BowConfig, ClassWeight, Loss};
use super::packed::pool;
use super::svm::SvmTrainer;
use super::tests::tiny_prepared;
use crate::model::Fit;

/// Class weights: weights of 1 train exactly the unweighted SVMs; other weights divide the
/// `1 / (2 C)` of a label's own documents by its weight, and the dual's optimality conditions
/// hold with each document's own C.
#[test]
fn class_weights_give_a_labels_own_documents_more_c() {
    let train = |weights: Vec<f32>| {
        let (mut p, _) = tiny_prepared(
            BowConfig {
                loss: Loss::Svm,
                svm_c: 1.0,
                min_count: 1,
                min_count_words: 1,
                ..BowConfig::default()
            },
            &[0, 1, 2, 0, 1, 2],
            3,
        );
        Arc::get_mut(&mut p).unwrap().class_weights = weights;
        let mut t = SvmTrainer::new(Arc::clone(&p));
        t.begin_in_parts(6, 2);
        let batch: Vec<usize> = (0..6).collect();
        for _ in 0..300 {
            t.step(&batch, 0.0).unwrap();
        }
        (t, p)
    };
    let plain = train(Vec::new()).0;
    let ones = train(vec![1.0; 3]).0;
    let weights = |t: &SvmTrainer| t.svm.as_ref().unwrap().weights();
    assert_eq!(weights(&plain), weights(&ones));

    let (t, p) = train(vec![4.0, 1.0, 0.5]);
    let svm = t.svm.as_ref().unwrap();
    assert_ne!(svm.weights(), weights(&plain));
    let classes = 3;
    let inv = svm.gather(1, |p| &p.inv_2c);
    let own = svm.gather(1, |p| &p.inv_2c_own);
    for (c, w) in [4.0f32, 1.0, 0.5].iter().enumerate() {
        assert!((own[c] - inv[c] / w).abs() <= 1e-6 * inv[c], "label {c}");
    }
    let alpha = svm.gather(p.docs.len(), |p| &p.alpha);
    let (table, bias) = svm.weights();
    let mut pooled = Vec::new();
    for d in 0..6 {
        pool(&table, classes, &p.docs[d], &mut pooled);
        for c in 0..classes {
            let mine = p.targets[d] as usize == c;
            let y = if mine { 1.0 } else { -1.0 };
            let a = alpha[d * classes + c];
            let inv_2c = if mine { own[c] } else { inv[c] };
            let g = y * (pooled[c] + bias[c]) - 1.0 + a * inv_2c;
            if a > 0.0 {
                assert!(g.abs() < 1e-3, "doc {d} label {c}: gradient {g}");
            } else {
                assert!(g > -1e-3, "doc {d} label {c}: gradient {g}");
            }
        }
    }
}

/// `balanced` weighs a label's documents `n / (labels * count)`; given weights name labels the
/// data has, and must be positive; the softmax loss takes none.
#[test]
fn class_weights_resolve_by_label() {
    let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let w = ClassWeight::Balanced.resolve(&labels, &[6, 3, 1]).unwrap();
    assert_eq!(w, [10.0 / 18.0, 10.0 / 9.0, 10.0 / 3.0]);
    assert!(ClassWeight::None
        .resolve(&labels, &[6, 3, 1])
        .unwrap()
        .is_empty());
    let given = |pairs: &[(&str, f32)]| {
        ClassWeight::Given(pairs.iter().map(|&(l, w)| (l.to_string(), w)).collect())
    };
    assert_eq!(
        given(&[("c", 4.0)]).resolve(&labels, &[6, 3, 1]).unwrap(),
        [1.0, 1.0, 4.0]
    );
    let err = given(&[("d", 2.0)])
        .resolve(&labels, &[6, 3, 1])
        .unwrap_err();
    assert!(err.to_string().contains("'d'"), "{err}");
    let bad = BowConfig {
        class_weight: given(&[("a", 0.0)]),
        ..BowConfig::default()
    };
    assert!(matches!(
        bad.check(),
        Err(crate::Error::Config {
            field: "class_weight",
            ..
        })
    ));
    let softmax = BowConfig {
        class_weight: ClassWeight::Balanced,
        loss: Loss::Softmax,
        ..BowConfig::default()
    };
    assert!(softmax.check().is_err());
}
