//! The folder of overrides (`intake.templates_dir`) and `intake311 templates export`.
//!
//! Owns: which files in the folder are taken (those with a built-in file's name; hidden files
//! such as `.gitkeep` are skipped) and the refusal of any other name, so a misspelt file is an
//! error rather than an override that silently never applies; and writing the built-in set out
//! to start from. Talks to: the file system.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{TemplateError, builtin};

/// One file taken from the override folder.
#[derive(Debug, Clone)]
pub(crate) struct Override {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
}

/// Reads the override folder: every file in it must have the name of a built-in file.
pub(crate) fn read(dir: &Path) -> Result<BTreeMap<String, Override>, TemplateError> {
    let folder_err = |reason: String| TemplateError { file: dir.display().to_string(), reason };
    if !dir.is_dir() {
        return Err(folder_err(
            "the override folder (intake.templates_dir) does not exist; leave the key out to use only the built-in templates".into(),
        ));
    }
    let mut found = BTreeMap::new();
    let mut unknown = Vec::new();
    walk(dir, "", &mut found, &mut unknown).map_err(|e| folder_err(format!("cannot read: {e}")))?;
    if !unknown.is_empty() {
        unknown.sort();
        return Err(folder_err(format!(
            "{} has no built-in template of that name (a file here replaces the built-in file of the same name; `intake311 templates export DIR` writes them all)",
            unknown.join(", ")
        )));
    }
    let mut overrides = BTreeMap::new();
    for (name, path) in found {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TemplateError { file: path.display().to_string(), reason: e.to_string() })?;
        overrides.insert(name, Override { path, text });
    }
    Ok(overrides)
}

/// Collects the files under `dir` (names relative to the override folder, `prefix` included):
/// known ones into `found`, the rest into `unknown`.
fn walk(
    dir: &Path,
    prefix: &str,
    found: &mut BTreeMap<String, PathBuf>,
    unknown: &mut Vec<String>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let relative = format!("{prefix}{name}");
        let path = entry.path();
        if path.is_dir() {
            if prefix.is_empty() && name == "partials" {
                walk(&path, "partials/", found, unknown)?;
            } else {
                unknown.push(format!("{relative}/"));
            }
        } else if builtin::get(&relative).is_some() {
            found.insert(relative, path);
        } else {
            unknown.push(relative);
        }
    }
    Ok(())
}

/// Writes every built-in template into `dir` (created if missing, with `partials/`), to start
/// an override folder from. Refuses, before writing anything, when any of the files exists,
/// unless `force` is given. Returns the files written.
pub fn export_builtin(dir: &Path, force: bool) -> anyhow::Result<Vec<PathBuf>> {
    let targets: Vec<(PathBuf, &str)> = builtin::files().map(|(name, text)| (dir.join(name), text)).collect();
    if !force {
        let existing: Vec<String> =
            targets.iter().filter(|(p, _)| p.exists()).map(|(p, _)| p.display().to_string()).collect();
        if !existing.is_empty() {
            anyhow::bail!(
                "refusing to overwrite {} existing file(s) (give --force to replace them): {}",
                existing.len(),
                existing.join(", ")
            );
        }
    }
    let partials = dir.join("partials");
    std::fs::create_dir_all(&partials).with_context(|| format!("creating {}", partials.display()))?;
    let mut written = Vec::with_capacity(targets.len());
    for (path, text) in targets {
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
