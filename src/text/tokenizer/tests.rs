use tokenizers::Tokenizer as HfTokenizer;

use super::*;
use crate::text::test_texts::sample_texts;

#[test]
fn fast_encoder_matches_the_tokenizers_crate() {
    let texts = sample_texts();
    let options = TokenizerOptions {
        vocab_size: 300,
        min_frequency: 2,
    };
    let tok = Tokenizer::train(&texts, &options).unwrap();
    let hf: HfTokenizer = tok.to_json().parse().unwrap();
    let mut probes = texts.clone();
    probes.push("unseen words: zebra quixotic ज्ञानपीठ".into());
    probes.push(String::new());
    probes.push("   ".into());
    for text in &probes {
        let want = hf.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        assert_eq!(tok.encode(text), want, "text: {text:?}");
    }
}

#[test]
fn training_is_deterministic() {
    let texts = sample_texts();
    let options = TokenizerOptions {
        vocab_size: 200,
        min_frequency: 1,
    };
    let a = Tokenizer::train(&texts, &options).unwrap();
    let b = Tokenizer::train(&texts, &options).unwrap();
    assert_eq!(a.to_json(), b.to_json());
    assert!(
        a.vocab_size() > 50 && a.vocab_size() <= 200,
        "{}",
        a.vocab_size()
    );
}

#[test]
fn rejects_foreign_pipelines() {
    let texts = sample_texts();
    let tok = Tokenizer::train(&texts, &TokenizerOptions::default()).unwrap();
    let changed = tok.to_json().replace("\"Lowercase\"", "\"NFD\"");
    assert!(matches!(
        Tokenizer::from_json(&changed),
        Err(Error::Tokenizer(_))
    ));
    assert!(Tokenizer::from_json("{not json").is_err());
}
