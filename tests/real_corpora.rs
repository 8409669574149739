//! The readers on real corpora as published, warts included: the original files under
//! `../shared/data/*/raw` (licensed, so not part of this repository). Each test says so and
//! passes when its corpus is absent.

use std::path::{Path, PathBuf};
use std::process::Output;

use khabar::{BadRow, Corpus, ReadOptions};

mod common;

use common::stderr;

/// A file or folder of ../shared/data, or `None` (with a message) when it is not there.
fn shared(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is absent (the licensed corpora of ../shared/data are not part of \
             this repository)",
            path.display()
        );
        None
    }
}

fn khabar(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut cmd = common::khabar();
    cmd.args(args);
    for (flag, path) in paths {
        cmd.arg(flag).arg(path);
    }
    cmd.output().unwrap()
}

fn labels(bundle: &Path) -> serde_json::Value {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    config["labels"].clone()
}

#[test]
fn ag_news_official_csv_trains_by_column_number() {
    let Some(csv) = shared("ag_news/raw/test.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ag");

    // No header, so the default field names cannot work; the message says what to pass.
    let o = khabar(&["train", "--quiet"], &[("--data", &csv), ("--out", &out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("test.csv:1: no header row naming 'text' and 'label'"));
    assert!(stderr(&o).contains("--text-field N --label-field M"));

    // Classes 1-4 are raw/classes.txt's World, Sports, Business, Sci/Tech: with that label map
    // the model can be measured on the JSONL train split, whose labels are names.
    let map = dir.path().join("map.json");
    std::fs::write(
        &map,
        r#"{"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}"#,
    )
    .unwrap();
    let fields = [
        "--format",
        "csv",
        "--text-field",
        "2",
        "--text-field",
        "3",
        "--label-field",
        "1",
    ];
    let o = khabar(
        &[&["train", "--quiet", "--epochs", "2"], &fields[..]].concat(),
        &[("--data", &csv), ("--label-map", &map), ("--out", &out)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        labels(&out),
        serde_json::json!(["Business", "Sci/Tech", "Sports", "World"])
    );
    let Some(train) = shared("ag_news/train.jsonl") else {
        return;
    };
    let o = khabar(
        &["eval", "--json"],
        &[("--model", &out), ("--data", &train)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["n"], 12000);
    assert!(v["accuracy"].as_f64().unwrap() > 0.85, "{v}");

    let c = Corpus::read(
        &csv,
        &ReadOptions {
            text_fields: vec!["2".into(), "3".into()],
            label_field: "1".into(),
            ..ReadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(c.len(), 7600);
    assert_eq!(
        c.label_counts().values().copied().collect::<Vec<_>>(),
        [1900; 4]
    );
}

#[test]
fn l3cube_en_csv_with_empty_labels_fails_by_default_and_trains_with_skip_bad() {
    let Some(csv) = shared("l3cube_en/raw/train.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("l3");
    let fields = ["--text-field", "text", "--label-field", "labels"];
    let o = khabar(
        &[&["train", "--quiet"], &fields[..]].concat(),
        &[("--data", &csv), ("--out", &out)],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("train.csv:118: field 'text': empty text"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let o = khabar(
        &[
            &["train", "--quiet", "--epochs", "1", "--skip-bad"],
            &fields[..],
        ]
        .concat(),
        &[("--data", &csv), ("--out", &out)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: skipped 272 bad rows: 252 empty text"),
        "{err}"
    );
    assert!(err.contains("20 empty label (first at"), "{err}");
    assert!(err.contains("train.csv:2489: field 'labels')"), "{err}");
    assert_eq!(labels(&out).as_array().unwrap().len(), 12);

    let c = Corpus::read(
        &csv,
        &ReadOptions {
            text_fields: vec!["text".into()],
            label_field: "labels".into(),
            skip_bad: true,
            ..ReadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(c.report.skipped[&BadRow::EmptyLabel].count, 20);
    assert_eq!(c.report.skipped[&BadRow::EmptyText].count, 252);
    assert_eq!(c.len(), 36_877 - 272);
    // The published corpus repeats headlines under different labels; the report says so.
    assert!(
        c.report.conflicting_texts > 1000,
        "{}",
        c.report.conflicting_texts
    );
}

#[test]
fn l3cube_en_jsonl_with_an_empty_text_reads_with_skip_bad() {
    let Some(jsonl) = shared("l3cube_en/train.jsonl") else {
        return;
    };
    let err = Corpus::read(&jsonl, &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train.jsonl:117: field 'text': empty text"),
        "{err}"
    );
    let skip = ReadOptions {
        skip_bad: true,
        ..ReadOptions::default()
    };
    let c = Corpus::read(&jsonl, &skip).unwrap();
    assert_eq!(c.len(), 36_857 - 252);
    assert_eq!(c.report.skipped[&BadRow::EmptyText].first.line, 117);
}

#[test]
fn bbc_folders_with_a_latin1_file_fail_strict_and_train_lossy() {
    let Some(bbc) = shared("bbc_en/raw") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bbc");
    let o = khabar(&["train", "--quiet"], &[("--data", &bbc), ("--out", &out)]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("sport/199.txt:5: invalid UTF-8 at byte 257"),
        "{err}"
    );

    let o = khabar(
        &["train", "--quiet", "--epochs", "1", "--lossy"],
        &[("--data", &bbc), ("--out", &out)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: replaced invalid UTF-8 with U+FFFD in 1 document(s)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        labels(&out),
        serde_json::json!(["business", "entertainment", "politics", "sport", "tech"])
    );
    let lossy = ReadOptions {
        lossy: true,
        ..ReadOptions::default()
    };
    let c = Corpus::read(&bbc, &lossy).unwrap();
    assert_eq!(c.len(), 2225);
    assert!(c.examples.iter().any(|e| e.text.contains('\u{fffd}')));
    // README.TXT beside the class folders is not a document.
    assert!(c.report.notes.is_empty(), "{:?}", c.report.notes);
}
