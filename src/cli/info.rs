//! `khabar info`: what a model bundle holds, as text or JSON.

use khabar::model::Model;
use khabar::{ArchConfig, Classifier, Loss, Result};

use super::args::InfoArgs;
use super::{bundle_bytes, load_model};

pub fn info(a: InfoArgs) -> Result<()> {
    let clf = load_model(&a.model, None)?;
    let c = clf.config();
    let disk: u64 = match &a.model {
        Some(dir) => bundle_bytes(dir),
        None => Classifier::default_model_size() as u64,
    };
    let ngrams = match clf.model() {
        Model::Bow(b) => b.num_ngrams(),
        Model::Transformer(_) => 0,
    };
    if a.json {
        let v = serde_json::json!({
            "config": c,
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
    match &a.model {
        Some(dir) => println!("model: {}", dir.display()),
        None => println!("model: the built-in news model (see models/news/README.md)"),
    }
    println!("architecture: {}", c.architecture.name());
    println!(
        "hyperparameters: {}",
        serde_json::to_string(&c.architecture).expect("plain values")
    );
    println!("labels ({}): {}", c.labels.len(), c.labels.join(", "));
    // The model's own settings (those of config.json, as the model was built from them).
    let shape = match clf.model().config() {
        ArchConfig::Bow(b) => {
            let storage = match (b.folded, b.half) {
                (true, true) => ", linear (one weight per feature and label), half precision",
                (true, false) => ", linear (one weight per feature and label)",
                (false, true) => ", half precision",
                (false, false) => "",
            };
            let trained = match b.loss {
                Loss::Softmax => String::new(),
                loss => format!(", trained as --loss {} (C {})", loss.name(), b.svm_c),
            };
            format!("{} n-gram rows, dim {}{storage}{trained}", ngrams, b.dim)
        }
        ArchConfig::Transformer(c) => {
            println!(
                "transformer: {} layers, d_model {}, {} heads, ff {}, max_len {}, stride {}, dropout {}",
                c.layers, c.d_model, c.heads, c.ff, c.max_len, c.stride, c.dropout
            );
            println!(
                "  trained with warmup {}, weight decay {}, gradient clipping at norm {}",
                c.warmup, c.weight_decay, c.clip_norm
            );
            format!("d_model {}", c.d_model)
        }
    };
    println!(
        "sizes: {} subwords, {}, {} parameters, {:.1} MB",
        clf.tokenizer().vocab_size(),
        shape,
        clf.model().num_parameters(),
        disk as f64 / 1e6
    );
    println!(
        "bundle: format {}, written by khabar {}",
        c.format_version, c.khabar_version
    );
    if let Some(t) = &c.training {
        println!("trained: {} on {}", t.started_at, t.data.join(", "));
        println!(
            "  {} training examples, {} validation ({}), seed {}, {} threads",
            t.train_examples, t.valid_examples, t.valid, t.seed, t.threads
        );
        if t.valid_examples == 0 {
            println!("  {} epochs, {:.1} s", t.epochs, t.seconds);
        } else {
            println!(
                "  best epoch {} of {}, {:.1} s; validation accuracy {:.4}, macro-F1 {:.4}",
                t.best_epoch, t.epochs, t.seconds, t.valid_accuracy, t.valid_macro_f1
            );
        }
        if t.refit {
            println!(
                "  then trained again on all {} examples (validation cut included) for {} epochs",
                t.train_examples, t.best_epoch
            );
        }
    }
    Ok(())
}
