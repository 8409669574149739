//! Calibrated probabilities of the default bow model: a monotone map of the top probability,
//! fitted on cross-validated scores at training, that changes no answer and brings the stated
//! probabilities near the accuracy they come with.

mod common;

use common::{corpus, khabar, stderr, stdout, test_texts};
use khabar::{Classifier, TrainConfig, Trainer};

/// The default model trained without its calibration.
fn uncalibrated() -> Classifier {
    Trainer::new(TrainConfig {
        calibration_folds: 0,
        ..TrainConfig::default()
    })
    .train(&corpus("train.jsonl"))
    .unwrap()
}

#[test]
fn calibration_keeps_every_answer_and_lowers_the_calibration_error() {
    let calibrated = common::classifier();
    let plain = uncalibrated();
    let map = calibrated
        .config()
        .calibrator
        .as_ref()
        .expect("the default bow model is calibrated");
    assert_eq!(map.folds, 2);
    assert_eq!(map.documents, corpus("train.jsonl").len());
    assert!(calibrated.config().unsure_below.is_some());
    assert!(plain.config().calibrator.is_none());
    assert!(plain.config().unsure_below.is_none());

    // The model trained on all the data is the same: the same answers, in the same order of
    // labels, and the top probability is the map's value of the uncalibrated one.
    let texts = test_texts();
    let p = calibrated.probabilities_batch(&texts).unwrap();
    let q = plain.probabilities_batch(&texts).unwrap();
    let classes = calibrated.labels().len();
    let mut moved = 0;
    for (p, q) in p.iter().zip(&q) {
        let order = |v: &[f32]| {
            let mut o: Vec<usize> = (0..v.len()).collect();
            o.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
            o
        };
        assert_eq!(order(p), order(q), "{p:?} against {q:?}");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{p:?}");
        let top = order(q)[0];
        let want = map.map(q[top]).max(1.0 / classes as f32);
        assert!((p[top] - want).abs() < 1e-3, "{} against {want}", p[top]);
        moved += usize::from((p[top] - q[top]).abs() > 0.01);
    }
    assert!(moved > texts.len() / 2, "{moved} of {}", texts.len());

    // The test split's expected calibration error: 0.163 uncalibrated, 0.041 calibrated.
    let test = corpus("test.jsonl");
    let ece = |c: &Classifier| c.evaluate(&test).unwrap().calibration(10).unwrap().ece;
    let (before, after) = (ece(&plain), ece(calibrated));
    assert!(after < before / 2.0, "{before} -> {after}");
}

#[test]
fn the_calibrator_is_saved_loaded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let clf = common::classifier();
    clf.save(&model).unwrap();
    let back = Classifier::load(&model).unwrap();
    assert_eq!(back.config().calibrator, clf.config().calibrator);
    let text = "the striker scored twice in the final";
    assert_eq!(
        back.probabilities(text).unwrap(),
        clf.probabilities(text).unwrap()
    );

    // A map whose knots run backwards is refused on load, naming the field.
    let config = model.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let knots = v["calibrator"]["knots"].as_array_mut().unwrap();
    assert!(knots.len() >= 2, "{knots:?}");
    knots.reverse();
    std::fs::write(&config, serde_json::to_string(&v).unwrap()).unwrap();
    let err = Classifier::load(&model)
        .expect_err("a broken map")
        .to_string();
    assert!(
        err.contains("config.json") && err.contains("calibrator") && err.contains("order"),
        "{err}"
    );
}

#[test]
fn the_command_line_trains_calibrated_models_and_refuses_what_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::data("train.jsonl");
    let train = |name: &str, extra: &[&str]| {
        khabar()
            .args(["train", "-q", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join(name))
            .args(extra)
            .output()
            .unwrap()
    };
    // The default: calibrated, and info says so; --unsure uses the threshold it brings.
    let out = train("calibrated", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info = khabar()
        .args(["info", "--model"])
        .arg(dir.path().join("calibrated"))
        .output()
        .unwrap();
    assert!(
        stdout(&info).contains("probabilities: calibrated")
            && stdout(&info).contains("2-fold cross-validated scores of 300 training examples")
            && stdout(&info).contains("unsure below:"),
        "{}",
        stdout(&info)
    );
    let out = khabar()
        .args(["predict", "--unsure", "--model"])
        .arg(dir.path().join("calibrated"))
        .arg("xq zv")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // --calibration-folds 0: not calibrated, and info says so.
    let out = train("plain", &["--calibration-folds", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info = khabar()
        .args(["info", "--model"])
        .arg(dir.path().join("plain"))
        .output()
        .unwrap();
    assert!(
        stdout(&info).contains("probabilities: not calibrated"),
        "{}",
        stdout(&info)
    );

    // One fold, and the architectures that do not use it: refused before any training.
    for (extra, says) in [
        (
            &["--calibration-folds", "1"][..],
            "--calibration-folds must be 0 (no calibration) or at least 2",
        ),
        (
            &["--calibration-folds", "3", "--arch", "transformer"][..],
            "--calibration-folds applies to bow",
        ),
        (
            &["--calibration-folds", "3", "--arch", "hybrid"][..],
            "cross-validated log-loss",
        ),
    ] {
        let out = train("refused", extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
        assert!(!dir.path().join("refused").exists());
    }
}
