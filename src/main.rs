//! The `khabar` command line (the `cli` feature, on by default). It uses only the library's
//! public API; clap, indicatif and ctrlc stay out of the library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
