//! Explanations (`Classifier::explain`, `Classifier::top_features`) of the default bow model
//! trained on the repository's corpus (data/news, English and Hindi): each explanation adds up
//! to the label's logit, and names its features by the text they came from.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{classifier, khabar, stderr, stdout, test_texts};
use khabar::{
    Classifier, Error, Explanation, FeatureKind, TrainConfig, Trainer, TransformerConfig,
};

/// The data/news model saved once for this file's command-line tests.
fn saved_model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explain-tests-model");
        classifier().save(&dir).unwrap();
        dir
    })
}

/// `bias + listed + other`, in double precision.
fn sum(e: &Explanation) -> f64 {
    e.bias as f64
        + e.raised
            .iter()
            .chain(&e.lowered)
            .map(|c| c.weight as f64)
            .sum::<f64>()
        + e.other as f64
}

/// `bias + listed + other` is the logit, to f32 rounding.
fn assert_adds_up(e: &Explanation, text: &str) {
    let size = e.bias.abs() as f64
        + e.raised
            .iter()
            .chain(&e.lowered)
            .map(|c| c.weight.abs() as f64)
            .sum::<f64>()
        + e.other.abs() as f64;
    let diff = (sum(e) - e.logit as f64).abs();
    assert!(
        diff <= 1e-4 * size.max(1.0),
        "{text:?}: bias {} + listed + other {} = {} vs logit {}",
        e.bias,
        e.other,
        sum(e),
        e.logit
    );
}

/// A hexadecimal hash or a bare id in place of a feature's text.
fn looks_like_a_hash_or_id(feature: &str) -> bool {
    let f = feature.trim_start_matches("0x");
    (f.len() >= 8 && f.chars().all(|c| c.is_ascii_hexdigit()))
        || (f.chars().all(|c| c.is_ascii_digit()) && f.len() > 4)
}

#[test]
fn explanations_add_up_to_the_logit_and_agree_with_prediction() {
    let clf = classifier();
    let texts = test_texts();
    for text in &texts {
        let e = clf.explain(text, 5).unwrap();
        let p = clf.predict(text).unwrap();
        assert_eq!(e.label, p.label, "{text:?}");
        assert!((e.score - p.score).abs() < 1e-6, "{text:?}");
        assert_adds_up(&e, text);
        assert!(e.raised.len() <= 5 && e.lowered.len() <= 5);
        assert!(e.raised.windows(2).all(|w| w[0].weight >= w[1].weight));
        assert!(e.lowered.windows(2).all(|w| w[0].weight <= w[1].weight));
        assert!(e.raised.iter().all(|c| c.weight > 0.0));
        assert!(e.lowered.iter().all(|c| c.weight < 0.0));
        // The winning label's score is raised by something.
        assert!(!e.raised.is_empty(), "{text:?}: {e:?}");
    }
    // Every feature listed: `other` is then 0, and the whole sum is the listed one.
    let e = clf.explain(&texts[0], 10_000).unwrap();
    assert_eq!(e.other, 0.0);
    assert_adds_up(&e, &texts[0]);
    // None listed: all in `other`.
    let e0 = clf.explain(&texts[0], 0).unwrap();
    assert!(e0.raised.is_empty() && e0.lowered.is_empty());
    assert_adds_up(&e0, &texts[0]);
    // The batch gives what one at a time gives.
    let batch = clf.explain_batch(&texts[..10], 5).unwrap();
    for (text, b) in texts.iter().zip(&batch) {
        assert_eq!(b, &clf.explain(text, 5).unwrap());
    }
    // An empty text: the bias is all there is.
    let e = clf.explain("", 5).unwrap();
    assert!(e.raised.is_empty() && e.lowered.is_empty() && e.other == 0.0);
    assert_eq!(e.bias, e.logit);
}

