//! The `khabar` binary, driven as a user would drive it.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

mod common;

use common::{data, khabar, stderr, stdout, write};

/// A model trained once per test run on data/news, for the tests that only read it.
fn trained_model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-tests-model");
        khabar()
            .args(["train", "--quiet", "--data"])
            .arg(data("train.jsonl"))
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        out
    })
}

/// `khabar eval --json` of `model` on `data`.
fn eval_json(model: &Path, data: &Path) -> Output {
    khabar()
        .args(["eval", "--json", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn train_writes_a_bundle_and_reports_progress() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let o = khabar()
        .args(["train", "--data"])
        .arg(data("train.jsonl"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    // The default (nb-svm) trains on everything, to the SVMs' optimum.
    assert!(err.contains("epoch 1/20: loss"), "{err}");
    assert!(err.contains("distance from the optimum"), "{err}");
    assert!(
        err.contains("at the optimum (within 0.1): stopping"),
        "{err}"
    );
    assert!(!err.contains("validation accuracy"), "{err}");
    assert!(err.contains("saved the model"), "{err}");
    assert!(
        err.contains("n-gram rows, those that move the scores most (--keep-ngrams 0.75)"),
        "{err}"
    );
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["format_version"], 1);
    assert_eq!(config["architecture"]["kind"], "bow");
    assert_eq!(config["labels"].as_array().unwrap().len(), 6);
    assert_eq!(config["architecture"]["loss"], "nb-svm");
    let training = &config["training"];
    assert_eq!(training["train_examples"], 300);
    assert_eq!(training["valid_examples"], 0);
    assert_eq!(training["refit"], false);
    // The last epoch is kept, and it came before the limit.
    let epochs = training["epochs"].as_u64().unwrap();
    assert!((1..20).contains(&epochs), "{training}");
    assert_eq!(training["best_epoch"].as_u64().unwrap(), epochs);
    // No temporary directories left beside the bundle.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["m".to_string()]);
}

#[test]
fn predict_text_arguments_with_top_k() {
    let o = khabar()
        .args(["predict", "--top-k", "2", "--model"])
        .arg(trained_model())
        .args([
            "The striker scored twice as the home side won the football league final",
            "भारतीय क्रिकेट टीम ने रोमांचक मुकाबले में जीत दर्ज की, कप्तान ने शतक लगाया।",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "label, score, label, score: {line}");
        assert_eq!(fields[0], "sports", "{line}");
        let (s1, s2): (f32, f32) = (fields[1].parse().unwrap(), fields[3].parse().unwrap());
        assert!(s1 >= s2 && s1 <= 1.0 && s2 >= 0.0, "{line}");
    }
}

#[test]
fn predict_jsonl_output_from_a_jsonl_file_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let test = std::fs::read_to_string(data("test.jsonl")).unwrap();
    let input = write(dir.path(), "in.jsonl", &test);
    let o = khabar()
        .args(["predict", "--output", "jsonl", "--top-k", "3", "--model"])
        .arg(trained_model())
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let preds: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let gold: Vec<serde_json::Value> = test
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(preds.len(), gold.len());
    let mut correct = 0;
    for (p, g) in preds.iter().zip(&gold) {
        let top = p["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[0]["label"], p["label"]);
        assert_eq!(top[0]["score"], p["score"]);
        let scores: Vec<f64> = top.iter().map(|t| t["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]));
        if p["label"] == g["label"] {
            correct += 1;
        }
    }
    // In input order, and the model learned the topics (6 labels: chance is 1/6).
    assert!(
        correct as f64 / gold.len() as f64 > 0.7,
        "{correct}/{}",
        gold.len()
    );
}

#[test]
fn predict_reads_stdin_one_article_per_line() {
    let o = khabar()
        .args(["predict", "--top-k", "1", "--model"])
        .arg(trained_model())
        .write_stdin("The central bank raised interest rates as inflation and share prices climbed\n\nशेयर बाजार में सेंसेक्स 500 अंक चढ़ा, बैंकिंग शेयरों में तेजी रही।\n")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let labels: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(
        labels.len(),
        3,
        "one result per input line, blank lines too: {out}"
    );
    assert_eq!(labels[0], "business");
    assert_eq!(labels[2], "business");
}

#[test]
fn eval_json_and_report() {
    let o = eval_json(trained_model(), &data("test.jsonl"));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = v["n"].as_u64().unwrap();
    assert_eq!(
        n as usize,
        std::fs::read_to_string(data("test.jsonl"))
            .unwrap()
            .lines()
            .count()
    );
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(acc > 0.7 && acc <= 1.0, "{acc}");
    assert!(v["macro_f1"].as_f64().unwrap() > 0.6);
    let support: u64 = v["per_class"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["support"].as_u64().unwrap())
        .sum();
    assert_eq!(support, n);
    let confusion: u64 = v["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()))
        .sum();
    assert_eq!(confusion, n);

    let o = khabar()
        .args(["eval", "--model"])
        .arg(trained_model())
        .arg("--data")
        .arg(data("test.jsonl"))
        .output()
        .unwrap();
    let report = stdout(&o);
    assert!(report.contains("accuracy"), "{report}");
    assert!(report.contains("precision"), "{report}");
    assert!(report.contains("confusion matrix"), "{report}");
    assert!(report.contains("international"), "{report}");
}

#[test]
fn info_describes_the_model() {
    let o = khabar()
        .args(["info", "--model"])
        .arg(trained_model())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // In words: what the model is, its labels with their training counts, how it was trained,
    // what was held out, and its size.
    assert!(
        out.contains("what it is: bag of words (bow): one linear SVM per label"),
        "{out}"
    );
    assert!(
        out.contains("labels (6, with their training examples): business (50), entertainment (50)"),
        "{out}"
    );
    assert!(
        out.contains("trained with: khabar train --quiet --data ")
            && out.contains("train.jsonl (300 examples)"),
        "{out}"
    );
    assert!(
        out.contains("held out: none: the SVMs train to their optimum"),
        "{out}"
    );
    assert!(
        out.contains("size: ") && out.contains("parameters"),
        "{out}"
    );
    // Internals (raw settings) are for --json.
    assert!(
        !out.contains("adagrad-row") && !out.contains("margin"),
        "{out}"
    );
    let o = khabar()
        .args(["info", "--json", "--model"])
        .arg(trained_model())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["sizes"]["parameters"].as_u64().unwrap() > 0);
    assert_eq!(v["config"]["labels"].as_array().unwrap().len(), 6);
    assert_eq!(v["config"]["training"]["label_counts"]["sports"], 50);
}

#[test]
fn bad_input_names_file_line_and_field_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\"}\n",
            ":2: field 'label': missing",
        ),
        (
            "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"\", \"label\": \"y\"}\n",
            ":2: field 'text': empty text",
        ),
        (
            "{\"text\": \"a\", \"label\": \"x\"}\nnot json\n",
            ":2: not valid JSON",
        ),
        (
            "{\"text\": 5, \"label\": \"x\"}\n",
            ":1: field 'text': expected a string",
        ),
        (
            "{\"text\": \"a\", \"label\": \"  \"}\n",
            ":1: field 'label': empty label",
        ),
    ];
    for (i, (content, want)) in cases.iter().enumerate() {
        let f = write(dir.path(), &format!("bad{i}.jsonl"), content);
        let o = khabar()
            .args(["train", "--quiet", "--data"])
            .arg(&f)
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "case {i}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("bad{i}.jsonl{want}")),
            "case {i}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let bytes =
        b"{\"text\": \"ok\", \"label\": \"x\"}\n{\"text\": \"caf\xe9\", \"label\": \"y\"}\n";
    let f = dir.path().join("latin1.jsonl");
    std::fs::write(&f, bytes).unwrap();
    let o = khabar()
        .args(["train", "--quiet", "--data"])
        .arg(&f)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("latin1.jsonl:2: invalid UTF-8"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn usage_errors_exit_2_without_panics() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let o = khabar()
        .args(["train", "--data"])
        .arg(&missing)
        .arg("--out")
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.jsonl"), "{}", stderr(&o));

    let one_label = write(
        dir.path(),
        "one.jsonl",
        "{\"text\": \"a b\", \"label\": \"x\"}\n{\"text\": \"c d\", \"label\": \"x\"}\n",
    );
    let o = khabar()
        .args(["train", "--quiet", "--data"])
        .arg(&one_label)
        .arg("--out")
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("at least two"), "{}", stderr(&o));

    let o = khabar()
        .args(["predict", "--model"])
        .arg(dir.path())
        .arg("text")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));

    let o = khabar().args(["train", "--bogus"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));

    let o = khabar()
        .args(["predict", "--top-k", "0", "--model"])
        .arg(trained_model())
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_failed_run_leaves_the_previous_model_intact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let snapshot = |p: &Path| -> Vec<Vec<u8>> {
        ["config.json", "tokenizer.json", "model.safetensors"]
            .iter()
            .map(|f| std::fs::read(p.join(f)).unwrap())
            .collect()
    };
    std::fs::create_dir(&out).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(trained_model().join(f), out.join(f)).unwrap();
    }
    let before = snapshot(&out);
    let bad = write(
        dir.path(),
        "bad.jsonl",
        "{\"text\": \"a\", \"label\": \"x\"}\n{oops\n",
    );
    let o = khabar()
        .args(["train", "--quiet", "--data"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(snapshot(&out), before);

    // A good run replaces it, and leaves nothing else behind.
    let o = khabar()
        .args(["train", "--quiet", "--epochs", "2", "--seed", "7", "--data"])
        .arg(data("train.jsonl"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(snapshot(&out), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2); // model + bad.jsonl

    // A directory that is not a bundle is never overwritten.
    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    write(&precious, "notes.txt", "keep me");
    let o = khabar()
        .args(["train", "--quiet", "--data"])
        .arg(data("train.jsonl"))
        .arg("--out")
        .arg(&precious)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a khabar model bundle"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(precious.join("notes.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn same_seed_gives_a_byte_identical_model() {
    let dir = tempfile::tempdir().unwrap();
    let train = |name: &str, seed: &str| {
        let out = dir.path().join(name);
        khabar()
            .args([
                "train",
                "--quiet",
                "--threads",
                "2",
                "--seed",
                seed,
                "--data",
            ])
            .arg(data("train.jsonl"))
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        (
            std::fs::read(out.join("model.safetensors")).unwrap(),
            std::fs::read(out.join("tokenizer.json")).unwrap(),
        )
    };
    let a = train("a", "5");
    let b = train("b", "5");
    let c = train("c", "6");
    assert!(a == b, "same seed, same bytes");
    assert!(a.0 != c.0, "another seed, other weights");
}

/// data/news/train.jsonl as (text, label) pairs.
fn news_pairs(file: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(data(file))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["text"].as_str().unwrap().to_string(),
                v["label"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[test]
fn train_on_mixed_formats_with_a_label_map_and_eval_with_the_same_map() {
    // data/news/train.jsonl cut into five parts, one per format, read as one corpus.
    let dir = tempfile::tempdir().unwrap();
    let pairs = news_pairs("train.jsonl");
    let parts: Vec<&[(String, String)]> = pairs.chunks(pairs.len() / 5 + 1).collect();
    let jsonl: String = parts[0]
        .iter()
        .map(|(t, l)| serde_json::json!({"text": t, "label": l}).to_string() + "\n")
        .collect();
    let csv: String = std::iter::once("label,text\r\n".to_string())
        .chain(
            parts[1]
                .iter()
                .map(|(t, l)| format!("{l},{}\r\n", csv_quote(t))),
        )
        .collect();
    let tsv: String = std::iter::once("text\tlabel\n".to_string())
        .chain(
            parts[2]
                .iter()
                .map(|(t, l)| format!("{}\t{l}\n", csv_quote(t))),
        )
        .collect();
    let ft: String = parts[3]
        .iter()
        .map(|(t, l)| format!("__label__{l} {t}\n"))
        .collect();
    for (i, (t, l)) in parts[4].iter().enumerate() {
        let class = dir.path().join("folders").join(l);
        std::fs::create_dir_all(&class).unwrap();
        write(&class, &format!("{i:03}.txt"), t);
    }
    let inputs = [
        write(dir.path(), "a.jsonl", &jsonl),
        write(dir.path(), "b.csv", format!("\u{feff}{csv}")),
        write(dir.path(), "c.tsv", &tsv),
        write(dir.path(), "d.txt", &ft),
        dir.path().join("folders"),
    ];
    let map = write(
        dir.path(),
        "map.json",
        r#"{"science-technology": "scitech", "entertainment": null}"#,
    );
    let out = dir.path().join("m");
    let mut cmd = khabar();
    cmd.args(["train", "--quiet", "--loss", "softmax", "--label-map"])
        .arg(&map);
    for input in &inputs {
        cmd.arg("--data").arg(input);
    }
    let o = cmd.arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("note: the label map dropped 50 example(s)"),
        "{}",
        stderr(&o)
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["labels"],
        serde_json::json!(["business", "international", "politics", "scitech", "sports"])
    );
    // With --loss softmax, the epoch is chosen on a cut of the data, then the model is trained
    // again on all of it.
    assert_eq!(config["training"]["refit"], serde_json::json!(true));
    assert_eq!(config["training"]["train_examples"].as_u64().unwrap(), 250);
    assert!(config["training"]["valid_examples"].as_u64().unwrap() > 0);

    // eval maps the gold labels the same way.
    let eval_with_map = |map: &Path| {
        khabar()
            .args(["eval", "--json", "--label-map"])
            .arg(map)
            .arg("--model")
            .arg(&out)
            .arg("--data")
            .arg(data("test.jsonl"))
            .output()
            .unwrap()
    };
    let o = eval_with_map(&map);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("unknown to the model"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["n"], 80);
    assert!(v["accuracy"].as_f64().unwrap() > 0.7, "{v}");
    // The model records its map, and eval applies it without being given it: the same scores.
    assert_eq!(
        config["label_map"],
        serde_json::json!({"entertainment": null, "science-technology": "scitech"})
    );
    let recorded = eval_json(&out, &data("test.jsonl"));
    assert!(recorded.status.success(), "{}", stderr(&recorded));
    assert!(
        stderr(&recorded).contains("the model's label map")
            && !stderr(&recorded).contains("unknown to the model"),
        "{}",
        stderr(&recorded)
    );
    assert_eq!(recorded.stdout, o.stdout);
    // A map given on the command line is used instead: an empty one leaves the original
    // labels, unknown to the model.
    let o = eval_with_map(&write(dir.path(), "empty.json", "{}"));
    assert!(
        stderr(&o).contains("unknown to the model"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_rows_fail_by_default_and_skip_bad_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.csv",
        "text,label\nThe striker scored twice,sports\nno label,\n,\nShares rose,business\n",
    );
    let run = |extra: &[&str]| {
        khabar()
            .args(["eval", "--model"])
            .arg(trained_model())
            .arg("--data")
            .arg(&bad)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("bad.csv:3: field 'label': empty label"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let o = run(&["--skip-bad"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: skipped 2 bad rows: 2 empty label (first at"),
        "{err}"
    );
    assert!(stdout(&o).contains("examples: 2"), "{}", stdout(&o));
}

#[test]
fn lossy_and_headerless_csv_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "x.csv", "");
    std::fs::write(
        &f,
        b"\"2\",\"caf\xe9 owners cheer\",\"The striker scored\"\n\"3\",\"Shares\",\"rose\"\n",
    )
    .unwrap();
    let eval = |extra: &[&str]| {
        khabar()
            .args(["eval", "--model"])
            .arg(trained_model())
            .arg("--data")
            .arg(&f)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = eval(&[]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("x.csv:1: invalid UTF-8 at byte 8"), "{err}");

    let o = eval(&["--lossy"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("no header row naming 'text' and 'label'"),
        "{err}"
    );
    assert!(err.contains("--text-field N --label-field M"), "{err}");

    let fields = [
        "--text-field",
        "2",
        "--text-field",
        "3",
        "--label-field",
        "1",
    ];
    let o = eval(&[&["--lossy"], &fields[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: replaced invalid UTF-8 with U+FFFD in 1 document(s)"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("examples: 2"), "{}", stdout(&o));

    let o = eval(&["--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected auto, jsonl, csv, tsv, fasttext or dir"));
}

#[test]
fn nb_svm_loss_trains_a_linear_model_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let o = khabar()
        .args([
            "train", "--quiet", "--loss", "nb-svm", "--svm-c", "0.5", "--lr", "0.5", "--data",
        ])
        .arg(data("train.jsonl"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // The SVMs have no learning rate: the option is pointed out, not silently dropped.
    assert!(
        stderr(&o).contains("note: --lr has no effect on the SVMs"),
        "{}",
        stderr(&o)
    );
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(config.contains("\"nb-svm\""), "{config}");
    let o = eval_json(&out, &data("test.jsonl"));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(acc > 0.7, "{acc}");

    let o = khabar()
        .args(["train", "--quiet", "--loss", "svm", "--dim", "8", "--data"])
        .arg(data("train.jsonl"))
        .arg("--out")
        .arg(dir.path().join("n"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--dim"), "{}", stderr(&o));
    assert!(!dir.path().join("n").exists());
}

/// `--keep-ngrams` keeps that fraction of the n-gram rows when the model is compacted after
/// training (the default keeps three quarters); out of range, it is a usage error.
#[test]
fn keep_ngrams_sets_the_share_of_n_gram_rows_kept() {
    let dir = tempfile::tempdir().unwrap();
    let rows = |keep: Option<&str>| -> u64 {
        let out = dir.path().join(format!("m{}", keep.unwrap_or("default")));
        let mut cmd = khabar();
        cmd.args(["train", "--quiet", "--data"])
            .arg(data("train.jsonl"))
            .arg("--out")
            .arg(&out);
        if let Some(k) = keep {
            cmd.args(["--keep-ngrams", k]);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let o = khabar()
            .args(["info", "--json", "--model"])
            .arg(&out)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["sizes"]["ngram_rows"].as_u64().unwrap()
    };
    let all = rows(Some("1"));
    assert!(all > 100, "{all}");
    assert_eq!(rows(Some("0.5")), (all as f64 * 0.5).round() as u64);
    assert_eq!(rows(None), (all as f64 * 0.75).round() as u64);
    for bad in ["0", "1.5", "-1", "NaN"] {
        let out = dir.path().join("bad");
        let o = khabar()
            .args([
                "train",
                "--quiet",
                &format!("--keep-ngrams={bad}"),
                "--data",
            ])
            .arg(data("train.jsonl"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&o).contains("--keep-ngrams"),
            "{bad}: {}",
            stderr(&o)
        );
        assert!(!out.exists());
    }
    // Settings are checked before the data is read.
    let o = khabar()
        .args(["train", "--quiet", "--epochs", "0", "--data"])
        .arg(dir.path().join("absent.jsonl"))
        .arg("--out")
        .arg(dir.path().join("never"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--epochs"), "{}", stderr(&o));
}

/// Output cut short by its reader (`khabar info | head -1`) ends the command quietly, without an
/// internal error.
#[test]
fn a_closed_stdout_is_not_an_internal_error() {
    for args in [&["info"][..], &["predict", "--top-k", "1"][..]] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("khabar"))
            .args(args)
            .args(if args[0] == "predict" {
                vec!["markets"; 20_000]
            } else {
                vec![]
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("internal error"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// Options that do not apply to what is trained, or that conflict, are refused with one line
/// that says why (exit 2, nothing written), instead of being ignored.
#[test]
fn options_that_do_not_apply_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let train = data("train.jsonl");
    let test = data("test.jsonl");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--arch", "transformer", "--ngrams", "3"],
            "--ngrams applies to bow and hybrid; --arch transformer does not use it",
        ),
        (
            &["--heads", "3"],
            "--heads applies to --arch transformer; bow does not use it",
        ),
        (
            &["--margin", "3"],
            "--margin applies to bow --loss softmax; the SVMs",
        ),
        (
            &["--arch", "transformer", "--no-refit"],
            "--no-refit applies to bow",
        ),
        (
            &["--valid-fraction", "0.2", "--valid", test.to_str().unwrap()],
            "give --valid FILE or --valid-fraction, not both",
        ),
        (
            &["--arch", "transformer", "--no-compact"],
            "--no-compact applies to bow",
        ),
    ];
    for (extra, message) in cases {
        let o = khabar()
            .args(["train", "--quiet", "--data"])
            .arg(&train)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        assert!(stderr(&o).contains(message), "{extra:?}: {}", stderr(&o));
        assert!(!out.exists());
    }
    // Given where they apply, the same options train.
    let o = khabar()
        .args([
            "train", "--quiet", "--loss", "softmax", "--margin", "3", "--epochs", "2",
        ])
        .arg("--data")
        .arg(&train)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // predict: --text-field names a JSON field: refused for plain text, and on stdin it reads
    // JSON lines.
    let o = khabar()
        .args(["predict", "--text-field", "headline", "plain text"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--text-field names a field of JSON lines input"));
    let txt = write(dir.path(), "a.txt", "a late goal won the match\n");
    let o = khabar()
        .args(["predict", "--text-field", "headline", "--input"])
        .arg(&txt)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is read as plain text"),
        "{}",
        stderr(&o)
    );
    let o = khabar()
        .args(["predict", "--model"])
        .arg(&out)
        .args(["--text-field", "headline", "--top-k", "1"])
        .write_stdin("{\"headline\": \"a late goal won the match\", \"id\": 1}\n")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = khabar()
        .args(["predict", "--model"])
        .arg(&out)
        .args(["--top-k", "1", "a late goal won the match"])
        .output()
        .unwrap();
    assert_eq!(o.stdout, plain.stdout);
    // .ndjson is JSON lines, as train reads it.
    let nd = write(
        dir.path(),
        "b.ndjson",
        "{\"text\": \"a late goal won the match\"}\n",
    );
    let o = khabar()
        .args(["predict", "--top-k", "1", "--model"])
        .arg(&out)
        .arg("--input")
        .arg(&nd)
        .output()
        .unwrap();
    assert_eq!(o.stdout, plain.stdout, "{}", stderr(&o));
}

/// JSON lines input: every line gets one output line in order, a bad line an error object
/// (jsonl output) with its line number and id; text output writes the lines before a bad one,
/// then stops with an error naming it; --skip-bad reports bad lines and skips them.
#[test]
fn every_input_line_gets_one_output_line_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.jsonl",
        "{\"text\": \"a late goal won the match\", \"id\": \"a1\"}\n\
         \n\
         {\"body\": \"no text field\", \"id\": 3}\n\
         not json\n\
         {\"text\": \"shares fell as markets slid\", \"id\": 5}\n",
    );
    let run = |extra: &[&str]| {
        khabar()
            .args(["predict", "--top-k", "1", "--id-field", "id", "--input"])
            .arg(&input)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&["--output", "jsonl"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{}", stdout(&o));
    assert_eq!(lines[0]["id"], "a1");
    assert!(lines[0]["label"].is_string());
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("blank line"));
    assert_eq!(lines[2]["id"], 3);
    assert!(lines[2]["error"]
        .as_str()
        .unwrap()
        .contains("field 'text': missing"));
    assert!(lines[3]["error"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    assert_eq!(lines[4]["id"], 5);
    assert!(stderr(&o).contains("3 line(s) could not be classified"));

    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).starts_with("a1\t"), "{}", stdout(&o));
    assert_eq!(stdout(&o).lines().count(), 1);
    assert!(
        stderr(&o).contains("in.jsonl:2: blank line"),
        "{}",
        stderr(&o)
    );

    let o = run(&["--skip-bad"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let ids: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids, ["a1", "5"]);
    assert!(stderr(&o).contains("skipped "), "{}", stderr(&o));

    // --id-field reads JSON lines only.
    let o = khabar()
        .args(["predict", "--id-field", "id", "a text"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// Input that comes slowly is answered line by line: the answer to a line arrives while stdin
/// is still open (as fastText's `predict model -` co-process users expect).
#[test]
fn a_line_on_stdin_is_answered_before_the_next_arrives() {
    use std::io::{BufRead, Write};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_khabar"))
        .args(["predict", "--top-k", "1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let wait = std::time::Duration::from_secs(60);
    writeln!(stdin, "the striker scored a late goal").unwrap();
    stdin.flush().unwrap();
    let first = rx
        .recv_timeout(wait)
        .expect("an answer while stdin is open");
    assert!(first.starts_with("sports\t"), "{first}");
    writeln!(stdin, "parliament passed the budget").unwrap();
    stdin.flush().unwrap();
    let second = rx.recv_timeout(wait).expect("an answer to the second line");
    assert!(!second.is_empty());
    drop(stdin);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}

/// eval reports top-k accuracy and calibration (expected calibration error and a reliability
/// table), coverage at --threshold, and writes the misclassified articles with --errors;
/// predict --threshold answers "unsure" (or the --unsure-label) below it.
#[test]
fn eval_reports_calibration_and_predict_can_be_unsure() {
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().join("errors.jsonl");
    let o = khabar()
        .args(["eval", "--json", "--threshold", "0.5", "--model"])
        .arg(trained_model())
        .arg("--data")
        .arg(data("test.jsonl"))
        .arg("--errors")
        .arg(&errors)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = v["n"].as_u64().unwrap() as f64;
    let acc = v["accuracy"].as_f64().unwrap();
    assert_eq!(v["top_k_accuracy"]["1"].as_f64().unwrap(), acc);
    assert!(v["top_k_accuracy"]["3"].as_f64().unwrap() >= acc);
    let ece = v["expected_calibration_error"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&ece), "{v}");
    let bins = v["reliability"].as_array().unwrap();
    let counted: u64 = bins.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted as f64, n);
    let at = &v["at_threshold"];
    assert!(at["coverage"].as_f64().unwrap() > 0.0 && at["coverage"].as_f64().unwrap() <= 1.0);
    let wrong: Vec<serde_json::Value> = std::fs::read_to_string(&errors)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(wrong.len() as f64, (n * (1.0 - acc)).round(), "{v}");
    for w in &wrong {
        assert_ne!(w["gold"], w["predicted"]);
        assert!(w["text"].is_string() && w["score"].is_number());
    }
    let o = khabar()
        .args(["eval", "--model"])
        .arg(trained_model())
        .arg("--data")
        .arg(data("test.jsonl"))
        .output()
        .unwrap();
    assert!(stdout(&o).contains("expected calibration error"));

    let predict = |extra: &[&str]| {
        khabar()
            .args(["predict", "--top-k", "2", "--model"])
            .arg(trained_model())
            .args(extra)
            .arg("zzz")
            .output()
            .unwrap()
    };
    let plain = stdout(&predict(&[]));
    let unsure = stdout(&predict(&["--threshold", "1.0", "--unsure-label", "?"]));
    let (p, u): (Vec<&str>, Vec<&str>) =
        (plain.split('\t').collect(), unsure.split('\t').collect());
    assert_eq!(u[0], "?", "{unsure}");
    assert_eq!(u[1..], p[1..], "the scores and the runner-up stay");
    assert_eq!(stdout(&predict(&["--threshold", "0"])), plain);
    assert_eq!(predict(&["--threshold", "1.5"]).status.code(), Some(2));
}

/// --class-weight: balanced trains; a file of weights naming a label the data lacks is refused
/// naming it; the softmax loss refuses weights.
#[test]
fn class_weights_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let train = |extra: &[&str]| {
        khabar()
            .args(["train", "--quiet", "--data"])
            .arg(data("train.jsonl"))
            .arg("--out")
            .arg(dir.path().join("m"))
            .args(extra)
            .output()
            .unwrap()
    };
    let o = train(&["--class-weight", "balanced"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = std::fs::read_to_string(dir.path().join("m/config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config["architecture"]["class_weight"], "balanced",
        "{config}"
    );
    let weights = write(dir.path(), "w.json", r#"{"sports": 2.0, "weather": 3.0}"#);
    let o = train(&["--class-weight", weights.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--class-weight names the label 'weather'"),
        "{}",
        stderr(&o)
    );
    let o = train(&["--class-weight", "balanced", "--loss", "softmax"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--class-weight applies to the SVM losses"),
        "{}",
        stderr(&o)
    );
}
