//! The library API: train, save, load, predict, and checked bundles.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use khabar::{ArchConfig, Classifier, Corpus, Error, Loss, TrainConfig, Trainer};

mod common;

use common::{classifier, corpus, test_texts};

/// A `bow` model with an embedding table (`dim` 64), as trained (not compacted), which
/// compaction folds into the head.
fn factored_classifier() -> &'static Classifier {
    static CLF: OnceLock<Classifier> = OnceLock::new();
    CLF.get_or_init(|| {
        let config = TrainConfig {
            compact: false,
            ..TrainConfig::for_arch(ArchConfig::Bow(khabar::BowConfig {
                dim: 64,
                loss: Loss::Softmax,
                ..Default::default()
            }))
        };
        Trainer::new(config).train(&corpus("train.jsonl")).unwrap()
    })
}

#[test]
fn save_and_load_give_the_same_predictions() {
    let clf = classifier();
    let dir = tempfile::tempdir().unwrap();
    clf.save(dir.path().join("m")).unwrap();
    let loaded = Classifier::load(dir.path().join("m")).unwrap();
    assert_eq!(loaded.labels(), clf.labels());
    for text in test_texts() {
        assert_eq!(
            loaded.probabilities(&text).unwrap(),
            clf.probabilities(&text).unwrap()
        );
    }
}

/// A loaded linear model keeps its table only in the rows prediction reads; saving it again
/// writes the same weights.
#[test]
fn a_loaded_model_saves_the_same_weights() {
    let clf = classifier();
    let dir = tempfile::tempdir().unwrap();
    clf.save(dir.path().join("a")).unwrap();
    let loaded = Classifier::load(dir.path().join("a")).unwrap();
    loaded.save(dir.path().join("b")).unwrap();
    let bytes = |m: &str| std::fs::read(dir.path().join(m).join("model.safetensors")).unwrap();
    assert!(bytes("a") == bytes("b"));
}

#[test]
fn predictions_are_probabilities_sorted_by_score() {
    let clf = classifier();
    for text in test_texts().iter().take(20) {
        let p = clf.predict(text).unwrap();
        assert_eq!(p.top.len(), clf.labels().len());
        assert_eq!(p.top[0].label, p.label);
        assert_eq!(p.top[0].score, p.score);
        let sum: f32 = p.top.iter().map(|t| t.score).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        assert!(p.top.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(p.top.iter().all(|t| t.score.is_finite() && t.score >= 0.0));
    }
    // Text with nothing the model knows still gets a proper distribution.
    for odd in ["", "   ", "🚀🚀🚀", "\u{0}\u{1}"] {
        let p = clf.predict(odd).unwrap();
        let sum: f32 = p.top.iter().map(|t| t.score).sum();
        assert!((sum - 1.0).abs() < 1e-4);
    }
}

#[test]
fn batch_prediction_keeps_order_and_matches_single_predictions() {
    let clf = classifier();
    let texts = test_texts();
    let batch = clf.predict_batch(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (text, p) in texts.iter().zip(&batch) {
        assert_eq!(&clf.predict(text).unwrap(), p);
    }
}

#[test]
fn one_classifier_serves_many_threads() {
    let clf = classifier();
    let texts = test_texts();
    let want = clf.predict_batch(&texts).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    texts
                        .iter()
                        .map(|t| clf.predict(t).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), want);
        }
    });
}

#[test]
fn the_model_learns_the_topics() {
    let clf = classifier();
    let test = corpus("test.jsonl");
    let correct = test
        .examples
        .iter()
        .filter(|e| clf.predict(&e.text).unwrap().label == e.label)
        .count();
    // Six labels: chance is about 0.17.
    assert!(correct * 10 > test.len() * 7, "{correct}/{}", test.len());
}

