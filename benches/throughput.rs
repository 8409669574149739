//! Throughput on the fixture corpus that ships with the repository (data/news): tokenizing,
//! classifying one article at a time on one thread (`Classifier::predict` in a loop), classifying
//! a batch on every core (`Classifier::predict_batch`), and training (optimizer steps per second
//! over a fixed number of epochs).
//!
//!     cargo bench --bench throughput
//!
//! Criterion reports "elem/s": articles per second for tokenize and predict, optimizer steps per
//! second for train. The real-corpus comparison with other tools is `bench/run`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use khabar::{Classifier, Corpus, ReadOptions, TrainConfig, Trainer};

/// Epochs of the training benchmark: fixed, with no validation cut and no early stopping, so
/// every run does the same number of steps.
const TRAIN_EPOCHS: usize = 5;

fn fixture(name: &str) -> Corpus {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/news")
        .join(name);
    Corpus::read(&path, &ReadOptions::default()).expect("the fixture corpus data/news reads")
}

fn train_config() -> TrainConfig {
    TrainConfig {
        epochs: TRAIN_EPOCHS,
        patience: TRAIN_EPOCHS,
        valid_fraction: 0.0,
        ..TrainConfig::default()
    }
}

fn trained() -> Classifier {
    Trainer::new(TrainConfig::default())
        .train(&fixture("train.jsonl"))
        .expect("training on data/news succeeds")
}

fn predict(c: &mut Criterion) {
    let clf = trained();
    let test = fixture("test.jsonl");
    let texts: Vec<&str> = test.examples.iter().map(|e| e.text.as_str()).collect();
    let mut group = c.benchmark_group("predict");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("tokenize", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(clf.tokenizer().encode(black_box(t)));
            }
        })
    });
    group.bench_function("one_thread", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(clf.predict(black_box(t)).expect("predicts"));
            }
        })
    });
    group.bench_function(
        format!("batched_{}_threads", rayon::current_num_threads()),
        |b| b.iter(|| black_box(clf.predict_batch(black_box(&texts)).expect("predicts"))),
    );
    group.finish();
}

fn train(c: &mut Criterion) {
    let corpus = fixture("train.jsonl");
    let config = train_config();
    let steps = corpus.len().div_ceil(config.batch_size) * TRAIN_EPOCHS;
    let mut group = c.benchmark_group("train");
    group.sample_size(10);
    group.throughput(Throughput::Elements(steps as u64));
    // Includes learning the tokenizer and the n-gram table: the whole of Trainer::train.
    group.bench_function(format!("{TRAIN_EPOCHS}_epochs_{steps}_steps"), |b| {
        b.iter_batched(
            || config.clone(),
            |config| black_box(Trainer::new(config).train(&corpus).expect("trains")),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, predict, train);
criterion_main!(benches);
