//! The corpus readers through the library API: every format, header detection, bad rows,
//! encodings, label maps and mixed inputs. Small files are written to temporary directories;
//! tests/fixtures holds the ones worth reading as files.

use std::path::{Path, PathBuf};

use khabar::{BadRow, Corpus, Error, Example, ReadOptions};

mod common;

use common::write;

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

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fields(text: &[&str], label: &str) -> ReadOptions {
    ReadOptions {
        text_fields: text.iter().map(|s| s.to_string()).collect(),
        label_field: label.into(),
        ..ReadOptions::default()
    }
}

#[test]
fn csv_with_a_header_reads_fields_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "news.csv",
        "label,text\nsports,\"A late goal, then \"\"chaos\"\"\"\nbusiness,Shares rose\n",
    );
    let c = read(&f, &ReadOptions::default()).unwrap();
    assert_eq!(
        pairs(&c),
        [
            ("A late goal, then \"chaos\"", "sports"),
            ("Shares rose", "business")
        ]
    );
    assert!(c.report.notes.is_empty());
}

#[test]
fn csv_without_a_header_reads_fields_by_number_and_joins_repeated_fields() {
    // Headerless, like the official AG News CSV; CRLF line ends and a quoted field that spans
    // two lines.
    let f = fixture("ag_style.csv");
    let c = read(&f, &fields(&["2", "3"], "1")).unwrap();
    assert_eq!(c.len(), 4);
    assert_eq!(c.examples[0].label, "3");
    assert_eq!(
        c.examples[0].text,
        "Stocks rally as rates hold\nShares rose on Wall Street, led by banks."
    );
    assert_eq!(
        c.examples[1].text,
        "United win the cup\nA late goal settled the final; fans \"celebrated\" all night."
    );
    assert_eq!(
        c.examples[2].text,
        "Talks resume in Geneva\nDiplomats met again.\r\nA second day of talks is planned."
    );
    assert!(c.report.notes.is_empty(), "{:?}", c.report.notes);
    // --no-header says the same thing explicitly.
    let no_header = ReadOptions {
        no_header: true,
        ..fields(&["2", "3"], "1")
    };
    assert_eq!(read(&f, &no_header).unwrap(), c);
    // A row starts on the line its first field is on: the one after the two-line row is line 5.
    let bad = std::fs::read_to_string(&f).unwrap() + "\"\",\"no label\",\"x\"\r\n";
    let dir = tempfile::tempdir().unwrap();
    let g = write(dir.path(), "ag.csv", &bad);
    let err = input_error(read(&g, &fields(&["2", "3"], "1")));
    assert!(err.contains("ag.csv:6: field '1': empty label"), "{err}");
}

#[test]
fn headerless_csv_with_default_field_names_says_to_pass_column_numbers() {
    let err = read(&fixture("ag_style.csv"), &ReadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.exit_code(), 2);
    assert!(
        msg.contains("ag_style.csv:1: no header row naming 'text' and 'label'"),
        "{msg}"
    );
    assert!(msg.contains("--text-field N --label-field M"), "{msg}");

    let no_header_names = ReadOptions {
        no_header: true,
        ..ReadOptions::default()
    };
    let msg = read(&fixture("ag_style.csv"), &no_header_names)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("with --no-header, name columns by number"),
        "{msg}"
    );

    let msg = read(&fixture("ag_style.csv"), &fields(&["2"], "4"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("column 4 does not exist: columns are numbered 1 to 3"),
        "{msg}"
    );
}

#[test]
fn a_header_naming_some_fields_but_not_others_lists_the_columns() {
    let msg = read(
        &fixture("headed.tsv"),
        &fields(&["headline", "text"], "topic"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("headed.tsv:1: no column named 'text' in the header"),
        "{msg}"
    );
    assert!(msg.contains("\"headline\""), "{msg}");
}

#[test]
fn tsv_with_a_header_reads_named_and_numbered_fields() {
    let f = fixture("headed.tsv");
    let c = read(&f, &fields(&["headline", "4"], "topic")).unwrap();
    assert_eq!(
        pairs(&c),
        [
            ("Stocks rally\nShares rose, led by banks.", "business"),
            (
                "United win\tthe cup\nA late goal settled the final.",
                "sports"
            ),
            ("City lose\nAn early goal was not enough.", "sports"),
        ]
    );
}

#[test]
fn a_header_is_guessed_when_fields_are_numbers_and_the_label_cell_is_a_column_name() {
    let dir = tempfile::tempdir().unwrap();
    let headed = "text,labels\nfirst,a\nsecond,b\nthird,a\n";
    let f = write(dir.path(), "guess.csv", headed);
    let c = read(&f, &fields(&["1"], "2")).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c.report.notes.len(), 1);
    assert!(
        c.report.notes[0].contains("took the first row"),
        "{:?}",
        c.report.notes
    );
    let c = read(
        &f,
        &ReadOptions {
            no_header: true,
            ..fields(&["1"], "2")
        },
    )
    .unwrap();
    assert_eq!(c.examples[0], Example::new("text", "labels"));

    // A first row whose label repeats below, or a file too small to tell, is data.
    for data in ["x,a\nfirst,a\nsecond,b\nthird,b\n", "x,a\ny,b\n"] {
        let f = write(dir.path(), "data.csv", data);
        let c = read(&f, &fields(&["1"], "2")).unwrap();
        assert_eq!(c.examples[0].text, "x", "{data}");
        assert!(c.report.notes.is_empty());
    }
}

