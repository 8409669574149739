//! khabar has no build step. This script exists for its `[build-dependencies]` (Cargo.toml):
//! they turn on the one feature of `syn` that the Python package's proc macros (pyo3) use and
//! this crate's do not, so that `cargo test` here and the Python package's build (python/) share
//! one build of serde, candle and tokenizers instead of compiling them twice.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
