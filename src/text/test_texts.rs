//! Texts for the tests of normalization and of the tokenizer: English, Hindi, compatibility
//! forms, symbols and characters beyond the Basic Multilingual Plane.

pub(super) fn sample_texts() -> Vec<String> {
    let base = [
        "India and Pakistan held talks in Geneva on Monday; the U.N. welcomed it.",
        "भारत और पाकिस्तान के विदेश मंत्रियों ने युद्धविराम पर बातचीत की। फिर, \"हाँ\"!",
        "क्रिकेट: भारत ने ऑस्ट्रेलिया को 5 विकेट से हराया॥ कोहली ने शतक जड़ा",
        "Ｆｕｌｌｗｉｄｔｈ ＴＥＸＴ, ligatures ﬁ ﬂ, café naïve ÉCOLE Straße ΣΟΦΙΑ",
        "Shares of Acme Corp. rose 3.5% to $42 &lt;b&gt;record&lt;/b&gt; — analysts",
        "emoji 🚀🔥 and CJK 北京 東京 mixed with tabs\tand\r\nnewlines",
        "zero\u{200d}width joiner and non\u{200c}joiner in क्‍ष and र्‍य",
    ];
    let mut texts: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    // Repeat them so that the trainer keeps pieces above its minimum frequency.
    for i in 0..5 {
        for b in base {
            texts.push(format!("{b} {i}"));
        }
    }
    texts.push("x".repeat(150));
    texts
}
