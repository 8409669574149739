//! `khabar info`: what a model bundle holds, as text or JSON.

use khabar::model::Model;
use khabar::{ArchConfig, Classifier, Error, Loss, Result};

use super::args::InfoArgs;
use super::{bundle_bytes, load_model};

pub fn info(a: InfoArgs) -> Result<()> {
    let clf = load_model(&a.bundle.model, &a.bundle.encoder, None)?;
    if let Some(args) = &a.top_features {
        return top_features(&clf, args, a.json);
    }
    let c = clf.config();
    let disk: u64 = match &a.bundle.model {
        Some(dir) => bundle_bytes(dir),
        None => Classifier::default_model_size() as u64,
    };
    let ngrams = match clf.model() {
        Model::Bow(b) => b.num_ngrams(),
        Model::Hybrid(h) => h.bow().num_ngrams(),
        Model::Transformer(_) | Model::Encoder(_) => 0,
    };
    if a.json {
        let v = serde_json::json!({
            "config": c,
            "cascade": match clf.model() {
                Model::Hybrid(h) => h.cascade().map(|k| serde_json::json!({
                    "bow_scale": k.scale,
                    "bow_alone_from": k.confident,
                    "short_words": k.short_words,
                    "bow_alone_from_short": k.short_confident,
                })),
                _ => None,
            },
            "sizes": {
                "labels": c.labels.len(),
                "vocab_size": clf.tokenizer().vocab_size(),
                "ngram_rows": ngrams,
                "parameters": clf.model().num_parameters(),
                "bytes_on_disk": disk,
            }
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("plain values")
        );
        return Ok(());
    }
    match &a.bundle.model {
        Some(dir) => println!("model: {}", dir.display()),
        None => println!("model: the built-in news model (see models/news/README.md)"),
    }
    println!("what it is: {}", describe(&clf, ngrams));
    if let Some(t) = c.unsure_below {
        println!(
            "unsure below: {t:.3} (under this probability its answers were more often wrong than \
             right at training; `predict --unsure` answers unsure there)"
        );
    }
    if let Some(m) = &c.multi_label {
        let low = m.thresholds.iter().copied().fold(f32::INFINITY, f32::min);
        let high = m
            .thresholds
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let chosen = if m.folds > 0 {
            format!(
                "each chosen for that label's F1 on {}-fold cross-validated scores",
                m.folds
            )
        } else {
            "0.5, the SVMs' own boundary (no folds)".to_string()
        };
        println!(
            "multi-label: each label scored on its own (the sigmoid of its SVM's score) and \
             answered over its threshold ({low:.3} to {high:.3}), {chosen}"
        );
    }
    match (&c.calibrator, clf.model()) {
        _ if c.multi_label.is_some() => {}
        (Some(k), _) => println!(
            "probabilities: calibrated (a stated 0.9 was right 9 times in 10 on held-out data): \
             a monotone map of the top probability, fitted on the {}-fold cross-validated scores \
             of {} training examples",
            k.folds,
            thousands(k.documents)
        ),
        (None, Model::Bow(_)) => println!(
            "probabilities: not calibrated (trained with --calibration-folds 0, or before \
             calibration existed): the model's scores through a softmax"
        ),
        (None, _) => {}
    }
    let counts = c.training.as_ref().map(|t| &t.label_counts);
    let labels: Vec<String> = c
        .labels
        .iter()
        .map(|l| match counts.and_then(|m| m.get(l)) {
            Some(n) => format!("{l} ({})", thousands(*n)),
            None => l.clone(),
        })
        .collect();
    let counted = if counts.is_some_and(|m| !m.is_empty()) {
        ", with their training examples"
    } else {
        ""
    };
    println!(
        "labels ({}{counted}): {}",
        c.labels.len(),
        labels.join(", ")
    );
    if let Some(map) = &c.label_map {
        println!(
            "label map: the training data's labels went through a map of {} label(s); eval \
             applies it to gold labels",
            map.len()
        );
    }
    if let Some(t) = &c.training {
        if let Some(command) = &t.command {
            println!("trained with: {command}");
        }
        println!(
            "trained on: {} ({} examples)",
            files_once(&t.data),
            thousands(t.train_examples)
        );
        if t.epochs == 0 && t.valid_examples > 0 {
            // The encoder models: no epochs, scored by cross-validation or a validation file.
            println!(
                "held out: {} examples ({}): accuracy {:.4}, macro-F1 {:.4}",
                thousands(t.valid_examples),
                t.valid,
                t.valid_accuracy,
                t.valid_macro_f1
            );
        } else if t.valid_examples > 0 {
            let then = if t.refit {
                "; then trained again on everything for that many epochs"
            } else {
                ""
            };
            println!(
                "held out: {} examples ({}): accuracy {:.4}, macro-F1 {:.4} at the best epoch, {} of {}{then}",
                thousands(t.valid_examples),
                t.valid,
                t.valid_accuracy,
                t.valid_macro_f1,
                t.best_epoch,
                t.epochs
            );
        } else {
            println!("held out: {}", t.valid);
        }
        let epochs = if t.epochs > 0 {
            format!("{} epochs in ", t.epochs)
        } else {
            String::new()
        };
        println!(
            "training: {epochs}{:.1} s on {} threads, seed {}, {}",
            t.seconds, t.threads, t.seed, t.started_at
        );
    }
    println!(
        "size: {:.1} MB on disk; {} parameters, {} subwords{}",
        disk as f64 / 1e6,
        thousands(clf.model().num_parameters()),
        thousands(clf.tokenizer().vocab_size()),
        if ngrams > 0 {
            format!(", {} n-gram rows", thousands(ngrams))
        } else {
            String::new()
        }
    );
    println!(
        "bundle: format {}, written by khabar {} (--json for every setting)",
        c.format_version, c.khabar_version
    );
    Ok(())
}

/// `--top-features LABEL [N]`: the label's strongest named features, as text or JSON.
fn top_features(clf: &Classifier, args: &[String], json: bool) -> Result<()> {
    let n = match args.get(1) {
        None => 20,
        Some(n) => n.parse::<usize>().map_err(|_| {
            Error::Usage(format!(
                "--top-features LABEL N: N is a number of features (got '{n}')"
            ))
        })?,
    };
    let top = clf.top_features(&args[0], n)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&top).expect("plain values")
        );
        return Ok(());
    }
    println!(
        "the words and word pieces that weigh most for {}: what each adds to the label's score \
         where it occurs once, before an article's features are weighed together",
        top.label
    );
    for (title, list) in [("raise it", &top.raised), ("lower it", &top.lowered)] {
        println!("{title}:");
        for c in list.iter() {
            let sign = if c.weight < 0.0 { '-' } else { '+' };
            println!("  {sign} {:.3}  {c}", c.weight.abs());
        }
    }
    println!(
        "not listed: the {} rows of hashed features (word and character n-grams, whole words the \
         vocabulary splits), which the model keeps by hash, not by their text; `khabar predict \
         --explain` names them in the articles it explains",
        thousands(top.hashed_rows)
    );
    Ok(())
}

