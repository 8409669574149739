//! The architectures that read the pretrained encoder (`encoder`, `hybrid`), trained on the
//! repository's own small corpus (data/news: 300 training and 96 test headlines and sentences,
//! English and Hindi, 6 labels), through the library and the command line.

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::{corpus, data, khabar, stderr, stdout};
use khabar::model::{EncoderArchConfig, HybridConfig, Mode, Model};
use khabar::{
    ArchConfig, Classifier, Copies, Corpus, Error, Example, FeatureKind, TrainConfig,
    TrainProgress, Trainer,
};

/// Keeps the lines training reports, and the pieces it says it encoded.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    pieces: Mutex<(usize, usize)>,
}

impl TrainProgress for Log {
    fn message(&self, line: &str) {
        self.lines.lock().unwrap().push(line.to_string());
    }
    fn encoding_started(&self, _texts: usize, tokens: usize) {
        self.pieces.lock().unwrap().0 += tokens;
    }
    fn encoded(&self, tokens: usize) {
        self.pieces.lock().unwrap().1 += tokens;
    }
}

impl Log {
    fn says(&self, part: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l.contains(part))
    }
}

fn config(arch: ArchConfig) -> TrainConfig {
    TrainConfig::for_arch(arch)
}

fn hybrid_config() -> TrainConfig {
    config(ArchConfig::Hybrid(HybridConfig::default()))
}

/// The hybrid trained on data/news/train.jsonl, once for this file.
fn hybrid() -> &'static Classifier {
    static CLF: OnceLock<Classifier> = OnceLock::new();
    CLF.get_or_init(|| {
        Trainer::new(hybrid_config())
            .train(&corpus("train.jsonl"))
            .unwrap()
    })
}

fn accuracy(clf: &Classifier, test: &Corpus) -> f64 {
    clf.evaluate(test).unwrap().accuracy()
}

/// Only the examples of one language (the corpus's `lang` field), by their text's script.
fn only(c: &Corpus, hindi: bool) -> Corpus {
    let is_hindi = |t: &str| t.chars().any(|ch| ('\u{0900}'..='\u{097F}').contains(&ch));
    Corpus::from_examples(
        c.examples
            .iter()
            .filter(|e| is_hindi(&e.text) == hindi)
            .cloned()
            .collect(),
    )
}

#[test]
fn the_hybrid_learns_the_repository_corpus_at_least_as_well_as_bow() {
    let test = corpus("test.jsonl");
    let hybrid_acc = accuracy(hybrid(), &test);
    let bow_acc = accuracy(common::classifier(), &test);
    eprintln!("data/news test: hybrid {hybrid_acc:.4}, bow {bow_acc:.4}");
    assert!(hybrid_acc >= 0.95, "hybrid accuracy {hybrid_acc}");
    assert!(hybrid_acc >= bow_acc, "hybrid {hybrid_acc} < bow {bow_acc}");
    let Model::Hybrid(h) = hybrid().model() else {
        panic!("not a hybrid: {:?}", hybrid().config().architecture)
    };
    let [bow_weight, encoder_weight] = h.scales();
    assert!(
        encoder_weight > 0.0,
        "the encoder's weight is {encoder_weight}"
    );
    assert!(bow_weight >= 0.0);
    // The bundle names the built-in encoder.
    let id = hybrid().config().encoder.clone().unwrap();
    assert_eq!(id, khabar::model::Encoder::builtin().unwrap().id());
    assert_eq!(id.name, "multilingual-e5-small");
}