/// `Classifier::evaluate` on a corpus whose predictions are known: a model trained on two
/// clearly separate topics, evaluated on articles of those topics, some labeled wrongly and one
/// with a label the model does not know.
#[test]
fn evaluate_counts_known_predictions() {
    use khabar::Example;
    let mut examples = Vec::new();
    for i in 0..20 {
        examples.push(Example::new(
            format!("the striker scored a goal in match {i}"),
            "sports",
        ));
        examples.push(Example::new(
            format!("shares and markets rose in trading {i}"),
            "business",
        ));
    }
    let config = TrainConfig {
        valid_fraction: 0.0,
        ..TrainConfig::default()
    };
    let clf = Trainer::new(config)
        .train(&Corpus::from_examples(examples))
        .unwrap();
    assert_eq!(clf.labels(), ["business", "sports"]);

    let (sports, business) = (
        "a late goal won the match for the striker",
        "markets fell as shares slid in trading",
    );
    let corpus = Corpus::from_examples(vec![
        Example::new(sports, "sports"),
        Example::new(sports, "sports"),
        Example::new(business, "sports"),
        Example::new(business, "business"),
        Example::new(business, "business"),
        Example::new(sports, "weather"),
    ]);
    assert_eq!(clf.predict(sports).unwrap().label, "sports");
    assert_eq!(clf.predict(business).unwrap().label, "business");

    let eval = clf.evaluate(&corpus).unwrap();
    // The model's labels, then the unknown one.
    assert_eq!(eval.labels, ["business", "sports", "weather"]);
    // Rows: true label; columns: predicted.
    assert_eq!(eval.confusion, [[2, 0, 0], [1, 2, 0], [0, 1, 0]]);
    assert_eq!(eval.n(), 6);
    assert!((eval.accuracy() - 4.0 / 6.0).abs() < 1e-12);
    let per = eval.per_class();
    // business: 2 of the 3 predicted are right, both found; sports: 2 of 3, 2 of 3 found;
    // weather: never predicted, its one example missed (F1 0, and it counts in the mean).
    let f1 = [0.8, 2.0 / 3.0, 0.0];
    for (m, f1) in per.iter().zip(f1) {
        assert!((m.f1 - f1).abs() < 1e-12, "{m:?} {f1}");
    }
    assert_eq!(per.iter().map(|m| m.support).collect::<Vec<_>>(), [2, 3, 1]);
    assert!((eval.macro_f1() - (0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
}

fn saved_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    classifier().save(&m).unwrap();
    (dir, m)
}

fn load_error(dir: &Path) -> String {
    match Classifier::load(dir) {
        Err(e @ Error::Bundle { .. }) => e.to_string(),
        Err(e) => panic!("expected a bundle error, got {e}"),
        Ok(_) => panic!("a damaged bundle loaded"),
    }
}

#[test]
fn damaged_bundles_are_refused_with_the_file_named() {
    // Truncated weights.
    let (_d, m) = saved_copy();
    let w = m.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    assert!(load_error(&m).contains("model.safetensors"));

    // A label list that does not match the head.
    let (_d, m) = saved_copy();
    let c = m.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&c).unwrap()).unwrap();
    config["labels"]
        .as_array_mut()
        .unwrap()
        .push("extra".into());
    std::fs::write(&c, serde_json::to_vec(&config).unwrap()).unwrap();
    let e = load_error(&m);
    assert!(e.contains("head.weight") && e.contains("labels"), "{e}");

    // A newer format.
    let (_d, m) = saved_copy();
    let c = m.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&c).unwrap()).unwrap();
    config["format_version"] = 99.into();
    std::fs::write(&c, serde_json::to_vec(&config).unwrap()).unwrap();
    let e = load_error(&m);
    assert!(e.contains("config.json") && e.contains("newer"), "{e}");

    // A setting this build does not know, as a newer khabar may write.
    let (_d, m) = saved_copy();
    let c = m.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&c).unwrap()).unwrap();
    config["architecture"]["future_setting"] = 1.into();
    std::fs::write(&c, serde_json::to_vec(&config).unwrap()).unwrap();
    let e = load_error(&m);
    assert!(
        e.contains("config.json") && e.contains("future_setting") && e.contains("upgrade khabar"),
        "{e}"
    );

    // A hyperparameter out of range: the fault is the config file's, not the weights'.
    let (_d, m) = saved_copy();
    let c = m.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&c).unwrap()).unwrap();
    config["architecture"]["ngram_order"] = 0.into();
    std::fs::write(&c, serde_json::to_vec(&config).unwrap()).unwrap();
    let e = load_error(&m);
    assert!(
        e.contains("config.json")
            && e.contains("architecture.ngram_order")
            && e.contains("between 1 and 6")
            && !e.contains("safetensors"),
        "{e}"
    );

    // A tokenizer that does not parse.
    let (_d, m) = saved_copy();
    std::fs::write(m.join("tokenizer.json"), "{ broken").unwrap();
    assert!(load_error(&m).contains("tokenizer.json"));

    // A missing file.
    let (_d, m) = saved_copy();
    std::fs::remove_file(m.join("config.json")).unwrap();
    assert!(load_error(&m).contains("config.json"));
}