#[test]
fn csv_bad_rows_each_kind() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.csv",
        concat!(
            "text,label\n",
            "good,a\n",
            "\"  \",a\n",
            "no label,\n",
            ",\n",
            "too,many,columns\n",
            "too few\n",
            "good too,b\n",
        ),
    );
    let err = input_error(read(&f, &ReadOptions::default()));
    assert!(
        err.ends_with("bad.csv:3: field 'text': empty text (--skip-bad skips bad rows)"),
        "{err}"
    );
    let c = read(&f, &skipping()).unwrap();
    assert_eq!(pairs(&c), [("good", "a"), ("good too", "b")]);
    let s = &c.report.skipped;
    assert_eq!(
        (
            s[&BadRow::EmptyText].count,
            s[&BadRow::EmptyText].first.line
        ),
        (1, 3)
    );
    // A row with neither text nor label counts as an empty label: the label is checked first.
    assert_eq!(
        (
            s[&BadRow::EmptyLabel].count,
            s[&BadRow::EmptyLabel].first.line
        ),
        (2, 4)
    );
    assert_eq!(
        (
            s[&BadRow::WrongColumns].count,
            s[&BadRow::WrongColumns].first.line
        ),
        (2, 6)
    );

    let f = write(dir.path(), "cols.csv", "text,label\na,b\nc,d,e\n");
    let err = input_error(read(&f, &ReadOptions::default()));
    assert!(
        err.contains("cols.csv:3: expected 2 columns, found 3"),
        "{err}"
    );
}

#[test]
fn csv_with_bom_crlf_and_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bom.csv",
        "\u{feff}text,label\r\nfirst,a\r\n\"multi\r\nline\",b\r\n",
    );
    let c = read(&f, &ReadOptions::default()).unwrap();
    assert_eq!(pairs(&c), [("first", "a"), ("multi\r\nline", "b")]);

    let f = write(
        dir.path(),
        "latin1.csv",
        b"text,label\nok,a\n\"caf\xe9\",b\n\"na\xefve\",b\n",
    );
    let err = input_error(read(&f, &ReadOptions::default()));
    assert!(
        err.contains("latin1.csv:3: invalid UTF-8 at byte 20 of the file"),
        "{err}"
    );
    let lossy = ReadOptions {
        lossy: true,
        ..ReadOptions::default()
    };
    let c = read(&f, &lossy).unwrap();
    assert_eq!(c.examples[1].text, "caf\u{fffd}");
    assert_eq!(c.report.lossy_documents, 2);
}

#[test]
fn fasttext_reads_the_first_label_and_counts_multi_label_lines() {
    let c = read(&fixture("news.ft"), &ReadOptions::default()).unwrap();
    assert_eq!(
        pairs(&c),
        [
            ("The striker scored twice in the final", "sports"),
            ("Shares rose as the central bank held rates", "business"),
            ("India won the test by an innings", "sports"),
            (
                "Parliament passed the budget after a long debate",
                "politics"
            ),
        ]
    );
    assert_eq!(c.report.multi_label_lines, 2);
    let warnings = c.report.warnings().join("\n");
    assert!(
        warnings.contains("2 line(s) have more than one label"),
        "{warnings}"
    );
}

#[test]
fn fasttext_bad_lines_bom_crlf_and_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.txt",
        b"\xef\xbb\xbf__label__a first text\r\nno label here\r\n__label__ empty name\r\n__label__b\r\n__label__b caf\xe9\r\n",
    );
    let err = input_error(read(&f, &ReadOptions::default()));
    assert!(
        err.contains("bad.txt:2: no __label__ at the start of the line"),
        "{err}"
    );
    let c = read(
        &f,
        &ReadOptions {
            lossy: true,
            ..skipping()
        },
    )
    .unwrap();
    assert_eq!(pairs(&c), [("first text", "a"), ("caf\u{fffd}", "b")]);
    let s = &c.report.skipped;
    assert_eq!(s[&BadRow::MissingLabel].first.line, 2);
    assert_eq!(s[&BadRow::EmptyLabel].first.line, 3);
    assert_eq!(s[&BadRow::EmptyText].first.line, 4);
    assert_eq!(c.report.lossy_documents, 1);
    let err = input_error(read(&f, &skipping()));
    assert!(
        err.contains("bad.txt:5: invalid UTF-8 at byte 14 of the line"),
        "{err}"
    );
}

