//! `khabar eval`: a model measured on labeled data, as a report or JSON.

use khabar::Result;

use super::args::EvalArgs;
use super::{load_model, read_corpus};

pub fn eval(a: EvalArgs) -> Result<()> {
    let clf = load_model(&a.model, a.threads)?;
    let mut options = a.data_args.read_options()?;
    if options.label_map.is_none() {
        if let Some(map) = &clf.config().label_map {
            eprintln!(
                "note: the data's labels go through the model's label map ({} label(s) renamed \
                 or dropped), as its training data's did; --label-map FILE gives another",
                map.len()
            );
            options.label_map = Some(map.clone());
        }
    }
    let corpus = read_corpus(&a.data, &options)?;
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
    if a.json {
        println!("{}", eval.to_json());
    } else {
        print!("{}", eval.report());
    }
    Ok(())
}
