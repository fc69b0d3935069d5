//! Where the shared corpora are: `INTAKE311_CORPORA` (tests/run.sh sets it), else
//! `../shared/corpora` beside the project. A variable that points nowhere, a missing folder or
//! a missing corpus fails the test: these tests never skip.

use std::path::PathBuf;

/// The corpora folder, checked to hold every folder in `needed`.
pub fn corpora_dir(needed: &[&str]) -> PathBuf {
    let dir = match std::env::var_os("INTAKE311_CORPORA") {
        Some(v) => {
            let p = PathBuf::from(v);
            assert!(
                p.is_dir(),
                "INTAKE311_CORPORA is set to {p:?}, but that folder does not exist; point it at the shared corpora \
                 folder or unset it"
            );
            p
        }
        None => {
            let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora");
            assert!(
                p.is_dir(),
                "corpora not found: set INTAKE311_CORPORA to the absolute path of the shared corpora folder, \
                 or put it at {p:?}"
            );
            p
        }
    };
    for sub in needed {
        assert!(dir.join(sub).is_dir(), "corpora folder {dir:?} has no {sub}/");
    }
    dir
}
