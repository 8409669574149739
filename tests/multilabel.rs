//! Multi-label models: reading several labels per article in every format, training one SVM
//! per label with thresholds of their own, and what predict and eval make of them.

mod common;

use std::path::Path;

use common::{corpus, khabar, stderr, stdout, write};
use khabar::{Classifier, Corpus, Example, ReadOptions, TrainConfig, Trainer};

fn multi() -> ReadOptions {
    ReadOptions {
        multi_label: true,
        ..ReadOptions::default()
    }
}

fn labels(e: &Example) -> Vec<&str> {
    e.labels().collect()
}

#[test]
fn every_format_reads_several_labels_per_article() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ft = write(
        d,
        "a.ft",
        "__label__grain __label__wheat Wheat prices rose\n__label__earn Profit up\n",
    );
    let c = Corpus::read(&ft, &multi()).unwrap();
    assert_eq!(labels(&c.examples[0]), ["grain", "wheat"]);
    assert_eq!(labels(&c.examples[1]), ["earn"]);
    // A text given twice with the same labels in another order does not conflict; with other
    // labels it does, named by all of them.
    let twice = write(
        d,
        "b.ft",
        "__label__grain __label__wheat Wheat prices rose
         __label__wheat __label__grain Wheat prices rose
         __label__grain Wheat prices rose
",
    );
    let c = Corpus::read(&twice, &multi()).unwrap();
    assert_eq!(c.report.conflicting_texts, 1);
    let names: Vec<&str> = c.report.conflicts[0]
        .labels
        .iter()
        .map(|(l, _)| l.as_str())
        .collect();
    assert_eq!(names, ["grain+wheat", "grain"]);
    // Without multi_label: the first label, and the report counts the line.
    let c = Corpus::read(&ft, &ReadOptions::default()).unwrap();
    assert_eq!(labels(&c.examples[0]), ["grain"]);
    assert_eq!(c.report.multi_label_lines, 1);

    let jsonl = write(
        d,
        "a.jsonl",
        "{\"text\": \"Wheat prices rose\", \"labels\": [\"grain\", \"wheat\", \"grain\"]}\n\
         {\"text\": \"Profit up\", \"labels\": \"earn\"}\n",
    );
    let options = ReadOptions {
        label_field: "labels".into(),
        ..multi()
    };
    let c = Corpus::read(&jsonl, &options).unwrap();
    // A label given twice counts once.
    assert_eq!(labels(&c.examples[0]), ["grain", "wheat"]);
    assert_eq!(labels(&c.examples[1]), ["earn"]);
    assert_eq!(c.label_counts()["grain"], 1);
    // An array without multi_label is a bad row that says what to do; an empty array has no
    // label.
    let err = Corpus::read(
        &jsonl,
        &ReadOptions {
            label_field: "labels".into(),
            ..ReadOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("a.jsonl:1") && err.contains("'labels'") && err.contains("--multi-label"),
        "{err}"
    );
    let empty = write(d, "e.jsonl", "{\"text\": \"x y\", \"labels\": []}\n");
    let err = Corpus::read(&empty, &options).unwrap_err().to_string();
    assert!(
        err.contains("e.jsonl:1") && err.contains("empty label"),
        "{err}"
    );

    let csv = write(
        d,
        "a.csv",
        "text,topics\nWheat prices rose,grain; wheat ;\nProfit up,earn\n",
    );
    let options = ReadOptions {
        label_field: "topics".into(),
        label_separator: Some(";".into()),
        ..multi()
    };
    let c = Corpus::read(&csv, &options).unwrap();
    assert_eq!(labels(&c.examples[0]), ["grain", "wheat"]);
    assert_eq!(labels(&c.examples[1]), ["earn"]);
    // A separator is for multi-label data only.
    let err = Corpus::read(
        &csv,
        &ReadOptions {
            multi_label: false,
            ..options.clone()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--multi-label"), "{err}");

    // A label map maps each label; an article whose labels it all drops is dropped.
    let map: khabar::LabelMap =
        serde_json::from_str(r#"{"wheat": null, "earn": null, "grain": "cereals"}"#).unwrap();
    let c = Corpus::read(
        &csv,
        &ReadOptions {
            label_map: Some(map),
            ..options
        },
    )
    .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(labels(&c.examples[0]), ["cereals"]);
    assert_eq!(c.report.dropped_by_label_map, 1);
}

/// Articles of data/news, each alone (its label) and joined in pairs of two topics (both).
fn paired(file: &str) -> Corpus {
    let c = corpus(file);
    let mut examples: Vec<Example> = c.examples.clone();
    for (a, b) in c.examples.iter().zip(c.examples.iter().skip(7)) {
        if a.label != b.label {
            examples.push(Example::with_labels(
                format!("{} {}", a.text, b.text),
                vec![a.label.clone(), b.label.clone()],
            ));
        }
    }
    Corpus::from_examples(examples)
}

fn trained() -> Classifier {
    Trainer::new(TrainConfig {
        multi_label: true,
        ..TrainConfig::default()
    })
    .train(&paired("train.jsonl"))
    .unwrap()
}

#[test]
fn a_multi_label_model_answers_each_topic_of_an_article() {
    let clf = trained();
    assert!(clf.is_multi_label());
    let m = clf.config().multi_label.as_ref().unwrap();
    assert_eq!(m.folds, 2);
    assert_eq!(m.thresholds.len(), 6);
    assert!(m.thresholds.iter().all(|&t| t > 0.0 && t < 1.0));
    // Multi-label models are not calibrated as single-label ones are.
    assert!(clf.config().calibrator.is_none());

    let test = paired("test.jsonl");
    let eval = clf.evaluate_multi(&test).unwrap();
    assert_eq!(eval.n(), test.len());
    let micro = eval.micro();
    assert!(micro.f1 > 0.75, "micro-F1 {}", micro.f1);
    // Articles of two topics: most of their labels are found, often both.
    let pairs: Vec<usize> = (0..test.len())
        .filter(|&i| !test.examples[i].more_labels.is_empty())
        .collect();
    assert!(pairs.len() > 40);
    let both = pairs
        .iter()
        .filter(|&&i| {
            let a = &eval.answered[i];
            eval.gold[i].iter().all(|g| a.contains(g))
        })
        .count();
    let found: usize = pairs
        .iter()
        .map(|&i| {
            eval.gold[i]
                .iter()
                .filter(|g| eval.answered[i].contains(g))
                .count()
        })
        .sum();
    // (Measured: both for 33 of 71, 99 of their 142 labels found; one label per article
    // would find at most half, and both for none.)
    assert!(3 * both > pairs.len(), "{both} of {}", pairs.len());
    assert!(
        10 * found > 6 * 2 * pairs.len(),
        "{found} of {}",
        2 * pairs.len()
    );

    // The scores are each label's own: they need not sum to 1; the answer is every label over
    // its threshold.
    let text = &test.examples[pairs[0]].text;
    let p = clf.predict(text).unwrap();
    let chosen = p.labels.as_ref().expect("a multi-label answer");
    for l in chosen {
        let i = clf.labels().iter().position(|x| *x == l.label).unwrap();
        assert!(l.score >= m.thresholds[i]);
    }
    // A single-label model has no such answer, and is refused by evaluate_multi.
    let single = common::classifier();
    assert!(single.predict(text).unwrap().labels.is_none());
    assert!(single.evaluate_multi(&test).is_err());

    // Saved and loaded, the same thresholds and answers.
    let dir = tempfile::tempdir().unwrap();
    clf.save(dir.path().join("m")).unwrap();
    let back = Classifier::load(dir.path().join("m")).unwrap();
    assert_eq!(back.config().multi_label, clf.config().multi_label);
    assert_eq!(back.predict(text).unwrap().labels, p.labels);

    // Single-label training refuses data of several labels, and says what to do.
    let err = Trainer::new(TrainConfig::default())
        .train(&paired("train.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--multi-label"), "{err}");
}

/// The paired corpus as JSON lines with a "labels" array.
fn write_paired(dir: &Path, name: &str, file: &str) -> std::path::PathBuf {
    let mut out = String::new();
    for e in paired(file).examples {
        let v = serde_json::json!({"text": e.text, "labels": e.labels().collect::<Vec<_>>()});
        out.push_str(&v.to_string());
        out.push('\n');
    }
    write(dir, name, out)
}

#[test]
fn the_command_line_trains_predicts_and_evaluates_multi_label_models() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = write_paired(d, "train.jsonl", "train.jsonl");
    let test = write_paired(d, "test.jsonl", "test.jsonl");
    let model = d.join("model");
    let out = khabar()
        .args([
            "train",
            "-q",
            "--multi-label",
            "--label-field",
            "labels",
            "--data",
        ])
        .arg(&train)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let out = khabar()
        .args(["eval", "--json", "--label-field", "labels", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&test)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["multi_label"], true);
    for key in ["micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"] {
        let x = v[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&x), "{key} {x}");
    }
    assert!(v["micro_f1"].as_f64().unwrap() > 0.75, "{v}");
    assert!(v["precision_at"]["1"].as_f64().unwrap() > 0.8, "{v}");
    assert_eq!(v["per_label"].as_object().unwrap().len(), 6);

    // Text output: every label over its threshold, with its score; jsonl: "labels" too.
    let sports = "The striker scored twice as United beat City in the cup final";
    let out = khabar()
        .args(["predict", "--model"])
        .arg(&model)
        .arg(sports)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("sports\t"), "{}", stdout(&out));
    let out = khabar()
        .args(["predict", "--output", "jsonl", "--model"])
        .arg(&model)
        .args([sports, "zzz qqq"])
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["labels"][0]["label"], "sports");
    assert_eq!(lines[0]["below_threshold"], false);
    // Nothing over its threshold: no labels, the best one flagged (in text, in parentheses).
    if lines[1]["below_threshold"] == true {
        assert!(lines[1]["labels"].as_array().unwrap().is_empty());
        let out = khabar()
            .args(["predict", "--model"])
            .arg(&model)
            .arg("zzz qqq")
            .output()
            .unwrap();
        let best = lines[1]["label"].as_str().unwrap();
        assert!(
            stdout(&out).starts_with(&format!("({best})\t")),
            "{}",
            stdout(&out)
        );
    }

    // What does not apply is refused (exit 2), with the reason.
    let refused = |args: &[&str], says: &str| {
        let out = khabar().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    };
    let m = model.to_str().unwrap();
    let t = train.to_str().unwrap();
    let o = d.join("other");
    let o = o.to_str().unwrap();
    refused(
        &["predict", "--threshold", "0.5", "--model", m, "x"],
        "single-label",
    );
    refused(
        &[
            "eval",
            "--unsure",
            "--label-field",
            "labels",
            "--model",
            m,
            "--data",
            t,
        ],
        "single-label",
    );
    refused(
        &[
            "train",
            "--multi-label",
            "--arch",
            "transformer",
            "--data",
            t,
            "--out",
            o,
        ],
        "--multi-label applies to bow",
    );
    refused(
        &[
            "train",
            "--multi-label",
            "--valid",
            t,
            "--data",
            t,
            "--out",
            o,
        ],
        "--valid does not apply to --multi-label",
    );
    refused(
        &["train", "--label-separator", ";", "--data", t, "--out", o],
        "--label-separator",
    );
    refused(
        &["train", "--label-field", "labels", "--data", t, "--out", o],
        "--multi-label",
    );
}