/// A hybrid's explanation: its bow part's features (weighted as the hybrid weighs that part)
/// and one term for the encoder, which with the bias add up to the hybrid's logit.
#[test]
fn the_hybrids_explanation_adds_up_and_has_the_encoders_share() {
    // Both parts on every text (the default cascade may answer some with the bow part alone).
    let accurate = hybrid().clone().with_mode(Mode::Accurate);
    let clf = &accurate;
    let [bow_weight, _] = match clf.model() {
        Model::Hybrid(h) => h.scales(),
        _ => unreachable!("a hybrid"),
    };
    let texts = common::test_texts();
    let explained = clf.explain_batch(&texts[..12], 10_000).unwrap();
    for (text, e) in texts.iter().zip(&explained) {
        let p = clf.predict(text).unwrap();
        assert_eq!(e.label, p.label);
        assert!((e.score - p.score).abs() < 1e-5, "{text:?}");
        let listed: Vec<_> = e.raised.iter().chain(&e.lowered).collect();
        let encoder: Vec<_> = listed
            .iter()
            .filter(|c| c.kind == FeatureKind::Encoder)
            .collect();
        assert_eq!(encoder.len(), 1, "{text:?}: {listed:?}");
        assert_eq!(encoder[0].feature, "sentence vector");
        if bow_weight > 0.0 {
            assert!(listed.len() > 1, "{text:?}: bow features too");
        }
        let sum = e.bias as f64 + listed.iter().map(|c| c.weight as f64).sum::<f64>();
        let size = e.bias.abs() as f64 + listed.iter().map(|c| c.weight.abs() as f64).sum::<f64>();
        assert_eq!(e.other, 0.0);
        assert!(
            (sum - e.logit as f64).abs() <= 1e-4 * size.max(1.0),
            "{text:?}: {sum} vs {}",
            e.logit
        );
    }
    // Probabilities and explanations together (what `predict --explain` and the server use):
    // the same as each alone, in every mode.
    for mode in [Mode::Fast, Mode::Cascade, Mode::Accurate] {
        let clf = hybrid().clone().with_mode(mode);
        let (probs, why) = clf.probabilities_and_explanations(&texts[..12], 5).unwrap();
        assert_eq!(
            probs,
            clf.probabilities_batch(&texts[..12]).unwrap(),
            "{mode:?}"
        );
        assert_eq!(why, clf.explain_batch(&texts[..12], 5).unwrap(), "{mode:?}");
    }
    // One at a time gives what the batch gives (the text encoded alone).
    let one = clf.explain(&texts[3], 10_000).unwrap();
    let b = &explained[3];
    assert_eq!(one.label, b.label);
    assert!(
        (one.logit - b.logit).abs() < 1e-4,
        "{} vs {}",
        one.logit,
        b.logit
    );
}