/// What the model is, in words.
fn describe(clf: &Classifier, ngrams: usize) -> String {
    let encoder = |max_tokens: usize| match &clf.config().encoder {
        Some(id) => {
            format!("the pretrained encoder {id}, reading up to {max_tokens} pieces of each text")
        }
        None => "a pretrained encoder".to_string(),
    };
    match clf.model().config() {
        ArchConfig::Bow(b) => format!("bag of words (bow): {}", describe_bow(&b, ngrams)),
        ArchConfig::Transformer(t) => {
            format!(
                "transformer trained from scratch: {} layer{} of width {}, {} heads, reading {} \
                 tokens at a time",
                t.layers,
                if t.layers == 1 { "" } else { "s" },
                t.d_model,
                t.heads,
                t.max_len
            )
        }
        ArchConfig::Encoder(c) => format!(
            "encoder: {}, and a linear layer over its sentence vector",
            encoder(c.max_tokens)
        ),
        ArchConfig::Hybrid(c) => {
            let (a, b, cascade) = match clf.model() {
                Model::Hybrid(h) => (h.scales()[0], h.scales()[1], h.cascade()),
                _ => (f32::NAN, f32::NAN, None),
            };
            let cascade = match cascade {
                Some(k) if k.confident <= 1.0 => format!(
                    "; by default the bow part answers alone where its probability is at least \
                     {:.3}{}, a threshold chosen at training with --cascade-keep {} (--accurate: \
                     never; --fast: always)",
                    k.confident,
                    match k.short_words {
                        0 => String::new(),
                        w if k.short_confident > 1.0 =>
                            format!(" (never for texts of up to {w} words)"),
                        w => format!(" ({:.3} for texts of up to {w} words)", k.short_confident),
                    },
                    c.cascade_keep
                ),
                Some(_) => "; the encoder runs on every article (--fast: never)".to_string(),
                None => "; the encoder runs on every article (the model predates the \
                         cascade)"
                    .to_string(),
            };
            format!(
                "hybrid: {}, whose linear layer's scores are added to a bow model's (weights: \
                 bow {a:.3}, encoder {b:.3}){cascade}; the bow part: {}",
                encoder(c.max_tokens),
                describe_bow(&c.bow, ngrams)
            )
        }
    }
}

/// What a bow model (or a hybrid's bow part) is, in words.
fn describe_bow(b: &khabar::BowConfig, ngrams: usize) -> String {
    let how = match b.loss {
        Loss::NbSvm => "one linear SVM per label on naive-Bayes-scaled features (NBSVM)",
        Loss::Svm => "one linear SVM per label",
        Loss::Softmax if b.folded => "a linear softmax classifier",
        Loss::Softmax => "a softmax classifier over learned feature vectors",
    };
    let words = if ngrams > 0 {
        format!(
            "subwords, whole words, character {}-{}-grams and word n-grams up to {}",
            b.char_ngrams[0], b.char_ngrams[1], b.ngram_order
        )
    } else {
        "subwords".to_string()
    };
    let precision = if b.half {
        ", stored in half precision"
    } else {
        ""
    };
    format!("{how}, over {words}{precision}")
}

/// Files listed once each, a file given several times (to weigh it more) with its count.
fn files_once(files: &[String]) -> String {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for f in files {
        match seen.iter_mut().find(|(g, _)| g == f) {
            Some((_, n)) => *n += 1,
            None => seen.push((f, 1)),
        }
    }
    seen.iter()
        .map(|(f, n)| match n {
            1 => f.to_string(),
            n => format!("{f} (x{n})"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n` with thousands separated by commas.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