/// `bundle::check_out_dir` accepts what a save may write over (nothing, an empty directory, a
/// bundle) and refuses the rest, and a save refuses the same.
#[test]
fn saving_refuses_what_is_not_a_bundle() {
    use khabar::bundle::check_out_dir;
    let (dir, bundle) = saved_copy();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "keep me").unwrap();

    for ok in [dir.path().join("absent"), empty.clone(), bundle.clone()] {
        check_out_dir(&ok).unwrap();
    }
    for refused in [&other, &file] {
        match check_out_dir(refused) {
            Err(e @ Error::Usage(_)) => {
                assert!(e.to_string().contains("not a khabar model bundle"), "{e}");
                assert_eq!(e.exit_code(), 2);
            }
            r => panic!("{}: expected a usage error, got {r:?}", refused.display()),
        }
        assert!(matches!(classifier().save(refused), Err(Error::Usage(_))));
    }
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    classifier().save(&empty).unwrap();
    classifier().save(&bundle).unwrap();
}

#[test]
fn compact_models_predict_the_same() {
    use khabar::CompactOptions;
    let clf = factored_classifier();
    let folded = clf.compact(CompactOptions {
        fold: true,
        ..Default::default()
    });
    let small = clf.compact(CompactOptions {
        fold: true,
        half: true,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    small.save(dir.path().join("s")).unwrap();
    let small = Classifier::load(dir.path().join("s")).unwrap();
    let full_size = {
        clf.save(dir.path().join("f")).unwrap();
        std::fs::metadata(dir.path().join("f/model.safetensors"))
            .unwrap()
            .len()
    };
    let small_size = std::fs::metadata(dir.path().join("s/model.safetensors"))
        .unwrap()
        .len();
    assert!(small_size * 5 < full_size, "{small_size} vs {full_size}");
    for text in test_texts() {
        let p = clf.probabilities(&text).unwrap();
        for (q, tol) in [
            (folded.probabilities(&text).unwrap(), 1e-5),
            (small.probabilities(&text).unwrap(), 2e-2),
        ] {
            for (a, b) in p.iter().zip(&q) {
                assert!((a - b).abs() < tol, "{a} vs {b}");
            }
        }
    }
    // Pruning n-gram rows keeps the model usable and smaller.
    let pruned = clf.compact(CompactOptions {
        fold: true,
        max_ngrams: Some(10),
        ..Default::default()
    });
    pruned.save(dir.path().join("p")).unwrap();
    let pruned = Classifier::load(dir.path().join("p")).unwrap();
    assert!(pruned.predict("a late goal won the final").is_ok());
}

/// `Trainer::train` gives the model that `khabar train` saves: folded, in half precision,
/// with `keep_ngrams` of the n-gram rows, the same as compacting the model as trained.
#[test]
fn training_compacts_the_model_as_the_cli_does() {
    use khabar::model::Model;
    let ngrams = |clf: &Classifier| match clf.model() {
        Model::Bow(b) => b.num_ngrams(),
        _ => panic!("a bow model"),
    };
    let half = |clf: &Classifier| match &clf.config().architecture {
        ArchConfig::Bow(c) => c.half,
        _ => panic!("a bow model"),
    };
    // Uncalibrated: the calibration of a model trained without compaction comes from folds
    // trained without it, and would differ.
    let train = |config: TrainConfig| {
        Trainer::new(TrainConfig {
            calibration_folds: 0,
            ..config
        })
        .train(&corpus("train.jsonl"))
    };
    let full = train(TrainConfig {
        compact: false,
        ..TrainConfig::default()
    })
    .unwrap();
    let n = ngrams(&full);
    let clf = &train(TrainConfig::default()).unwrap();
    let kept = (n as f64 * 0.75).round() as usize;
    assert!(kept < n);
    assert_eq!(ngrams(clf), kept);
    assert!(half(clf) && !half(&full));
    let by_hand = full.compact(khabar::CompactOptions {
        fold: true,
        half: true,
        max_ngrams: Some(kept),
    });
    for text in test_texts() {
        assert_eq!(
            clf.probabilities(&text).unwrap(),
            by_hand.probabilities(&text).unwrap()
        );
    }
    let every_row = train(TrainConfig {
        keep_ngrams: 1.0,
        ..TrainConfig::default()
    })
    .unwrap();
    assert_eq!(ngrams(&every_row), n);
    assert!(half(&every_row));
    for bad in [0.0, 1.5, -1.0, f64::NAN] {
        let e = train(TrainConfig {
            keep_ngrams: bad,
            ..TrainConfig::default()
        })
        .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Config {
                    field: "keep_ngrams",
                    ..
                }
            ),
            "{bad}: {e}"
        );
    }
}