#[test]
fn folder_per_class_reads_one_document_per_txt_file() {
    let c = read(&fixture("folders"), &ReadOptions::default()).unwrap();
    assert_eq!(
        pairs(&c),
        [
            (
                "Stocks rally\n\nShares rose on Wall Street, led by banks.\n",
                "business"
            ),
            (
                "Oil prices fall\r\n\r\nCrude dropped 3% on Monday.\r\n",
                "business"
            ),
            (
                "United win the cup\n\nA late goal settled the final.\n",
                "sports"
            ),
        ]
    );
    // README.txt beside the class folders is not a document; notes.md inside one is ignored.
    assert_eq!(c.report.notes.len(), 1);
    assert!(
        c.report.notes[0].contains("ignored 1 entries"),
        "{:?}",
        c.report.notes
    );
    assert!(
        c.report.notes[0].contains("notes.md"),
        "{:?}",
        c.report.notes
    );
}

#[test]
fn folder_per_class_bad_documents_and_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("corpus");
    write(&root, "a/1.txt", "fine");
    write(&root, "a/2.TXT", " \n ");
    write(&root, "b/1.txt", b"line one\nna\xefve\n");
    let err = input_error(read(&root, &ReadOptions::default()));
    assert!(err.contains("2.TXT: empty text"), "{err}");
    let err = input_error(read(&root, &skipping()));
    assert!(
        err.contains("b/1.txt:2: invalid UTF-8 at byte 11 of the file"),
        "{err}"
    );
    let c = read(
        &root,
        &ReadOptions {
            lossy: true,
            ..skipping()
        },
    )
    .unwrap();
    assert_eq!(
        pairs(&c),
        [("fine", "a"), ("line one\nna\u{fffd}ve\n", "b")]
    );
    assert_eq!(c.report.skipped[&BadRow::EmptyText].count, 1);
    assert_eq!(c.report.lossy_documents, 1);

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = input_error(read(&empty, &ReadOptions::default()));
    assert!(err.contains("no class folders here"), "{err}");
}

#[test]
fn formats_by_name_and_by_path() {
    use khabar::Format;
    for (name, format) in [
        ("auto", Format::Auto),
        ("JSONL", Format::Jsonl),
        ("csv", Format::Csv),
        ("tsv", Format::Tsv),
        ("fasttext", Format::Fasttext),
        ("dir", Format::Dir),
    ] {
        assert_eq!(name.parse::<Format>().unwrap(), format);
    }
    assert!("xml".parse::<Format>().is_err());

    let dir = tempfile::tempdir().unwrap();
    let odd = write(dir.path(), "data.xml", "<x/>");
    let err = read(&odd, &ReadOptions::default()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("cannot tell the format"), "{err}");
    // A folder is folder-per-class, whatever --format names for files.
    let csv = ReadOptions {
        format: Format::Csv,
        ..ReadOptions::default()
    };
    let err = read(&fixture("folders"), &csv).unwrap_err().to_string();
    assert!(
        err.contains("is a folder: read it with --format dir"),
        "{err}"
    );
    let as_dir = ReadOptions {
        format: Format::Dir,
        ..ReadOptions::default()
    };
    let err = read(&fixture("news.ft"), &as_dir).unwrap_err().to_string();
    assert!(err.contains("this is a file"), "{err}");
    // An explicit format wins over the file name.
    let ft = ReadOptions {
        format: Format::Fasttext,
        ..ReadOptions::default()
    };
    let f = write(dir.path(), "data.xml", "__label__a text\n");
    assert_eq!(pairs(&read(&f, &ft).unwrap()), [("text", "a")]);
}

fn with_map(json: &str) -> (tempfile::TempDir, ReadOptions) {
    let dir = tempfile::tempdir().unwrap();
    let map = write(dir.path(), "map.json", json);
    let options = ReadOptions {
        label_map: Some(khabar::LabelMap::load(&map).unwrap()),
        ..ReadOptions::default()
    };
    (dir, options)
}

