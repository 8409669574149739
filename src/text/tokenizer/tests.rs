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

/// Each id's piece is the one `tokenizer.json` gives it, and the pieces spell the words they
/// encode.
#[test]
fn pieces_are_the_vocabulary_of_the_json() {
    let tok = Tokenizer::train(&sample_texts(), &TokenizerOptions::default()).unwrap();
    let hf: HfTokenizer = tok.to_json().parse().unwrap();
    for (piece, id) in hf.get_vocab(false) {
        assert_eq!(tok.piece(id), Some(piece.as_str()), "id {id}");
    }
    assert_eq!(tok.piece(tok.vocab_size() as u32), None);
    let mut ids = Vec::new();
    tok.encode_word("elections", &mut ids);
    let spelled: String = ids
        .iter()
        .map(|&id| tok.piece(id).unwrap().trim_start_matches("##"))
        .collect();
    assert_eq!(spelled, "elections");
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