#[test]
fn the_default_bow_is_linear_and_trains_on_all_the_data() {
    let clf = classifier();
    let ArchConfig::Bow(bow) = &clf.config().architecture else {
        panic!("the default architecture is bow");
    };
    // One column per label, identity head: folding changes nothing.
    assert_eq!(bow.dim, clf.labels().len());
    assert!(bow.folded);
    // The SVMs (nb-svm) train to their optimum on every example: nothing is held out.
    assert_eq!(bow.loss, Loss::NbSvm);
    let training = clf.config().training.as_ref().unwrap();
    assert!(!training.refit);
    assert_eq!(training.train_examples, corpus("train.jsonl").len());
    assert_eq!(training.valid_examples, 0);
    assert_eq!(training.best_epoch, training.epochs);
    let folded = clf.compact(khabar::CompactOptions {
        fold: true,
        ..Default::default()
    });
    for text in test_texts() {
        assert_eq!(
            clf.probabilities(&text).unwrap(),
            folded.probabilities(&text).unwrap()
        );
    }
    // Without refit, the model keeps to the data outside the validation cut, and reports on it.
    let no_refit = Trainer::new(TrainConfig {
        refit: false,
        ..TrainConfig::default()
    })
    .train(&corpus("train.jsonl"))
    .unwrap();
    let t = no_refit.config().training.as_ref().unwrap();
    assert!(!t.refit);
    assert!(t.valid_examples > 0 && t.valid_accuracy > 0.5, "{t:?}");
    assert_eq!(
        t.train_examples + t.valid_examples,
        corpus("train.jsonl").len()
    );
    // The softmax loss chooses its epoch count on a cut, then trains again on everything.
    let softmax = Trainer::new(TrainConfig::for_arch(ArchConfig::Bow(khabar::BowConfig {
        loss: Loss::Softmax,
        ..Default::default()
    })))
    .train(&corpus("train.jsonl"))
    .unwrap();
    let t = softmax.config().training.as_ref().unwrap();
    assert!(t.refit);
    assert_eq!(t.train_examples, corpus("train.jsonl").len());
    assert!(t.valid_examples > 0);
}

