//! Passwords: where they come from (the file, a named environment variable or a file path) and
//! the [`Secret`] that holds one, whose `Debug` never shows it.
//!
//! Owns: [`Secret`], [`SecretSource`] and their resolution. Talks to: the environment and the
//! file system.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// A password or other secret. `Debug` and `Display` print `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is handed to a protocol.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a password comes from, as written in the file: at most one of the three.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// The password itself (fine for tests; prefer the other two in production).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Name of an environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Path of a file holding the password (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

pub(super) fn resolve_secret(key: &'static str, src: &SecretSource) -> Result<Secret, ConfigError> {
    let given = [src.password.is_some(), src.password_env.is_some(), src.password_file.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(invalid(key, "give only one of password, password_env and password_file"));
    }
    if let Some(p) = &src.password {
        return Ok(Secret::new(p.clone()));
    }
    if let Some(var) = &src.password_env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
            Ok(_) => Err(invalid(key, format!("environment variable {var} (from password_env) is empty"))),
            Err(_) => Err(invalid(key, format!("environment variable {var} (from password_env) is not set"))),
        };
    }
    if let Some(path) = &src.password_file {
        return match std::fs::read_to_string(path) {
            Ok(v) => {
                let v = v.trim_end_matches(['\r', '\n']).to_string();
                if v.is_empty() {
                    Err(invalid(key, format!("password_file {} is empty", path.display())))
                } else {
                    Ok(Secret::new(v))
                }
            }
            Err(e) => Err(invalid(key, format!("cannot read password_file {}: {e}", path.display()))),
        };
    }
    Ok(Secret::default())
}
