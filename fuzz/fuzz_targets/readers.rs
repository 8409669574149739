//! Feeds arbitrary bytes to every corpus reader, with every combination of the options that
//! change how bytes are read. A reader must return rows or an error, never panic.
#![no_main]

use khabar::{Corpus, Format, ReadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (format, name) = match selector % 5 {
        0 => (Format::Jsonl, "x.jsonl"),
        1 => (Format::Csv, "x.csv"),
        2 => (Format::Tsv, "x.tsv"),
        3 => (Format::Fasttext, "x.txt"),
        _ => (Format::Dir, "corpus"),
    };
    let path = dir.path().join(name);
    if format == Format::Dir {
        // Split the bytes into a few documents of two labels.
        for (i, chunk) in bytes.chunks(64).take(8).enumerate() {
            let label = dir.path().join(name).join(if i % 2 == 0 { "a" } else { "b" });
            std::fs::create_dir_all(&label).unwrap();
            std::fs::write(label.join(format!("{i}.txt")), chunk).unwrap();
        }
        std::fs::create_dir_all(&path).unwrap();
    } else {
        std::fs::write(&path, bytes).unwrap();
    }
    let numbered = selector & 0x10 != 0;
    let options = ReadOptions {
        format,
        text_fields: if numbered { vec!["2".into(), "3".into()] } else { vec!["text".into()] },
        label_field: if numbered { "1".into() } else { "label".into() },
        no_header: selector & 0x20 != 0,
        lossy: selector & 0x40 != 0,
        skip_bad: selector & 0x80 != 0,
        ..ReadOptions::default()
    };
    let _ = Corpus::read(&path, &options);
});
