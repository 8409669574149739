//! `khabar eval`: a model measured on labeled data, as a report or JSON.

use khabar::{Error, Result};

use super::args::EvalArgs;
use super::{io_error, load_model, own_threshold, read_corpus_with, with_mode};

pub fn eval(a: EvalArgs) -> Result<()> {
    if let Some(p) = a.threshold {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Usage(format!(
                "--threshold must be a probability between 0 and 1 (got {p})"
            )));
        }
    }
    let clf = with_mode(load_model(&a.model, &a.encoder, a.threads)?, a.mode)?;
    let threshold = if a.unsure {
        Some(own_threshold(&clf)? as f64)
    } else {
        a.threshold
    };
    let mut options = a.data_args.read_options()?;
    let own_map = options.label_map.is_none();
    if own_map {
        if let Some(map) = &clf.config().label_map {
            eprintln!(
                "note: the data's labels go through the model's label map ({} label(s) renamed \
                 or dropped), as its training data's did; --label-map FILE gives another",
                map.len()
            );
            options.label_map = Some(map.clone());
        }
    }
    let corpus = read_corpus_with(&a.data, &options, !own_map)?;
    let eval = clf.evaluate(&corpus)?;
    let unknown: Vec<&String> = eval.labels[clf.labels().len()..].iter().collect();
    if !unknown.is_empty() {
        eprintln!(
            "warning: {} label(s) in the data are unknown to the model and always count as errors: {}",
            unknown.len(),
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
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
                c.threshold,
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