#[test]
fn probabilities_batch_matches_one_at_a_time_in_order() {
    let clf = classifier();
    let texts = test_texts();
    let batch = clf.probabilities_batch(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (t, p) in texts.iter().zip(&batch) {
        assert_eq!(&clf.probabilities(t).unwrap(), p);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}

/// Texts sent to several models in turn (one per language, say) get what each model gives
/// alone, with as many models as a thread keeps word caches for and more (each compacted
/// model numbers its rows differently, so a word's rows taken from another model's cache would
/// show).
#[test]
fn texts_alternating_between_models_score_as_with_each_model_alone() {
    let clf = classifier();
    let mut models = vec![clf.clone()];
    for rows in [50, 100, 200, 400, 800] {
        models.push(clf.compact(khabar::CompactOptions {
            fold: true,
            max_ngrams: Some(rows),
            ..Default::default()
        }));
    }
    let texts = test_texts();
    let alone: Vec<Vec<Vec<f32>>> = models
        .iter()
        .map(|m| texts.iter().map(|t| m.probabilities(t).unwrap()).collect())
        .collect();
    assert_ne!(alone[0], alone[1]);
    for order in [
        vec![0, 1],
        vec![0, 1, 2, 3, 4, 5],
        vec![5, 3, 1, 0, 2, 4, 1, 0],
    ] {
        for (i, t) in texts.iter().enumerate() {
            for &m in &order {
                assert_eq!(
                    models[m].probabilities(t).unwrap(),
                    alone[m][i],
                    "model {m}, text {i}"
                );
            }
        }
    }
}

/// What training reports to a `TrainProgress`, in order: its lines, then each run of epochs
/// with its steps (as many per epoch as announced) and epoch lines, then the result.
#[test]
fn training_reports_its_progress() {
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone, PartialEq)]
    enum Event {
        Message(String),
        RunStarted(usize, usize),
        EpochStarted(usize, usize),
        Step,
        EpochFinished(usize, String),
        RunFinished,
    }

    #[derive(Default)]
    struct Log(Mutex<Vec<Event>>);

    impl khabar::TrainProgress for Log {
        fn message(&self, line: &str) {
            self.0.lock().unwrap().push(Event::Message(line.into()));
        }
        fn run_started(&self, epochs: usize, steps_per_epoch: usize) {
            let event = Event::RunStarted(epochs, steps_per_epoch);
            self.0.lock().unwrap().push(event);
        }
        fn epoch_started(&self, epoch: usize, epochs: usize) {
            let event = Event::EpochStarted(epoch, epochs);
            self.0.lock().unwrap().push(event);
        }
        fn step_done(&self) {
            self.0.lock().unwrap().push(Event::Step);
        }
        fn epoch_finished(&self, epoch: usize, summary: &str) {
            let event = Event::EpochFinished(epoch, summary.into());
            self.0.lock().unwrap().push(event);
        }
        fn run_finished(&self) {
            self.0.lock().unwrap().push(Event::RunFinished);
        }
    }

    // Softmax on all the data, no validation: every one of the 3 epochs runs.
    let log = Arc::new(Log::default());
    let config = TrainConfig {
        epochs: 3,
        patience: 10,
        valid_fraction: 0.0,
        progress: Some(log.clone()),
        ..TrainConfig::for_arch(ArchConfig::Bow(khabar::BowConfig {
            loss: Loss::Softmax,
            ..Default::default()
        }))
    };
    // A config with a progress receiver is still Debug and Clone.
    assert!(format!("{:?}", config.clone()).contains("progress: Some(TrainProgress)"));
    Trainer::new(config).train(&corpus("train.jsonl")).unwrap();
    let events = log.0.lock().unwrap().clone();

    let start = events
        .iter()
        .position(|e| matches!(e, Event::RunStarted(..)))
        .expect("a run of epochs");
    let Event::RunStarted(3, steps) = events[start] else {
        panic!("{:?}", events[start]);
    };
    // 300 examples in batches of 64.
    assert_eq!(steps, 5);
    let lines = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Message(m) => m.clone(),
                e => panic!("only lines outside a run, got {e:?}"),
            })
            .collect()
    };
    let before = lines(&events[..start]);
    assert!(before[0].starts_with("tokenizer: "), "{before:?}");
    assert!(before[1].starts_with("training bow (--loss softmax) on 300 examples, 6 labels"));

    let mut expected = vec![Event::RunStarted(3, 5)];
    for epoch in 1..=3 {
        expected.push(Event::EpochStarted(epoch, 3));
        expected.extend(std::iter::repeat_n(Event::Step, steps));
        let Event::EpochFinished(n, summary) = &events[start + expected.len()] else {
            panic!("{:?}", &events[start + expected.len()]);
        };
        assert!(
            summary.starts_with(&format!("epoch {epoch}/3: loss ")),
            "{summary}"
        );
        expected.push(Event::EpochFinished(*n, summary.clone()));
    }
    expected.push(Event::RunFinished);
    assert_eq!(events[start..start + expected.len()], expected[..]);

    let after = lines(&events[start + expected.len()..]);
    assert!(after[0].starts_with("done in "), "{after:?}");
    assert!(after[0].ends_with(": 3 epochs"), "{after:?}");
    assert!(after[1].starts_with("kept "), "{after:?}");
    // Then the calibration: two silent trainings without a fold each (no run events), and
    // what they found.
    for fold in 1..=2 {
        assert_eq!(
            after[1 + fold],
            format!("calibrating the probabilities: training without fold {fold} of 2")
        );
    }
    assert!(after[4].starts_with("calibrated in "), "{after:?}");
    assert!(after[4].contains("2-fold held-out accuracy"), "{after:?}");
    assert_eq!(after.len(), 5, "{after:?}");
}

