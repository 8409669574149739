//! Helpers shared by the integration tests: each test file has `mod common;` and uses the ones
//! it needs.

// Every test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use khabar::{Classifier, Corpus, ReadOptions, TrainConfig, Trainer};

/// A file of the small news corpus, data/news.
pub fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/news")
        .join(file)
}

/// A file of data/news, read with the default options.
pub fn corpus(file: &str) -> Corpus {
    Corpus::read(data(file), &ReadOptions::default()).unwrap()
}

/// The texts of data/news/test.jsonl.
pub fn test_texts() -> Vec<String> {
    corpus("test.jsonl")
        .examples
        .into_iter()
        .map(|e| e.text)
        .collect()
}

/// The default model (`TrainConfig::default()`) trained on data/news/train.jsonl, once per test
/// file.
pub fn classifier() -> &'static Classifier {
    static CLF: OnceLock<Classifier> = OnceLock::new();
    CLF.get_or_init(|| {
        Trainer::new(TrainConfig::default())
            .train(&corpus("train.jsonl"))
            .unwrap()
    })
}

/// The `khabar` binary, to run as a user would.
pub fn khabar() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("khabar").unwrap()
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A command's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes `content` to `dir/name` (creating the folders it names) and returns its path.
pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, content).unwrap();
    p
}