/// The three ways a hybrid answers: its bow part alone (`Fast`), the cascade (the bow part
/// alone where it is sure enough, both parts elsewhere; the default), both parts always.
#[test]
fn the_cascade_answers_alone_only_where_the_bow_part_is_sure() {
    let clf = hybrid();
    assert_eq!(clf.mode(), Mode::Cascade);
    let Model::Hybrid(h) = clf.model() else {
        panic!("not a hybrid")
    };
    let cascade = h.cascade().expect("a hybrid trained now has a cascade");
    assert!(cascade.scale > 0.0, "{cascade:?}");
    // Short texts (headlines, sentences) have their own threshold, never lower.
    assert_eq!(cascade.short_words, 30);
    assert!(cascade.short_confident >= cascade.confident, "{cascade:?}");
    let texts = common::test_texts();
    let fast = clf.clone().with_mode(Mode::Fast);
    let accurate = clf.clone().with_mode(Mode::Accurate);
    let p_fast = fast.probabilities_batch(&texts).unwrap();
    let p_accurate = accurate.probabilities_batch(&texts).unwrap();
    let p_cascade = clf.probabilities_batch(&texts).unwrap();
    let mut alone = 0;
    for (i, text) in texts.iter().enumerate() {
        let top = p_fast[i].iter().copied().fold(0.0, f32::max);
        if top >= cascade.threshold(text) {
            alone += 1;
            assert_eq!(p_cascade[i], p_fast[i], "{text}");
        } else {
            assert_eq!(p_cascade[i], p_accurate[i], "{text}");
        }
        // One text at a time answers as the batch does, in each mode.
        if i % 8 == 0 {
            for (c, batch) in [
                (clf, &p_cascade),
                (&fast, &p_fast),
                (&accurate, &p_accurate),
            ] {
                let one = c.probabilities(text).unwrap();
                for (a, b) in one.iter().zip(&batch[i]) {
                    assert!((a - b).abs() < 1e-5, "{:?} {text}", c.mode());
                }
            }
        }
    }
    eprintln!(
        "cascade {cascade:?}: {alone} of {} test texts answered by the bow part alone",
        texts.len()
    );
    // The fast mode is the bow part alone: no encoder term in its explanations, which add up.
    let e = fast.explain(&texts[5], 10_000).unwrap();
    let listed: Vec<_> = e.raised.iter().chain(&e.lowered).collect();
    assert!(listed.iter().all(|c| c.kind != FeatureKind::Encoder));
    let sum = e.bias + listed.iter().map(|c| c.weight).sum::<f32>();
    assert!((sum - e.logit).abs() < 1e-4 * e.logit.abs().max(1.0));
    assert_eq!(
        fast.predict(&texts[5]).unwrap().label,
        e.label,
        "the explanation is of the fast answer"
    );
    // Saved and loaded, the cascade stays.
    let dir = tempfile::tempdir().unwrap();
    clf.save(dir.path()).unwrap();
    let loaded = Classifier::load(dir.path()).unwrap();
    let Model::Hybrid(l) = loaded.model() else {
        panic!("not a hybrid")
    };
    assert_eq!(l.cascade(), Some(cascade));
    let keep = |c: &Classifier| match &c.config().architecture {
        ArchConfig::Hybrid(h) => h.cascade_keep,
        other => panic!("not a hybrid: {other:?}"),
    };
    assert_eq!(keep(&loaded), 0.9);
    // A bundle saved before `cascade_keep` existed was trained with the tolerance alone: it
    // reads as 0, and keeps its threshold.
    let config_path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config_path).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let arch = config
        .get_mut("architecture")
        .and_then(|a| a.as_object_mut())
        .expect("config.json has the architecture's settings");
    assert!(arch.remove("cascade_keep").is_some(), "{arch:?}");
    std::fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();
    let old = Classifier::load(dir.path()).unwrap();
    assert_eq!(keep(&old), 0.0);
    let Model::Hybrid(o) = old.model() else {
        panic!("not a hybrid")
    };
    assert_eq!(o.cascade(), Some(cascade));
    // The command line: --fast and --accurate apply to hybrids, and not together.
    let model = dir.path();
    for mode in ["--fast", "--accurate"] {
        let out = khabar()
            .args(["predict", mode, "--model"])
            .arg(model)
            .arg(&texts[0])
            .output()
            .unwrap();
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
    }
    let out = khabar()
        .args(["predict", "--fast", "--accurate", "--model"])
        .arg(model)
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A bow model without a calibration, so without a threshold of its own.
    let bow = dir.path().join("bow");
    Trainer::new(TrainConfig {
        calibration_folds: 0,
        ..TrainConfig::default()
    })
    .train(&common::corpus("train.jsonl"))
    .unwrap()
    .save(&bow)
    .unwrap();
    let out = khabar()
        .args(["eval", "--fast", "--model"])
        .arg(&bow)
        .arg("--data")
        .arg(data("test.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--fast applies to hybrid models"),
        "{}",
        stderr(&out)
    );
    // --unsure: the model's own threshold, recorded at training.
    let below = clf
        .config()
        .unsure_below
        .expect("a hybrid records its threshold");
    assert!(below > 0.0 && below < 1.0, "{below}");
    let out = khabar()
        .args(["eval", "--unsure", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data("test.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("at --threshold {below}")),
        "{}",
        stdout(&out)
    );
    let out = khabar()
        .args(["predict", "--unsure", "--model"])
        .arg(&bow)
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("give --threshold P"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn what_the_encoder_learns_in_english_carries_to_hindi() {
    // Trained on the English examples only, scored on the Hindi ones: bow has never seen a
    // Hindi word, the encoder's vectors are shared between the languages.
    let train = only(&corpus("train.jsonl"), false);
    let hindi = only(&corpus("test.jsonl"), true);
    assert!(train.len() > 100 && hindi.len() > 30);
    let encoder = Trainer::new(config(ArchConfig::Encoder(EncoderArchConfig::default())))
        .train(&train)
        .unwrap();
    let bow = Trainer::new(TrainConfig::default()).train(&train).unwrap();
    let (enc_acc, bow_acc) = (accuracy(&encoder, &hindi), accuracy(&bow, &hindi));
    eprintln!("trained on English, scored on Hindi: encoder {enc_acc:.4}, bow {bow_acc:.4}");
    assert!(enc_acc >= 0.85, "encoder on Hindi: {enc_acc}");
    assert!(enc_acc > bow_acc + 0.3, "encoder {enc_acc}, bow {bow_acc}");
}

#[test]
fn the_hybrids_bow_part_takes_the_c_that_cross_validates_best() {
    let train = corpus("train.jsonl");
    let svm_c = |clf: &Classifier| match &clf.config().architecture {
        ArchConfig::Hybrid(h) => h.bow.svm_c,
        other => panic!("not a hybrid: {other:?}"),
    };
    // Candidates (given out of order): each scored, the smaller C kept unless the larger is
    // more accurate.
    let log = Arc::new(Log::default());
    let clf = Trainer::new(TrainConfig {
        hybrid_svm_c: vec![3.0, 0.05],
        progress: Some(log.clone()),
        ..hybrid_config()
    })
    .train(&train)
    .unwrap();
    let lines = log.lines.lock().unwrap().clone();
    let line = lines
        .iter()
        .find(|l| l.contains("by its bow part's C: "))
        .unwrap_or_else(|| panic!("no line on the candidates: {lines:?}"));
    let scored: Vec<(f32, f64)> = line
        .split("C: ")
        .nth(1)
        .unwrap()
        .split(", ")
        .map(|part| {
            let mut words = part.split_whitespace();
            assert_eq!(words.next(), Some("C"), "{line}");
            let c = words.next().unwrap().parse().unwrap();
            (c, words.next().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(scored.iter().map(|s| s.0).collect::<Vec<_>>(), [0.05, 3.0]);
    // The larger C only if it is more than a tenth of a point more accurate (the accuracies of
    // 300 documents are 1/300 apart).
    let best = if scored[1].1 > scored[0].1 + 0.001 {
        3.0
    } else {
        0.05
    };
    assert_eq!(svm_c(&clf), best, "{line}");
    // No candidates: the bow part's own C, and no line on candidates.
    let log = Arc::new(Log::default());
    let mut config = hybrid_config();
    if let ArchConfig::Hybrid(h) = &mut config.arch {
        h.bow.svm_c = 0.7;
    }
    let clf = Trainer::new(TrainConfig {
        hybrid_svm_c: Vec::new(),
        progress: Some(log.clone()),
        ..config
    })
    .train(&train)
    .unwrap();
    assert_eq!(svm_c(&clf), 0.7);
    assert!(!log.says("by its bow part's C"));
    assert!(log.says("(C 0.7)"), "{:?}", log.lines);
    // A candidate that is not a positive number is refused before training.
    let e = Trainer::new(TrainConfig {
        hybrid_svm_c: vec![1.0, -1.0],
        ..hybrid_config()
    })
    .train(&train)
    .unwrap_err();
    assert!(e.to_string().contains("hybrid_svm_c"), "{e}");
}

#[test]
fn saved_and_loaded_models_predict_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let texts = common::test_texts();
    for (name, clf) in [
        ("hybrid", hybrid().clone()),
        (
            "encoder",
            Trainer::new(config(ArchConfig::Encoder(EncoderArchConfig {
                max_tokens: 64,
            })))
            .train(&corpus("train.jsonl"))
            .unwrap(),
        ),
    ] {
        let path = dir.path().join(name);
        clf.save(&path).unwrap();
        let loaded = Classifier::load(&path).unwrap();
        assert_eq!(loaded.config().architecture, clf.config().architecture);
        assert_eq!(
            loaded.probabilities_batch(&texts).unwrap(),
            clf.probabilities_batch(&texts).unwrap(),
            "{name}"
        );
        // One text at a time (encoded alone) gives what the batch gives.
        let one = loaded.probabilities(&texts[3]).unwrap();
        let batch = &loaded.probabilities_batch(&texts[..8]).unwrap()[3];
        for (a, b) in one.iter().zip(batch) {
            assert!((a - b).abs() < 1e-5, "{name}: {one:?} vs {batch:?}");
        }
        // Explained: the encoder's share (the encoder model's only term) and the bias add up.
        let e = loaded
            .clone()
            .with_mode(Mode::Accurate)
            .explain(&texts[3], 10_000)
            .unwrap();
        let listed: Vec<_> = e.raised.iter().chain(&e.lowered).collect();
        assert!(listed.iter().any(|c| c.kind == FeatureKind::Encoder));
        if name == "encoder" {
            assert_eq!(listed.len(), 1, "{listed:?}");
        }
        let sum = e.bias + listed.iter().map(|c| c.weight).sum::<f32>();
        assert!(
            (sum - e.logit).abs() < 1e-4 * e.logit.abs().max(1.0),
            "{name}"
        );
    }
}

#[test]
fn a_bundle_that_names_another_encoder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m");
    hybrid().save(&path).unwrap();
    let config_path = path.join("config.json");
    let text = std::fs::read_to_string(&config_path).unwrap();
    let builtin = khabar::model::Encoder::builtin().unwrap().id();
    let other = "0".repeat(64);
    std::fs::write(&config_path, text.replace(&builtin.checksum, &other)).unwrap();
    let err = Classifier::load(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Bundle { .. }), "{err:?}");
    assert!(
        message.contains("trained with the encoder multilingual-e5-small (checksum 0000")
            && message.contains("--encoder DIR"),
        "{message}"
    );
    // No encoder named at all.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("encoder");
    std::fs::write(&config_path, v.to_string()).unwrap();
    let message = Classifier::load(&path).unwrap_err().to_string();
    assert!(message.contains("does not say which"), "{message}");
}

#[test]
fn training_again_reads_the_vectors_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let train = corpus("train.jsonl");
    let run = || {
        let log = Arc::new(Log::default());
        let clf = Trainer::new(TrainConfig {
            encoding_cache: Some(cache.path().to_path_buf()),
            progress: Some(log.clone()),
            ..config(ArchConfig::Encoder(EncoderArchConfig { max_tokens: 64 }))
        })
        .train(&train)
        .unwrap();
        (clf, log)
    };
    let (first, log1) = run();
    assert!(log1.says("0 of 300 texts found"));
    let (pieces, done) = *log1.pieces.lock().unwrap();
    assert!(pieces > 300 * 5 && done == pieces, "{pieces} {done}");
    let (second, log2) = run();
    assert!(log2.says("300 of 300 texts found"));
    assert_eq!(*log2.pieces.lock().unwrap(), (0, 0));
    let texts = common::test_texts();
    assert_eq!(
        first.probabilities_batch(&texts).unwrap(),
        second.probabilities_batch(&texts).unwrap()
    );
    // A damaged entry is dropped and its text encoded again, to the same model.
    let shard = std::fs::read_dir(cache.path())
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[40] ^= 0x55;
    std::fs::write(&shard, bytes).unwrap();
    let (third, log3) = run();
    assert!(
        log3.says("299 of 300 texts found (1 damaged"),
        "{:?}",
        log3.lines
    );
    assert_eq!(
        first.probabilities_batch(&texts).unwrap(),
        third.probabilities_batch(&texts).unwrap()
    );
}

/// The bytes of an encoding cache's shards under `root` (every cache in it).
fn cache_bytes(root: &std::path::Path) -> u64 {
    std::fs::read_dir(root)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn a_classifier_reads_and_keeps_test_vectors_in_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let texts = common::test_texts();
    let test = corpus("test.jsonl");
    let plain = hybrid().clone().with_mode(Mode::Accurate);
    let expected = plain.probabilities_batch(&texts).unwrap();
    let accuracy = plain.evaluate(&test).unwrap().accuracy();
    let cached = plain.with_encoding_cache(Some(cache.path().to_path_buf()));
    let bytes = || cache_bytes(cache.path());
    // The first call encodes and stores every text; the second reads them all back and
    // stores nothing; both give what the classifier without a cache gives.
    assert_eq!(cached.probabilities_batch(&texts).unwrap(), expected);
    let stored = bytes();
    assert!(stored as usize >= texts.len() * 384 * 4, "{stored} bytes");
    assert_eq!(cached.probabilities_batch(&texts).unwrap(), expected);
    assert_eq!(bytes(), stored);
    assert_eq!(cached.evaluate(&test).unwrap().accuracy(), accuracy);
}

#[test]
fn the_command_line_trains_and_predicts_with_the_hybrid() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    let cache = dir.path().join("cache");
    let out = khabar()
        .args(["train", "--arch", "hybrid", "--max-tokens", "64", "--data"])
        .arg(data("train.jsonl"))
        .arg("--out")
        .arg(&model)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("encoded 300 texts") && err.contains("5-fold cross-validation"),
        "{err}"
    );
    assert!(cache.join("encodings").is_dir());
    let out = khabar()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("मुख्यमंत्री ने विधानसभा में बजट पेश किया")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());
    // eval keeps the test texts' vectors in the same cache when asked, and scores the same.
    let eval = |cache: Option<&std::path::Path>| {
        let mut cmd = khabar();
        cmd.args(["eval", "--json", "--accurate", "--model"])
            .arg(&model)
            .arg("--data")
            .arg(data("test.jsonl"));
        if let Some(c) = cache {
            cmd.arg("--cache-dir").arg(c);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let stored = |dir: &std::path::Path| cache_bytes(&dir.join("encodings"));
    let before = stored(&cache);
    let uncached = eval(None);
    assert_eq!(eval(Some(&cache)), uncached);
    let after = stored(&cache);
    assert!(after > before, "eval stored no vectors");
    assert_eq!(eval(Some(&cache)), uncached);
    assert_eq!(stored(&cache), after, "the second eval encoded again");
    // predict reads the same cache (the test texts are all there now) and answers as without
    // it; a text it has not seen is encoded and stored.
    let predict = |cache: Option<&std::path::Path>, input: &std::path::Path| {
        let mut cmd = khabar();
        cmd.args(["predict", "--accurate", "--output", "jsonl", "--model"])
            .arg(&model)
            .arg("--input")
            .arg(input);
        if let Some(c) = cache {
            cmd.arg("--cache-dir").arg(c);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let test = data("test.jsonl");
    assert_eq!(predict(Some(&cache), &test), predict(None, &test));
    assert_eq!(
        stored(&cache),
        after,
        "predict encoded texts the cache holds"
    );
    let new = dir.path().join("new.txt");
    std::fs::write(
        &new,
        "A text that no earlier command of this test has read\n",
    )
    .unwrap();
    assert_eq!(predict(Some(&cache), &new), predict(None, &new));
    assert!(stored(&cache) > after, "predict stored no vector");
    let out = khabar()
        .args(["info", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(stdout(&out).contains("hybrid: the pretrained encoder multilingual-e5-small"));
    assert!(
        stdout(&out).contains("a threshold chosen at training with --cascade-keep 0.9 "),
        "{}",
        stdout(&out)
    );
    // Its bow part can be made smaller, and the smaller hybrid still loads and predicts.
    let small = dir.path().join("small");
    let out = khabar()
        .args(["compact", "--max-ngrams", "100", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(&small)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = khabar()
        .args(["predict", "--accurate", "--model"])
        .arg(&small)
        .arg("मुख्यमंत्री ने विधानसभा में बजट पेश किया")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn cross_validation_by_source_holds_out_whole_files() {
    let files = [data("train.jsonl"), data("test.jsonl")];
    let both = Corpus::read_all(&files, &khabar::ReadOptions::default()).unwrap();
    // Each example knows its file.
    let from = |s: u32| both.source_of.iter().filter(|&&x| x == s).count();
    assert_eq!((from(0), from(1), both.len()), (300, 96, 396));
    let log = Arc::new(Log::default());
    let clf = Trainer::new(TrainConfig {
        cv_by_source: true,
        progress: Some(log.clone()),
        ..config(ArchConfig::Encoder(EncoderArchConfig::default()))
    })
    .train(&both)
    .unwrap();
    let lines = log.lines.lock().unwrap().clone();
    let said = |part: &str| lines.iter().any(|l| l.contains(part));
    // Two files, two folds: each holds out one file whole, the larger first.
    assert!(
        said(&format!(
            "fold 1 of 2 holds out 300 examples: {}",
            files[0].display()
        )),
        "{lines:?}"
    );
    assert!(
        said(&format!(
            "fold 2 of 2 holds out 96 examples: {}",
            files[1].display()
        )),
        "{lines:?}"
    );
    assert!(
        said("2-fold cross-validation by source: encoder layer accuracy"),
        "{lines:?}"
    );
    let info = clf.config().training.as_ref().unwrap();
    assert_eq!(
        info.valid,
        "2-fold cross-validation by source of the training data"
    );
    assert_eq!(info.valid_examples, 396);
    assert!(info.valid_accuracy > 0.7, "{}", info.valid_accuracy);
    // A hybrid's weights come from the folds by source, its cascade from stratified folds:
    // the threshold it keeps is the one fitted there, not the one by source.
    let log = Arc::new(Log::default());
    let clf = Trainer::new(TrainConfig {
        cv_by_source: true,
        progress: Some(log.clone()),
        ..hybrid_config()
    })
    .train(&both)
    .unwrap();
    let lines = log.lines.lock().unwrap().clone();
    let line = |part: &str| {
        lines
            .iter()
            .find(|l| l.contains(part))
            .unwrap_or_else(|| panic!("no line with {part:?} in {lines:?}"))
            .clone()
    };
    let by_source = line("cascade on the folds by source: from a probability of ");
    assert!(
        by_source.contains("fitted instead on 5-fold stratified cross-validation"),
        "{by_source}"
    );
    let Model::Hybrid(h) = clf.model() else {
        panic!("a hybrid was asked for")
    };
    let kept =
        line("cascade (--cascade-keep 0.9): the bow part answers alone from a probability of");
    let cascade = h.cascade().unwrap();
    let threshold = format!("{:.3}", cascade.confident);
    assert!(
        kept.contains(&format!(
            "probability of {threshold} (texts of up to 30 words: {:.3}) on",
            cascade.short_confident
        )) && kept.contains("5-fold cross-validation accuracy")
            && !kept.contains("by source"),
        "{kept} (kept {threshold})"
    );
    // (The two thresholds differ here, so the check above tells them apart.)
    assert!(
        !by_source.contains(&format!("probability of {threshold} (")),
        "{by_source} (kept {threshold})"
    );
    assert_eq!(
        clf.config().training.as_ref().unwrap().valid,
        "2-fold cross-validation by source of the training data"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("note: by default")),
        "{lines:?}"
    );
    // The held-out scores by length band, on each kind of folds, cover every document once.
    for folds in [
        "5-fold cross-validation",
        "2-fold cross-validation by source",
    ] {
        let bands = line(&format!("  by length ({folds}): up to 30 words: "));
        let counted: usize = bands
            .split(" documents")
            .filter_map(|part| part.rsplit(' ').next()?.parse::<usize>().ok())
            .sum();
        assert_eq!(counted, 396, "{bands}");
    }
    // One file: nothing to hold out by source, said before any encoding.
    let e = Trainer::new(TrainConfig {
        cv_by_source: true,
        ..hybrid_config()
    })
    .train(&corpus("train.jsonl"))
    .unwrap_err();
    assert!(e.to_string().contains("two files or more"), "{e}");
    // A corpus built in memory does not know its examples' files.
    let e = Trainer::new(TrainConfig {
        cv_by_source: true,
        ..hybrid_config()
    })
    .train(&Corpus::from_examples(both.examples.clone()))
    .unwrap_err();
    assert!(e.to_string().contains("not one built in memory"), "{e}");
}

#[test]
fn cross_validation_deals_a_repeated_texts_copies_apart_unless_asked() {
    // Every training text given twice under one of four labels drawn at random, which only
    // memory can tell: dealt apart (the default), most copies are scored by a fold that
    // trained on their twin, which the encoder layer can remember (300 texts in 384
    // dimensions); kept together, a text and its twin are held out at once, and the held-out
    // accuracy is near chance.
    let once = corpus("train.jsonl");
    let random: Vec<Example> = once
        .examples
        .iter()
        .enumerate()
        .map(|(i, e)| Example::new(e.text.clone(), format!("l{}", (i * 7919 + 13) % 97 % 4)))
        .collect();
    let twice = Corpus::from_examples(random.iter().chain(&random).cloned().collect());
    let train = |copies: Copies| {
        let clf = Trainer::new(TrainConfig {
            cv_copies: copies,
            ..config(ArchConfig::Encoder(EncoderArchConfig::default()))
        })
        .train(&twice)
        .unwrap();
        clf.config().training.clone().unwrap()
    };
    let apart = train(Copies::Apart);
    let together = train(Copies::Together);
    assert_eq!(apart.valid, "5-fold cross-validation of the training data");
    assert_eq!(
        together.valid,
        "5-fold cross-validation (a repeated text's copies in one fold) of the training data"
    );
    assert_eq!((apart.valid_examples, together.valid_examples), (600, 600));
    assert!(
        together.valid_accuracy < 0.45 && apart.valid_accuracy > together.valid_accuracy + 0.2,
        "apart {} together {}",
        apart.valid_accuracy,
        together.valid_accuracy
    );
}

#[test]
fn options_of_other_architectures_are_refused() {
    for (args, says) in [
        (
            &["--max-tokens", "64"][..],
            "--max-tokens applies to --arch encoder and hybrid; bow does not use it",
        ),
        (
            &["--arch", "hybrid", "--heads", "2"][..],
            "--heads applies to --arch transformer; --arch hybrid does not use it",
        ),
        (
            &["--arch", "encoder", "--epochs", "3"][..],
            "--epochs does not apply to --arch encoder",
        ),
        (
            &["--arch", "encoder", "--ngrams", "3"][..],
            "--ngrams applies to bow and hybrid; --arch encoder does not use it",
        ),
        (
            &["--arch", "hybrid", "--no-cache", "--cache-dir", "x"][..],
            "not both",
        ),
        (
            &["--arch", "encoder", "--cascade-keep", "0.5"][..],
            "--cascade-keep applies to --arch hybrid (its cascade); --arch encoder has none",
        ),
        (
            &["--cv-by-source"][..],
            "--cv-by-source applies to --arch encoder and hybrid; bow does not use it",
        ),
        (
            &["--cv-copies-together"][..],
            "--cv-copies-together applies to --arch encoder and hybrid; bow does not use it",
        ),
        (
            &["--arch", "hybrid", "--cascade-keep", "1.5"][..],
            "must be between 0 and 1 (got 1.5)",
        ),
    ] {
        let out = khabar()
            .args(["train", "--data"])
            .arg(data("train.jsonl"))
            .args(["--out", "/nonexistent/never-written"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

/// Where the n-grams alone are as accurate as both parts (here a marker word decides the label
/// and the encoder's vector barely sees it), the cascade lets them answer every document, and
/// training says so: the default mode is then `--fast`.
#[test]
fn training_says_when_the_cascade_leaves_the_encoder_nothing() {
    let examples: Vec<Example> = corpus("train.jsonl")
        .examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (marker, label) = if i % 2 == 0 {
                ("zqxalpha", "even")
            } else {
                ("zqxbeta", "odd")
            };
            Example::new(format!("{} {marker}", e.text), label)
        })
        .collect();
    let log = Arc::new(Log::default());
    let clf = Trainer::new(TrainConfig {
        progress: Some(log.clone()),
        ..config(ArchConfig::Hybrid(HybridConfig {
            cascade_keep: 0.0,
            ..HybridConfig::default()
        }))
    })
    .train(&Corpus::from_examples(examples.clone()))
    .unwrap();
    assert!(log.says("on 100.0% of the documents"));
    assert!(log.says(
        "note: by default the bow part will answer every document alone: on these folds it is \
         as accurate alone as with the encoder"
    ));
    // And so it does: the default mode's answers are the fast mode's.
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let fast = clf.clone().with_mode(Mode::Fast);
    assert_eq!(
        clf.probabilities_batch(&texts).unwrap(),
        fast.probabilities_batch(&texts).unwrap()
    );
}