/// Training and batch prediction run on the threads asked for, in khabar's own pools, and
/// leave the process environment as they found it (candle's variables included). A thread
/// count of zero is a setting error.
#[test]
fn threads_are_the_callers_setting_and_the_environment_is_left_alone() {
    let before: Vec<Option<std::ffi::OsString>> = ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"]
        .iter()
        .map(std::env::var_os)
        .collect();
    let clf = Trainer::new(TrainConfig {
        threads: Some(1),
        ..TrainConfig::default()
    })
    .train(&corpus("train.jsonl"))
    .unwrap();
    assert_eq!(clf.config().training.as_ref().unwrap().threads, 1);
    assert_eq!(clf.threads(), 1);
    let texts = test_texts();
    let one = clf.predict_batch(&texts).unwrap();
    let three = clf.clone().with_threads(Some(3));
    assert_eq!(three.threads(), 3);
    assert_eq!(three.predict_batch(&texts).unwrap(), one);
    let after: Vec<Option<std::ffi::OsString>> = ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"]
        .iter()
        .map(std::env::var_os)
        .collect();
    assert_eq!(before, after);
    let e = Trainer::new(TrainConfig {
        threads: Some(0),
        ..TrainConfig::default()
    })
    .train(&corpus("train.jsonl"))
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Config {
                field: "threads",
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        clf.with_threads(Some(0)).predict_batch(&texts),
        Err(Error::Config {
            field: "threads",
            ..
        })
    ));
}

/// Examples made in code without a label are refused at training, naming the example, and an
/// empty corpus cannot be evaluated (rather than scoring 0).
#[test]
fn examples_without_a_label_and_empty_evaluations_are_refused() {
    use khabar::Example;
    for bad in [
        Example::new("the striker scored", ""),
        Example::with_labels("the striker scored", vec![]),
    ] {
        let mut examples = corpus("train.jsonl").examples;
        examples.insert(2, bad);
        let err = Trainer::new(TrainConfig {
            calibration_folds: 0,
            ..TrainConfig::default()
        })
        .train(&Corpus::from_examples(examples))
        .unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err:?}");
        assert!(err.to_string().contains("example 3"), "{err}");
        assert!(err.to_string().contains("empty label"), "{err}");
    }
    let err = classifier()
        .evaluate(&Corpus::from_examples(Vec::new()))
        .unwrap_err();
    assert!(err.to_string().contains("no articles"), "{err}");
}
