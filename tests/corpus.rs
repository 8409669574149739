//! The corpus readers through the library API: every format, header detection, bad rows,
//! encodings, label maps and mixed inputs. Small files are written to temporary directories;
//! tests/fixtures holds the ones worth reading as files.

use std::path::{Path, PathBuf};

use khabar::{BadRow, Corpus, Error, Example, ReadOptions};

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, content).unwrap();
    p
}

fn read(path: &Path, options: &ReadOptions) -> khabar::Result<Corpus> {
    Corpus::read(path, options)
}

fn pairs(corpus: &Corpus) -> Vec<(&str, &str)> {
    corpus
        .examples
        .iter()
        .map(|e| (e.text.as_str(), e.label.as_str()))
        .collect()
}

/// The message of an input error, with its location.
fn input_error(result: khabar::Result<Corpus>) -> String {
    match result {
        Err(e @ Error::Input { .. }) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
        Err(e) => panic!("expected an input error, got {e:?}"),
        Ok(c) => panic!("expected an error, read {} examples", c.len()),
    }
}

fn skipping() -> ReadOptions {
    ReadOptions {
        skip_bad: true,
        ..ReadOptions::default()
    }
}

#[test]
fn jsonl_bad_rows_fail_by_default_and_are_counted_with_skip_bad() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.jsonl",
        concat!(
            "{\"text\": \"good one\", \"label\": \"a\"}\n",
            "{\"text\": \" \", \"label\": \"a\"}\n",
            "{\"text\": \"no label\"}\n",
            "{\"text\": \"empty label\", \"label\": \"\"}\n",
            "not json\n",
            "[1, 2]\n",
            "{\"text\": [\"x\"], \"label\": \"a\"}\n",
            "{\"body\": \"no text\", \"label\": \"a\"}\n",
            "\n",
            "{\"text\": \"good two\", \"label\": \"b\"}\n",
        ),
    );
    let err = input_error(read(&f, &ReadOptions::default()));
    assert!(
        err.contains("bad.jsonl:2: field 'text': empty text"),
        "{err}"
    );
    assert!(err.contains("--skip-bad"), "{err}");

    let c = read(&f, &skipping()).unwrap();
    assert_eq!(pairs(&c), [("good one", "a"), ("good two", "b")]);
    let s = &c.report.skipped;
    assert_eq!(s[&BadRow::EmptyText].count, 1);
    assert_eq!(s[&BadRow::EmptyText].first.line, 2);
    assert_eq!(s[&BadRow::MissingLabel].count, 1);
    assert_eq!(s[&BadRow::EmptyLabel].count, 1);
    assert_eq!(s[&BadRow::NotJson].count, 2);
    assert_eq!(s[&BadRow::WrongType].count, 1);
    assert_eq!(s[&BadRow::MissingText].count, 1);
    assert_eq!(s[&BadRow::MissingText].first.line, 8);
    assert_eq!(c.report.skipped_rows(), 7);
    let warnings = c.report.warnings().join("\n");
    assert!(warnings.contains("skipped 7 bad rows"), "{warnings}");
    assert!(warnings.contains("2 not a JSON object"), "{warnings}");
}

#[test]
fn a_file_of_only_bad_rows_is_an_error_even_when_skipping() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "all_bad.jsonl", "{\"text\": \"x\"}\n");
    let err = input_error(read(&f, &skipping()));
    assert!(
        err.contains("no examples in this file (1 bad rows skipped)"),
        "{err}"
    );
}

#[test]
fn jsonl_with_bom_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bom.jsonl",
        "\u{feff}{\"text\": \"one\", \"label\": \"a\"}\r\n{\"text\": \"two\", \"label\": \"b\"}\r\n",
    );
    let c = read(&f, &ReadOptions::default()).unwrap();
    assert_eq!(pairs(&c), [("one", "a"), ("two", "b")]);
    assert!(c.report.warnings().is_empty());
}

#[test]
fn jsonl_invalid_utf8_strict_and_lossy() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "latin1.jsonl",
        b"{\"text\": \"ok\", \"label\": \"x\"}\n{\"text\": \"caf\xe9 au lait\", \"label\": \"y\"}\n",
    );
    let err = input_error(read(&f, &ReadOptions::default()));
    assert!(
        err.contains("latin1.jsonl:2: invalid UTF-8 at byte 13"),
        "{err}"
    );
    assert!(err.contains("--lossy"), "{err}");

    let lossy = ReadOptions {
        lossy: true,
        ..ReadOptions::default()
    };
    let c = read(&f, &lossy).unwrap();
    assert_eq!(c.examples[1].text, "caf\u{fffd} au lait");
    assert_eq!(c.report.lossy_documents, 1);
    assert!(c.report.warnings()[0].contains("1 document"));
}

#[test]
fn conflicting_duplicates_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "dups.jsonl",
        concat!(
            "{\"text\": \"same text\", \"label\": \"a\"}\n",
            "{\"text\": \"other\", \"label\": \"a\"}\n",
            "{\"text\": \"same text\", \"label\": \"a\"}\n",
            "{\"text\": \"same text\", \"label\": \"b\"}\n",
            "{\"text\": \"other\", \"label\": \"a\"}\n",
            "{\"text\": \"third\", \"label\": \"b\"}\n",
            "{\"text\": \"third\", \"label\": \"c\"}\n",
        ),
    );
    let c = read(&f, &ReadOptions::default()).unwrap();
    assert_eq!(c.len(), 7, "duplicates are kept; they are only reported");
    assert_eq!(c.report.conflicting_texts, 2);
    let first = &c.report.conflicts[0];
    assert_eq!(first.text, "same text");
    let labels: Vec<(&str, usize)> = first
        .labels
        .iter()
        .map(|(l, at)| (l.as_str(), at.line))
        .collect();
    assert_eq!(labels, [("a", 1), ("b", 4)]);
    let warnings = c.report.warnings().join("\n");
    assert!(
        warnings.contains("2 text(s) appear more than once"),
        "{warnings}"
    );
    assert!(
        warnings.contains("\"same text\": a (") && warnings.contains("dups.jsonl:4)"),
        "{warnings}"
    );
}

#[test]
fn in_memory_corpora_have_an_empty_report() {
    let c = Corpus::from_examples(vec![Example::new("x", "a")]);
    assert!(c.report.warnings().is_empty());
}