#[test]
fn label_map_renames_merges_and_drops() {
    let (_dir, options) =
        with_map(r#"{"sci": "science", "tech": "science", "gossip": null, "typo": "x"}"#);
    let c = read(&fixture("mapped.ft"), &options).unwrap();
    assert_eq!(
        pairs(&c),
        [
            ("a new chip", "science"),
            ("a new planet", "science"),
            ("the cup final", "sports"),
        ]
    );
    assert_eq!(c.report.dropped_by_label_map, 2);
    assert_eq!(c.report.unused_map_entries, ["typo"]);
    assert!(c
        .report
        .notes
        .iter()
        .any(|n| n.contains("dropped 2 example(s)")));
    assert!(c
        .report
        .warnings()
        .iter()
        .any(|w| w.contains("no example has: typo")));

    // Merging can create conflicting duplicates, and can also resolve them.
    let (_dir, options) = with_map(r#"{"sci": "science", "tech": "science"}"#);
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "d.ft",
        "__label__sci same\n__label__tech same\n__label__x other\n",
    );
    assert_eq!(
        read(&f, &ReadOptions::default())
            .unwrap()
            .report
            .conflicting_texts,
        1
    );
    assert_eq!(read(&f, &options).unwrap().report.conflicting_texts, 0);

    // A map that drops everything leaves nothing to train on.
    let (_dir, options) = with_map(r#"{"sci": null, "tech": null, "x": null}"#);
    let err = read(&f, &options).unwrap_err().to_string();
    assert!(
        err.contains("no examples left: the label map dropped all 3"),
        "{err}"
    );
}

#[test]
fn bad_label_maps_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (json, want) in [
        ("[\"a\"]", "map.json: a label map is a JSON object"),
        (
            "{\"a\": 1}",
            "map.json: field 'a': expected a label (a string) or null",
        ),
        (
            "{\"a\": \" \"}",
            "map.json: 'a' maps to an empty label (use null",
        ),
        ("{\"a\": \"b\",\n", "map.json:2: not valid JSON"),
    ] {
        let map = write(dir.path(), "map.json", json);
        let err = khabar::LabelMap::load(&map).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{json}");
        assert!(err.to_string().contains(want), "{json}: {err}");
    }
}

/// JSON lines whose fields have other names: the error names the keys the rows have and the
/// option to read the likely one (not `--skip-bad`, which would skip every row), and so does
/// a file whose every row was skipped. Following the advice reads the file.
#[test]
fn a_missing_json_field_points_to_the_field_the_rows_have() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "news.jsonl",
        "{\"body\": \"markets rose\", \"topic\": \"business\", \"id\": 7}\n\
         {\"body\": \"a late goal\", \"topic\": \"sports\", \"id\": 8}\n",
    );
    let err = input_error(read(&f, &ReadOptions::default()));
    assert!(
        err.ends_with(
            "news.jsonl:1: field 'label': missing; the row's keys are body, id, topic: \
             to read 'topic', pass --label-field topic"
        ),
        "{err}"
    );
    let err = input_error(read(&f, &skipping()));
    assert!(
        err.contains("no examples in this file (2 bad rows skipped)")
            && err.contains("pass --label-field topic"),
        "{err}"
    );
    let labelled = ReadOptions {
        label_field: "topic".into(),
        ..ReadOptions::default()
    };
    let err = input_error(read(&f, &labelled));
    assert!(
        err.ends_with("to read 'body', pass --text-field body"),
        "{err}"
    );
    let both = ReadOptions {
        text_fields: vec!["body".into()],
        ..labelled
    };
    let c = read(&f, &both).unwrap();
    assert_eq!(
        pairs(&c),
        [("markets rose", "business"), ("a late goal", "sports")]
    );
    // No key with a usual name: the option is named, with the keys to choose from.
    let g = write(dir.path(), "odd.jsonl", "{\"a\": \"x\", \"b\": 1}\n");
    let err = input_error(read(&g, &ReadOptions::default()));
    assert!(
        err.ends_with("the row's keys are a, b: name the field with --label-field NAME"),
        "{err}"
    );
}

/// The validation cut is stratified, and a text given more than once goes to one side only.
#[test]
fn the_stratified_split_keeps_a_texts_copies_together() {
    let mut examples = Vec::new();
    for i in 0..100 {
        examples.push(Example::new(format!("text {i}"), ["a", "b"][i % 2]));
    }
    // Every text of label a given three times in all.
    for i in (0..100).step_by(2) {
        examples.push(Example::new(format!("text {i}"), "a"));
        examples.push(Example::new(format!("text {i}"), "a"));
    }
    let corpus = Corpus::from_examples(examples);
    let (train, valid) = corpus.stratified_split(0.2, 7);
    assert_eq!(train.len() + valid.len(), 200);
    let in_train: std::collections::HashSet<&str> =
        train.examples.iter().map(|e| e.text.as_str()).collect();
    assert!(valid
        .examples
        .iter()
        .all(|e| !in_train.contains(e.text.as_str())));
    // A fifth of each label's distinct texts: 10 of a (with their copies, 30) and 10 of b.
    let count = |c: &Corpus, l: &str| c.examples.iter().filter(|e| e.label == l).count();
    assert_eq!((count(&valid, "a"), count(&valid, "b")), (30, 10));
    assert_eq!(corpus.stratified_split(0.2, 7), (train, valid));
}
