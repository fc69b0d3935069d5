//! Where the shared corpora of third-party mail are, and whether a corpus suite runs at all.
//!
//! A suite calls [`corpora_for`] first and returns at once when it gives `None`:
//! - `INTAKE311_CORPORA` set (`.ci/run` sets it when `../shared/corpora` exists): the suite runs,
//!   and fails with the reason if that folder, or a file or folder the suite needs, is missing;
//! - unset, and `../shared/corpora` exists beside the checkout: the suite runs on it, with the
//!   same checks;
//! - neither: the suite does not run. It writes one loud line to the terminal, saying which suite
//!   and why, and passes. A fresh clone without `../shared` beside it thus passes.
//!
//! Talks to: the environment and the file system only. Its rules are unit-tested in
//! tests/mime_corpus.rs (once, rather than in every test binary that includes this file).
#![allow(dead_code)] // each test binary uses part of it

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The variable naming the corpora folder.
pub const VAR: &str = "INTAKE311_CORPORA";

/// Why a suite runs on a folder, or why it does not run.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// Run on this folder; every needed entry is in it.
    Run(PathBuf),
    /// Do not run; the text says why (one line).
    NotRun(String),
}

/// Where the corpora are for this suite, given the variable's value and the folder beside the
/// checkout. Pure, so its rules are unit-tested. `Err` is a fault the suite must fail on: the
/// variable names a missing folder, or a needed file or folder is not in the corpora.
pub fn locate(var: Option<&Path>, beside: &Path, needed: &[&str]) -> Result<Found, String> {
    let dir = match var {
        Some(p) if p.as_os_str().is_empty() => {
            return Err(format!("{VAR} is set but empty; unset it or point it at the shared corpora folder"));
        }
        Some(p) if !p.is_dir() => {
            return Err(format!(
                "{VAR} is set to {p:?}, but that folder does not exist; point it at the shared corpora folder or \
                 unset it"
            ));
        }
        Some(p) => p.to_path_buf(),
        None if beside.is_dir() => beside.to_path_buf(),
        None => {
            return Ok(Found::NotRun(format!("{VAR} is unset and {} does not exist", beside.display())));
        }
    };
    let missing: Vec<&str> = needed.iter().copied().filter(|n| !dir.join(n).exists()).collect();
    if missing.is_empty() {
        Ok(Found::Run(dir))
    } else {
        Err(format!("the corpora folder {dir:?} has no {}", missing.join(", ")))
    }
}

/// The folder `../shared/corpora` beside the checkout.
pub fn beside_checkout() -> PathBuf {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    checkout.parent().unwrap_or(checkout).join("shared/corpora")
}

/// The corpora folder for `suite`, holding every entry of `needed` (paths relative to it, files
/// or folders), or `None` when the suite must not run: then one loud line has been written.
/// Panics (fails the test) on a fault: see [`locate`].
pub fn corpora_for(suite: &str, needed: &[&str]) -> Option<PathBuf> {
    let var = std::env::var_os(VAR).map(PathBuf::from);
    match locate(var.as_deref(), &beside_checkout(), needed) {
        Ok(Found::Run(dir)) => Some(dir),
        Ok(Found::NotRun(why)) => {
            // Straight to the terminal: libtest captures print!/eprint! of passing tests, but not
            // writes to the stderr handle, so the line shows in plain `cargo test` output.
            let _ = writeln!(std::io::stderr(), "CORPUS SUITE NOT RUN: {suite}: {why}");
            None
        }
        Err(fault) => panic!("corpus suite {suite}: {fault}"),
    }
}