#[test]
fn hindi_features_are_shown_as_the_text_they_came_from() {
    let clf = classifier();
    let text = "रिज़र्व बैंक ने रेपो दर में 0.25 प्रतिशत की कटौती की है, इससे होम लोन की EMI घटने की उम्मीद है।";
    let e = clf.explain(text, 8).unwrap();
    assert_eq!(e.label, "business");
    assert_adds_up(&e, text);
    let normalized = khabar::text::normalize(text);
    let listed: Vec<_> = e.raised.iter().chain(&e.lowered).collect();
    let devanagari = |s: &str| s.chars().any(|ch| ('\u{0900}'..='\u{097F}').contains(&ch));
    assert!(
        e.raised.iter().any(|c| devanagari(&c.feature)),
        "{listed:#?}"
    );
    for c in &listed {
        assert!(!looks_like_a_hash_or_id(&c.feature), "{c:?}");
        // Each feature is made of the text's words or characters.
        let plain = c.feature.trim_start_matches("##");
        match c.kind {
            FeatureKind::CharNgram => {
                let inner = plain.trim_start_matches('<').trim_end_matches('>');
                assert!(normalized.contains(inner), "{c:?}");
                if plain.starts_with('<') {
                    assert!(
                        normalized.split_whitespace().any(|w| w.starts_with(inner)),
                        "{c:?}"
                    );
                }
            }
            FeatureKind::Word | FeatureKind::WordNgram | FeatureKind::Subword => {
                assert!(
                    plain == "[UNK]" || normalized.contains(plain),
                    "{c:?} is not in {normalized:?}"
                );
            }
            FeatureKind::Encoder => panic!("a bow model has no encoder term: {c:?}"),
        }
    }
    // Words and n-grams of several kinds take part.
    let all = clf.explain(text, 10_000).unwrap();
    let kinds: std::collections::HashSet<_> = all
        .raised
        .iter()
        .chain(&all.lowered)
        .map(|c| c.kind)
        .collect();
    assert!(
        kinds.contains(&FeatureKind::Word) && kinds.contains(&FeatureKind::CharNgram),
        "{kinds:?}"
    );
}

#[test]
fn english_features_are_words_and_word_ngrams_of_the_text() {
    let clf = classifier();
    let text = "The prime minister presented the budget in parliament, and the budget cut taxes.";
    let e = clf.explain(text, 10_000).unwrap();
    assert_adds_up(&e, text);
    let all: Vec<_> = e.raised.iter().chain(&e.lowered).collect();
    let has = |kind: FeatureKind, feature: &str| {
        all.iter()
            .filter(|c| c.kind == kind && c.feature == feature)
            .count()
    };
    // "budget" twice in the text: one entry.
    assert_eq!(has(FeatureKind::Word, "budget"), 1, "{all:#?}");
    assert!(
        all.iter()
            .any(|c| c.kind == FeatureKind::WordNgram && c.feature.contains(' ')),
        "{all:#?}"
    );
    for c in &all {
        assert!(!looks_like_a_hash_or_id(&c.feature), "{c:?}");
    }
    let json = serde_json::to_value(&e).unwrap();
    assert!(json["raised"][0]["kind"].is_string());
    assert!(json["raised"][0]["feature"].is_string());
    assert!(json["logit"].is_number() && json["bias"].is_number());
}

#[test]
fn top_features_list_named_pieces_of_a_label() {
    let clf = classifier();
    let top = clf.top_features("sports", 10).unwrap();
    assert_eq!(top.raised.len(), 10);
    assert_eq!(top.lowered.len(), 10);
    assert!(top.raised.windows(2).all(|w| w[0].weight >= w[1].weight));
    assert!(top.raised.iter().all(|c| c.weight > 0.0));
    assert!(top.hashed_rows > 0);
    let words: Vec<&str> = top.raised.iter().map(|c| c.feature.as_str()).collect();
    for c in top.raised.iter().chain(&top.lowered) {
        assert!(matches!(c.kind, FeatureKind::Word | FeatureKind::Subword));
        assert!(!looks_like_a_hash_or_id(&c.feature), "{c:?}");
    }
    // The corpus's sports words come first.
    assert!(
        words.iter().any(|w| [
            "match",
            "cup",
            "team",
            "win",
            "won",
            "league",
            "final",
            "मैच",
            "टीम",
            "खिलाड़ी"
        ]
        .contains(w)),
        "{words:?}"
    );
    let err = clf.top_features("weather", 5).unwrap_err();
    assert!(matches!(err, Error::Usage(_)) && err.to_string().contains("sports"));
}

#[test]
fn a_transformer_is_not_explained() {
    let clf: Classifier = Trainer::new(TrainConfig {
        epochs: 1,
        valid_fraction: 0.0,
        ..TrainConfig::for_arch(khabar::ArchConfig::Transformer(TransformerConfig {
            layers: 1,
            d_model: 16,
            heads: 2,
            ff: 32,
            max_len: 16,
            stride: 8,
            ..TransformerConfig::default()
        }))
    })
    .train(&common::corpus("train.jsonl"))
    .unwrap();
    let err = clf.explain("a late goal", 3).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("explanations cover bow, hybrid and encoder models"),
        "{err}"
    );
    assert!(clf.explain_batch(&["a late goal"], 3).is_err());
}

