//! The README's commands run as written, and the outputs it shows are what they print.
//!
//! A line `<!-- check: runs -->` in README.md says that every command of the next code block
//! (an indented block) succeeds; `<!-- check: prints -->` says that, once the commands of the
//! next code block have run in order, the last one's standard output is the code block after
//! it. Blocks are checked from top to bottom in one working directory, so that a model one
//! trains is there for the next (`data/` is the repository's; `../shared/data` the shared
//! corpora, when present: checks that need them say so and are skipped when they are absent).
//! `khabar` is the binary under test, and `cargo run --release -q --` stands for it.
//!
//! `KHABAR_README_WRITE=1 cargo test --release --test readme` writes what the commands print
//! into README.md instead of comparing: the figures in the README's examples come from here.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One checked place of the README.
struct Check {
    /// Line number (1-based) of the marker.
    line: usize,
    /// The commands.
    commands: Vec<String>,
    /// For `prints`: the output block's line range (0-based, end exclusive) and its
    /// indentation.
    output: Option<(usize, usize, usize)>,
}

/// The code block (lines indented by 4 spaces or more, after the marker's own indentation)
/// that starts at or after line `from`: its range.
fn next_block(lines: &[&str], from: usize) -> Option<(usize, usize)> {
    let indented = |l: &str| l.starts_with("    ") && !l.trim().is_empty();
    let start = (from..lines.len()).find(|&i| indented(lines[i]))?;
    let end = (start..lines.len())
        .find(|&i| !indented(lines[i]))
        .unwrap_or(lines.len());
    Some((start, end))
}

fn indentation(lines: &[&str]) -> usize {
    lines
        .iter()
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0)
}

fn checks(readme: &str) -> Vec<Check> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let kind = match l.trim() {
            "<!-- check: runs -->" => false,
            "<!-- check: prints -->" => true,
            other => {
                assert!(
                    !other.starts_with("<!-- check"),
                    "README.md:{}: unknown marker {other}",
                    i + 1
                );
                continue;
            }
        };
        let (s, e) = next_block(&lines, i + 1)
            .unwrap_or_else(|| panic!("README.md:{}: no code block after the marker", i + 1));
        let indent = indentation(&lines[s..e]);
        let commands = lines[s..e]
            .iter()
            .map(|l| l[indent..].to_string())
            .collect();
        let output = kind.then(|| {
            let (os, oe) = next_block(&lines, e).unwrap_or_else(|| {
                panic!("README.md:{}: no output block after the commands", i + 1)
            });
            (os, oe, indentation(&lines[os..oe]))
        });
        out.push(Check {
            line: i + 1,
            commands,
            output,
        });
    }
    out
}

/// Runs one command line in `dir` with `sh`, `khabar` on the PATH; its standard output.
fn run(dir: &Path, bin_dir: &Path, line: &str, at: usize) -> String {
    let line = line.replace("cargo run --release -q --", "khabar");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .current_dir(dir)
        .env("PATH", path)
        .env("KHABAR_CACHE_DIR", dir.join(".cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "README.md:{at}: `{line}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_readmes_commands_run_and_print_what_it_shows() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme_path = repo.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let checks = checks(&readme);
    assert!(checks.len() >= 5, "{} checks", checks.len());
    let write = std::env::var_os("KHABAR_README_WRITE").is_some();

    let bin = PathBuf::from(env!("CARGO_BIN_EXE_khabar"));
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&bin, bin_dir.path().join("khabar")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::os::unix::fs::symlink(repo.join("data"), work.join("data")).unwrap();
    let shared = repo.join("../shared");
    let have_shared = shared.join("data").is_dir();
    if have_shared {
        std::os::unix::fs::symlink(&shared, root.path().join("shared")).unwrap();
    }

    let mut lines: Vec<String> = readme.lines().map(String::from).collect();
    let mut wrong = Vec::new();
    for c in &checks {
        if !have_shared && c.commands.iter().any(|l| l.contains("../shared/data")) {
            eprintln!(
                "README.md:{}: skipped: the shared corpora (../shared/data) are absent",
                c.line
            );
            continue;
        }
        let mut printed = String::new();
        for command in &c.commands {
            printed = run(&work, bin_dir.path(), command, c.line);
        }
        let Some((s, e, indent)) = c.output else {
            continue;
        };
        let shown: Vec<String> = lines[s..e]
            .iter()
            .map(|l| l[indent..].to_string())
            .collect();
        let actual: Vec<String> = printed.lines().map(|l| l.trim_end().to_string()).collect();
        if shown != actual {
            wrong.push(format!(
                "README.md:{}: `{}` prints\n{}\nwhere the README shows\n{}",
                s + 1,
                c.commands.last().unwrap(),
                actual.join("\n"),
                shown.join("\n")
            ));
            if write {
                let pad = " ".repeat(indent);
                let new: Vec<String> = actual.iter().map(|l| format!("{pad}{l}")).collect();
                // Same number of lines, so the later checks' line numbers hold.
                assert_eq!(
                    new.len(),
                    e - s,
                    "README.md:{}: the output's length changed; edit it by hand",
                    s + 1
                );
                lines.splice(s..e, new);
            }
        }
    }
    if write {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&readme_path, text).unwrap();
        eprintln!("{} output block(s) rewritten", wrong.len());
        return;
    }
    assert!(
        wrong.is_empty(),
        "{}\n\n(KHABAR_README_WRITE=1 cargo test --release --test readme rewrites them)",
        wrong.join("\n\n")
    );
}
