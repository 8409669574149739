//! `khabar eval`: a model measured on labeled data, as a report or JSON.

use khabar::{Classifier, Error, ReadOptions, Result};

use super::args::EvalArgs;
use super::{encodings_dir, io_error, load_chosen, own_threshold, read_corpus_with};

pub fn eval(a: EvalArgs) -> Result<()> {
    if let Some(p) = a.threshold {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Usage(format!(
                "--threshold must be a probability between 0 and 1 (got {p})"
            )));
        }
    }
    let clf = load_chosen(&a.model, a.threads)?
        .with_encoding_cache(a.cache_dir.as_deref().map(encodings_dir));
    if clf.is_multi_label() {
        return eval_multi(&a, &clf);
    }
    let threshold = if a.unsure {
        Some(own_threshold(&clf)? as f64)
    } else {
        a.threshold
    };
    let (options, given) = options_for(&a, &clf)?;
    let corpus = read_corpus_with(&a.data, &options, given)?;
    let eval = clf.evaluate(&corpus)?;
    warn_unknown(&eval.labels[clf.labels().len()..]);
    let coverage = threshold.and_then(|p| eval.at_threshold(p));
    if a.json {
        let mut v = eval.to_json();
        if let Some(c) = coverage {
            v["at_threshold"] = serde_json::to_value(c).expect("plain numbers");
        }
        println!("{v}");
    } else {
        print!("{}", eval.report());
        if let Some(c) = coverage {
            println!(
                "\nat --threshold {}: {:.1}% of the articles are answered (the rest unsure), with \
                 accuracy {:.4}",
                // As the model records it (f32), not as a long f64.
                c.threshold as f32,
                100.0 * c.coverage,
                c.accuracy
            );
        }
    }
    if let Some(path) = &a.errors {
        let mut out = String::new();
        let mut n = 0;
        for (e, s) in corpus.examples.iter().zip(&eval.scored) {
            if s.truth != s.predicted {
                let v = serde_json::json!({
                    "text": e.text,
                    "gold": eval.labels[s.truth],
                    "predicted": eval.labels[s.predicted],
                    "score": s.confidence,
                });
                out.push_str(&v.to_string());
                out.push('\n');
                n += 1;
            }
        }
        std::fs::write(path, out).map_err(|e| io_error(path, e))?;
        eprintln!(
            "wrote the {n} misclassified article(s) to {}",
            path.display()
        );
    }
    Ok(())
}

/// Warns of the data's labels the model does not know.
fn warn_unknown(unknown: &[String]) {
    if !unknown.is_empty() {
        eprintln!(
            "warning: {} label(s) in the data are unknown to the model and always count as errors: {}",
            unknown.len(),
            unknown.join(", ")
        );
    }
}

/// The data's read options for this model: the command line's, with the model's label map
/// unless given another (said so); whether the map is the command line's.
fn options_for(a: &EvalArgs, clf: &Classifier) -> Result<(ReadOptions, bool)> {
    let mut options = a.data_args.read_options()?;
    let given = options.label_map.is_some();
    if !given {
        if let Some(map) = &clf.config().label_map {
            eprintln!(
                "note: the data's labels go through the model's label map ({} label(s) renamed \
                 or dropped), as its training data's did; --label-map FILE gives another",
                map.len()
            );
            options.label_map = Some(map.clone());
        }
    }
    Ok((options, given))
}

/// `eval` of a multi-label model: the data read with every label of each article, and the
/// multi-label measures (micro- and macro-F1, precision and recall at k, subset accuracy,
/// Hamming loss, each label's scores).
fn eval_multi(a: &EvalArgs, clf: &Classifier) -> Result<()> {
    for (given, option) in [
        (a.threshold.is_some(), "--threshold"),
        (a.unsure, "--unsure"),
        (a.errors.is_some(), "--errors"),
    ] {
        if given {
            return Err(Error::Usage(format!(
                "{option} applies to single-label models; a multi-label model answers every \
                 label over its own threshold, chosen at training"
            )));
        }
    }
    let (mut options, given) = options_for(a, clf)?;
    options.multi_label = true;
    let corpus = read_corpus_with(&a.data, &options, given)?;
    let eval = clf.evaluate_multi(&corpus)?;
    warn_unknown(&eval.labels[clf.labels().len()..]);
    if a.json {
        println!("{}", eval.to_json());
    } else {
        print!("{}", eval.report());
    }
    Ok(())
}
