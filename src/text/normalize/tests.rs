use unicode_normalization_alignments::UnicodeNormalization;

use super::*;
use crate::text::test_texts::sample_texts;

/// The fast paths of normalization (quick check, cached case bits) give what NFKC then
/// lowercase give, character by character and on mixed text.
#[test]
fn normalization_matches_nfkc_then_lowercase() {
    let slow = |t: &str| -> String { t.nfkc().flat_map(|(c, _)| c.to_lowercase()).collect() };
    for cp in 0x80..=0x10_ffffu32 {
        if let Some(c) = char::from_u32(cp) {
            let t = format!("a{c}b");
            assert_eq!(normalize(&t), slow(&t), "U+{cp:04X}");
            // Beside spaces, where the text is normalized a stretch at a time.
            let t = format!("\u{0958} {c} b{c} \u{0301}{c}");
            assert_eq!(normalize(&t), slow(&t), "U+{cp:04X} by spaces");
        }
    }
    for t in sample_texts() {
        assert_eq!(normalize(&t), slow(&t));
    }
    // The quick check agrees with the library's on every pair of characters in the blocks
    // of Latin, Greek, combining marks and Devanagari.
    let blocks: Vec<char> = (0x80..0x500u32)
        .chain(0x900..0x980)
        .chain(0x1DC0..0x1E00)
        .chain(0x20D0..0x2100)
        .filter_map(char::from_u32)
        .collect();
    for &a in &blocks {
        for &b in blocks.iter().step_by(3) {
            let t: String = [a, b].into_iter().collect();
            let mut out = String::from("x");
            let quick = push_lowercase_if_nfkc(&t, &mut out, &mut ());
            assert_eq!(quick, library_nfkc_quick(&t), "{t:?}");
            if !quick {
                assert_eq!(out, "x", "{t:?}: left as it was");
            }
        }
    }
    // Nukta forms are composition exclusions: NFKC decomposes them.
    assert_eq!(normalize("\u{0958}"), "\u{0915}\u{093C}");
    assert_eq!(normalize("ÉCOLE ǅ ß İ"), slow("ÉCOLE ǅ ß İ"));
}

/// The cached punctuation test agrees with the Unicode tables for every character beyond
/// ASCII.
#[test]
fn punctuation_bits_match_the_unicode_tables() {
    for cp in 0..=0x10_ffffu32 {
        if let Some(c) = char::from_u32(cp) {
            // ASCII symbols ($, +, <, ...) count as punctuation, as in BERT.
            let expected = c.is_ascii_punctuation() || (!c.is_ascii() && c.is_punctuation());
            assert_eq!(is_punctuation(c), expected, "U+{cp:04X}");
        }
    }
}

#[test]
fn normalization_keeps_devanagari_marks() {
    assert_eq!(normalize("पोस्ट"), "पोस्ट");
    assert_eq!(normalize("Ｈｅｌｌｏ WORLD"), "hello world");
}

#[test]
fn words_split_on_punctuation_and_danda() {
    let mut words = Vec::new();
    for_each_word("भारत ने कहा। फिर, \"हाँ\"!", |w| words.push(w));
    assert_eq!(
        words,
        vec!["भारत", "ने", "कहा", "।", "फिर", ",", "\"", "हाँ", "\"", "!"]
    );
}

/// Normalizing and splitting in one pass gives what the two steps give, on texts that take
/// each of its paths: ASCII, NFKC already, a word that needs NFKC among words that do not
/// (and changes length), combining marks out of order, characters beyond U+FFFF, and every
/// character below U+10000 beside a Hindi word.
#[test]
fn normalizing_and_splitting_together_is_the_same_as_one_after_the_other() {
    fn check(text: &str) {
        let want_norm = normalize(text);
        let mut want = Vec::new();
        for_each_word(&want_norm, |w| want.push(w.to_string()));
        let (mut norm, mut spans) = (String::from("stale"), vec![(7, 9)]);
        normalize_split_into(text, &mut norm, &mut spans);
        assert_eq!(norm, want_norm, "{text:?}");
        let got: Vec<String> = spans
            .iter()
            .map(|&(a, b)| norm[a as usize..b as usize].to_string())
            .collect();
        assert_eq!(got, want, "{text:?}");
    }
    let pool = [
        "The",
        "MARKETS",
        "भारत",
        "ने",
        "कहा।",
        "फ़िल्म",
        "\u{95b}ोर",
        "Straße",
        "İstanbul",
        "ＡＢＣ",
        "ﬁne",
        "x\u{301}\u{327}",
        "a\u{327}\u{301}",
        "क\u{94d}\u{93c}",
        "😀",
        "\u{1d400}",
        ",",
        "!",
        "—",
        "\u{a0}",
        "\u{2003}",
        "\t",
        "  ",
        "।",
        "Ⅻ",
        "ǅ",
        "Ｘ！Ｙ",
        "¼",
        "ｶﾞ",
        "फ़िल्म,Ｘ\u{2003}y",
    ];
    let mut rng = crate::rng::SplitMix64::new(3);
    for _ in 0..3_000 {
        let n = rng.next_u64() % 8;
        let text: Vec<&str> = (0..n)
            .map(|_| pool[(rng.next_u64() % pool.len() as u64) as usize])
            .collect();
        check(&text.join(" "));
        check(&text.concat());
    }
    for c in (0x80..0x1_0000u32).filter_map(char::from_u32) {
        check(&format!("भारत{c}ने {c}x"));
    }
}

/// The splitter (a table for ASCII) splits as testing each character would: every ASCII
/// character, and mixes with other scripts and spaces.
#[test]
fn words_split_as_their_characters_say() {
    fn reference(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start: Option<usize> = None;
        for (i, c) in text.char_indices() {
            if c.is_whitespace() || is_punctuation(c) {
                if let Some(s) = start.take() {
                    out.push(&text[s..i]);
                }
                if !c.is_whitespace() {
                    out.push(&text[i..i + c.len_utf8()]);
                }
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(s) = start {
            out.push(&text[s..]);
        }
        out
    }
    let ascii: String = (0u8..128).map(|b| b as char).collect();
    let mut texts = vec![
        ascii.clone(),
        format!("ab{ascii}cd e"),
        "भारत ने\u{a0}कहा।फिर, \u{2003}\"हाँ\"!x\u{85}y — z…".to_string(),
        "   ".to_string(),
        String::new(),
    ];
    for b in 0u8..128 {
        texts.push(format!("w{}w {}", b as char, b as char));
    }
    // Every character beyond ASCII (classified from cached bits below U+10000).
    for c in (0x80..=0x10_ffffu32).filter_map(char::from_u32) {
        let text = format!("w{c}w {c}");
        let mut got = Vec::new();
        for_each_word(&text, |w| got.push(w));
        assert_eq!(got, reference(&text), "U+{:04X}", c as u32);
    }
    for text in &texts {
        let mut got = Vec::new();
        for_each_word(text, |w| got.push(w));
        assert_eq!(got, reference(text), "{text:?}");
    }
}
