//! Trust: interruption, odd and huge inputs, streaming, and property tests that nothing panics.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use khabar::{Classifier, Corpus, ReadOptions};
use proptest::prelude::*;

mod common;

use common::{classifier, data};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_khabar"))
}

fn model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability-model");
        classifier().save(&dir).unwrap();
        dir
    })
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_training_keeps_the_old_model_and_leaves_no_temporary_files() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("model");
    classifier().save(&out).unwrap();
    let before = files(&out);

    // Many epochs, so that training is still running when the signal comes (the softmax loss:
    // the default's SVMs stop at their optimum).
    let mut child = Command::new(bin())
        .args([
            "train",
            "--loss",
            "softmax",
            "--epochs",
            "100000",
            "--patience",
            "100000",
            "--data",
        ])
        .arg(data("train.jsonl"))
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let started = Instant::now();
    loop {
        let line = lines
            .next()
            .expect("stderr ended before training began")
            .unwrap();
        if line.starts_with("epoch 2/") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    assert_eq!(files(&out), before, "the old model is untouched");
    let names: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["model".to_string()], "no temporary directories");
}

#[test]
fn a_ten_megabyte_document_is_classified() {
    let word_salad = "talks between the two governments on trade and markets ";
    let text: String = word_salad.repeat(10_000_000 / word_salad.len() + 1);
    assert!(text.len() >= 10_000_000);
    let started = Instant::now();
    let p = classifier().predict(&text).unwrap();
    let sum: f32 = p.top.iter().map(|t| t.score).sum();
    assert!((sum - 1.0).abs() < 1e-4);
    // Linear in the text: generous bound even for an unoptimized build on a busy machine.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn stdin_is_streamed_one_result_per_line_in_order() {
    let texts: Vec<String> = std::fs::read_to_string(data("test.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // Enough lines for several internal chunks.
    let lines: Vec<String> = texts.iter().cycle().take(10_000).cloned().collect();
    let want: Vec<String> = classifier()
        .predict_batch(&lines)
        .unwrap()
        .into_iter()
        .map(|p| p.label)
        .collect();
    let mut child = Command::new(bin())
        .args(["predict", "--top-k", "1", "--model"])
        .arg(model_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for l in &lines {
            writeln!(stdin, "{l}").unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn invalid_utf8_on_input_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.txt");
    std::fs::write(&f, b"fine line\nbad \xff byte\n").unwrap();
    let out = Command::new(bin())
        .args(["predict", "--model"])
        .arg(model_dir())
        .arg("--input")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in.txt:2: invalid UTF-8"), "{err}");
    assert!(err.contains("--lossy"), "{err}");

    // --lossy classifies both lines, the second with U+FFFD in place of the bad byte, and says
    // how many lines it repaired.
    let out = Command::new(bin())
        .args(["predict", "--lossy", "--top-k", "1", "--model"])
        .arg(model_dir())
        .arg("--input")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("note: 1 line(s) held invalid UTF-8"), "{err}");
}

#[test]
fn altered_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    classifier().save(&m).unwrap();
    let w = m.join("model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01; // one bit in the last weight
    std::fs::write(&w, bytes).unwrap();
    let e = Classifier::load(&m).expect_err("altered weights loaded");
    let msg = e.to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("checksum"),
        "{msg}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_text_gets_finite_probabilities_that_sum_to_one(text in ".{0,300}") {
        let clf = classifier();
        let p = clf.predict(&text).unwrap();
        prop_assert_eq!(p.top.len(), clf.labels().len());
        let sum: f32 = p.top.iter().map(|t| t.score).sum();
        prop_assert!((sum - 1.0).abs() < 1e-4);
        prop_assert!(p.top.iter().all(|t| t.score.is_finite() && t.score >= 0.0));
        prop_assert!(p.top.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn normalization_is_idempotent_and_tokenization_total(text in "\\PC{0,200}") {
        let once = khabar::text::normalize(&text);
        prop_assert_eq!(khabar::text::normalize(&once), once.clone());
        let ids = classifier().tokenizer().encode(&text);
        let vocab = classifier().tokenizer().vocab_size() as u32;
        prop_assert!(ids.iter().all(|&i| i < vocab));
    }

    #[test]
    fn jsonl_reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.jsonl");
        std::fs::write(&f, &bytes).unwrap();
        // Rows or an error; never a panic.
        let _ = Corpus::read(&f, &ReadOptions::default());
    }
}

#[test]
fn the_thread_count_does_not_change_the_model() {
    let dir = tempfile::tempdir().unwrap();
    // The default (the SVMs, split by label over the threads) and the softmax loss (whose
    // second run goes alongside on another thread).
    for loss in ["nb-svm", "softmax"] {
        let weights = |threads: &str| {
            let out = dir.path().join(format!("{loss}{threads}"));
            let status = Command::new(bin())
                .args(["train", "--quiet", "--seed", "3", "--loss", loss])
                .args(["--threads", threads, "--data"])
                .arg(data("train.jsonl"))
                .arg("--out")
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success());
            std::fs::read(out.join("model.safetensors")).unwrap()
        };
        assert!(weights("1") == weights("2"), "--loss {loss}");
    }
}