#[test]
fn predict_explain_writes_each_feature_under_its_prediction() {
    let texts = [
        "The striker scored twice as the home side won the football league final",
        "भारतीय क्रिकेट टीम ने रोमांचक मुकाबले में जीत दर्ज की, कप्तान ने शतक लगाया।",
    ];
    let o = khabar()
        .args(["predict", "--model"])
        .arg(saved_model())
        .args(["--explain", "3"])
        .args(texts)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    // Per article: its prediction line, up to 3 + 3 feature lines, and the sum line.
    let heads: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].starts_with("  "))
        .collect();
    assert_eq!(heads.len(), 2, "{out}");
    for (n, &h) in heads.iter().enumerate() {
        assert!(lines[h].starts_with("sports\t"), "{out}");
        let end = heads.get(n + 1).copied().unwrap_or(lines.len());
        let features = &lines[h + 1..end - 1];
        assert!((1..=6).contains(&features.len()), "{out}");
        for l in features {
            let (sign, rest) = l[2..].split_at(1);
            assert!(sign == "+" || sign == "-", "{l}");
            let (weight, feature) = rest.trim_start().split_once("  ").unwrap();
            weight.parse::<f32>().unwrap();
            let (kind, quoted) = feature.split_once(" \"").unwrap();
            assert!(
                ["word", "subword", "word n-gram", "char n-gram"].contains(&kind),
                "{l}"
            );
            let text = quoted.trim_end_matches('"').trim_start_matches("##");
            let text = text.trim_start_matches('<').trim_end_matches('>');
            assert!(texts[n].to_lowercase().contains(text), "{l}");
        }
        assert!(
            lines[end - 1].starts_with("  = ") && lines[end - 1].contains("logit of sports: bias "),
            "{out}"
        );
    }
    // JSON lines: the explanation is a member, and adds up.
    let o = khabar()
        .args(["predict", "--output", "jsonl", "--explain", "3", "--model"])
        .arg(saved_model())
        .args(texts)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for (line, text) in out.lines().zip(texts) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let e: Explanation = serde_json::from_value(v["explain"].clone()).unwrap();
        assert_eq!(v["label"], e.label.as_str());
        assert!(e.raised.len() <= 3 && e.lowered.len() <= 3 && !e.raised.is_empty());
        assert_adds_up(&e, text);
        assert_eq!(e, classifier().explain(text, 3).unwrap());
    }
    // Without --explain, nothing changes; given without N, 5 of each.
    let plain = khabar()
        .args(["predict", "--model"])
        .arg(saved_model())
        .args(texts)
        .output()
        .unwrap();
    assert_eq!(stdout(&plain).lines().count(), 2);
    assert!(!stdout(&plain).contains("  + "));
    let o = khabar()
        .args(["predict", "--model"])
        .arg(saved_model())
        .arg(texts[0])
        .arg("--explain")
        .output()
        .unwrap();
    let out = stdout(&o);
    let raised = out.lines().filter(|l| l.starts_with("  + ")).count();
    assert!(raised == 5, "{out}");
}

#[test]
fn info_top_features_lists_a_labels_words() {
    let o = khabar()
        .args(["info", "--model"])
        .arg(saved_model())
        .args(["--top-features", "sports", "4"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("weigh most for sports"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("  + ")).count(),
        4,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("  - ")).count(),
        4,
        "{out}"
    );
    assert!(
        out.contains("hashed features") && out.contains("not listed"),
        "{out}"
    );
    let o = khabar()
        .args(["info", "--json", "--model"])
        .arg(saved_model())
        .args(["--top-features", "sports"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["raised"].as_array().unwrap().len(), 20);
    assert_eq!(v["label"], "sports");
    let o = khabar()
        .args(["info", "--model"])
        .arg(saved_model())
        .args(["--top-features", "weather"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no label 'weather'"), "{}", stderr(&o));
}

#[test]
fn predict_explain_refuses_a_transformer_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("t");
    let o = khabar()
        .args(["train", "--quiet", "--arch", "transformer", "--epochs", "1"])
        .args([
            "--layers",
            "1",
            "--d-model",
            "16",
            "--heads",
            "2",
            "--ff",
            "32",
        ])
        .args(["--max-len", "16", "--stride", "8", "--data"])
        .arg(common::data("train.jsonl"))
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = khabar()
        .args(["predict", "--explain", "2", "--model"])
        .arg(&model)
        .arg("a late goal")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("explanations cover bow, hybrid and encoder models"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}
