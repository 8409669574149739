//! The transformer architecture end to end: library training, bundle round trip, long
//! documents, and the command line. Tiny models, so that the suite stays fast.

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use khabar::{ArchConfig, Classifier, Error, TrainConfig, Trainer, TransformerConfig};

mod common;

use common::{corpus, data, khabar, stderr, test_texts};

fn tiny() -> TransformerConfig {
    TransformerConfig {
        layers: 1,
        d_model: 32,
        heads: 2,
        ff: 64,
        max_len: 32,
        stride: 16,
        ..TransformerConfig::default()
    }
}

/// The CLI options of [`tiny`].
const TINY: [&str; 10] = [
    "--layers",
    "1",
    "--d-model",
    "32",
    "--heads",
    "2",
    "--ff",
    "64",
    "--max-len",
    "32",
];

fn classifier() -> &'static Classifier {
    static CLF: OnceLock<Classifier> = OnceLock::new();
    CLF.get_or_init(|| {
        let config = TrainConfig {
            epochs: 12,
            learning_rate: 3e-3,
            ..TrainConfig::for_arch(ArchConfig::Transformer(tiny()))
        };
        Trainer::new(config).train(&corpus("train.jsonl")).unwrap()
    })
}

#[test]
fn the_transformer_learns_the_topics() {
    let clf = classifier();
    assert_eq!(clf.config().architecture.name(), "transformer");
    let test = corpus("test.jsonl");
    let eval = clf.evaluate(&test).unwrap();
    // Six labels: chance is about 0.17.
    assert!(eval.accuracy() > 0.5, "accuracy {}", eval.accuracy());
}

#[test]
fn save_and_load_give_identical_predictions() {
    let clf = classifier();
    let dir = tempfile::tempdir().unwrap();
    clf.save(dir.path().join("m")).unwrap();
    let loaded = Classifier::load(dir.path().join("m")).unwrap();
    assert_eq!(loaded.config().architecture, clf.config().architecture);
    assert_eq!(loaded.labels(), clf.labels());
    for text in test_texts() {
        assert_eq!(
            loaded.probabilities(&text).unwrap(),
            clf.probabilities(&text).unwrap()
        );
    }
    // The hyperparameters are in config.json: loading needs nothing else.
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("m/config.json")).unwrap()).unwrap();
    let arch = &config["architecture"];
    assert_eq!(arch["kind"], "transformer");
    assert_eq!(arch["layers"], 1);
    assert_eq!(arch["d_model"], 32);
    assert_eq!(arch["max_len"], 32);
}

#[test]
fn batch_and_threads_agree_with_single_predictions() {
    let clf = classifier();
    let texts = test_texts();
    let batch = clf.predict_batch(&texts).unwrap();
    let from_threads: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = texts
            .chunks(texts.len().div_ceil(4))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|t| clf.predict(t).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(batch, from_threads);
}

#[test]
fn any_text_is_classified_including_long_and_empty_ones() {
    let clf = classifier();
    let long = test_texts().join(" ").repeat(20);
    for text in ["", "   ", "।", long.as_str()] {
        let p = clf.predict(text).unwrap();
        let sum: f32 = p.top.iter().map(|l| l.score).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{text:.40}: {sum}");
        assert!(p.top.iter().all(|l| l.score.is_finite()));
    }
}

#[test]
fn bad_hyperparameters_are_refused() {
    for (config, field, needle) in [
        (
            TransformerConfig { heads: 3, ..tiny() },
            "d_model",
            "multiple of heads",
        ),
        (
            TransformerConfig {
                stride: 33,
                ..tiny()
            },
            "stride",
            "between 1 and 32",
        ),
        (
            TransformerConfig {
                dropout: 1.0,
                ..tiny()
            },
            "dropout",
            "below 1",
        ),
    ] {
        let err = Trainer::new(TrainConfig::for_arch(ArchConfig::Transformer(config)))
            .train(&corpus("train.jsonl"))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { field: f, reason } if *f == field && reason.contains(needle)),
            "{err}"
        );
    }
    // The command line names the options.
    let dir = tempfile::tempdir().unwrap();
    let o = khabar()
        .args([
            "train",
            "--arch",
            "transformer",
            "--d-model",
            "32",
            "--heads",
            "3",
        ])
        .arg("--data")
        .arg(data("train.jsonl"))
        .arg("--out")
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--d-model (32) must be a multiple of --heads (3)"),
        "{}",
        stderr(&o)
    );
}

fn train_cli(out: &Path, extra: &[&str]) -> Output {
    khabar()
        .args(["train", "--arch", "transformer", "--epochs", "2", "--data"])
        .arg(data("train.jsonl"))
        .arg("--out")
        .arg(out)
        .args(TINY)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn cli_trains_describes_and_uses_a_transformer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let o = train_cli(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("training transformer"), "{err}");
    // 300 examples: the transformer says bow is the better choice.
    assert!(err.contains("is few for a transformer"), "{err}");
    assert!(err.contains("epoch 2/2"), "{err}");

    let o = khabar()
        .args(["info", "--model"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let info = String::from_utf8_lossy(&o.stdout);
    assert!(
        info.contains(
            "transformer trained from scratch: 1 layer of width 32, 2 heads, reading 32 tokens"
        ),
        "{info}"
    );

    let o = khabar()
        .args(["predict", "--output", "jsonl", "--model"])
        .arg(&out)
        .args(["The striker scored twice", "संसद में बजट पारित हुआ"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);

    let o = khabar()
        .args(["eval", "--json", "--model"])
        .arg(&out)
        .arg("--data")
        .arg(data("test.jsonl"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["n"], 96);
}

#[test]
fn cli_transformer_is_repeatable_across_seeds_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let weights = |name: &str, threads: &str| {
        let out = dir.path().join(name);
        let o = train_cli(&out, &["--quiet", "--seed", "4", "--threads", threads]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(out.join("model.safetensors")).unwrap()
    };
    let one = weights("a", "1");
    assert!(one == weights("b", "2"), "1 and 2 threads differ");
}

#[test]
fn cli_refuses_bad_transformer_options_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, needle) in [
        (
            ["--d-model", "30", "--heads", "4"],
            "--d-model (30) must be a multiple of --heads (4)",
        ),
        (
            ["--max-len", "16", "--stride", "17"],
            "--stride must be between 1 and 16",
        ),
    ] {
        let o = khabar()
            .args(["train", "--arch", "transformer", "--data"])
            .arg(data("train.jsonl"))
            .arg("--out")
            .arg(dir.path().join("m"))
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
