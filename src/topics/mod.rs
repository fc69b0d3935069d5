//! Topics: the list administrators keep (`config/topics.toml`, or `intake.topics`), and the
//! topics suggested for a new request from its subject and text.
//!
//! Owns: parsing and checking the list (pure), naming a topic as staff type it, and the
//! suggestion rule. Talks to: `config` and the file system (the topics file); the store keeps
//! which topics each request has (`request_topics`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::Config;

/// The shipped list, used when `intake.topics` is unset.
pub const BUILT_IN: &str = include_str!("../../config/topics.toml");

/// How many topics a new request is given at most.
const MAX_SUGGESTED: usize = 3;
/// Only this much of a question's text is read for keywords.
const TEXT_LIMIT: usize = 64 * 1024;

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub keywords: Vec<String>,
}

impl Topic {
    /// How reports and notices show it.
    pub fn label(&self) -> &str {
        if self.label.is_empty() { &self.name } else { &self.label }
    }
}

/// The list of topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    list: Vec<Topic>,
    /// Each topic's keywords, lower-cased and split into words, with whether the last word is a
    /// prefix (`polic*`).
    patterns: Vec<Vec<(Vec<String>, bool)>>,
    /// Where it came from, for messages.
    pub origin: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    topic: Vec<Topic>,
}

/// Why a topics file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("cannot read the topics file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the topics file {origin} is not valid: {reason}")]
    Invalid { origin: String, reason: String },
}

/// Why a name staff typed is not a topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a topic (one of: {known})")]
pub struct UnknownTopic {
    pub given: String,
    pub known: String,
}

impl Topics {
    /// The topics of this deployment: `intake.topics` when set, else the shipped list.
    pub fn of(cfg: &Config) -> Result<Topics, TopicsError> {
        match &cfg.intake.topics {
            Some(path) => Topics::load(path),
            None => Topics::parse(BUILT_IN, "built-in (config/topics.toml)"),
        }
    }

    pub fn load(path: &Path) -> Result<Topics, TopicsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TopicsError::Read { path: path.to_path_buf(), source })?;
        Topics::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a list: at least one topic; names unique (ignoring case), made of
    /// letters, digits, `-` and `_`; no empty keyword.
    pub fn parse(text: &str, origin: &str) -> Result<Topics, TopicsError> {
        let invalid = |reason: String| TopicsError::Invalid { origin: origin.to_string(), reason };
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            invalid(match line {
                Some(n) => format!("line {n}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        if file.topic.is_empty() {
            return Err(invalid("it names no topic; add [[topic]] tables with a name and keywords".into()));
        }
        let mut seen = HashSet::new();
        let mut patterns = Vec::new();
        for (i, t) in file.topic.iter().enumerate() {
            let at = format!("topic {} (`{}`)", i + 1, t.name);
            if t.name.is_empty() || !t.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(invalid(format!("{at}: a name is letters, digits, `-` and `_`, with no spaces")));
            }
            if !seen.insert(t.name.to_ascii_lowercase()) {
                return Err(invalid(format!("{at}: the name is given twice")));
            }
            let mut own = Vec::new();
            for k in &t.keywords {
                let prefix = k.trim().ends_with('*');
                let words = words(k.trim().trim_end_matches('*'));
                if words.is_empty() {
                    return Err(invalid(format!("{at}: keyword `{k}` has no word in it")));
                }
                own.push((words, prefix));
            }
            patterns.push(own);
        }
        Ok(Topics { list: file.topic, patterns, origin: origin.to_string() })
    }

    pub fn all(&self) -> &[Topic] {
        &self.list
    }

    /// The topic staff named, by name or label, ignoring case.
    pub fn find(&self, given: &str) -> Result<&Topic, UnknownTopic> {
        let g = given.trim();
        self.list.iter().find(|t| t.name.eq_ignore_ascii_case(g) || t.label().eq_ignore_ascii_case(g)).ok_or_else(
            || UnknownTopic {
                given: g.to_string(),
                known: self.list.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
            },
        )
    }

    /// `NAME[, NAME]` as staff type it, each resolved to its topic name; duplicates dropped.
    pub fn names(&self, list: &str) -> Result<Vec<String>, UnknownTopic> {
        let mut out: Vec<String> = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let name = self.find(part)?.name.clone();
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// The label of a stored topic name (the name itself if the list no longer has it).
    pub fn label_of<'a>(&'a self, name: &'a str) -> &'a str {
        self.list.iter().find(|t| t.name == name).map_or(name, Topic::label)
    }

    /// The topics suggested for a question: each keyword found in the subject scores 2 and in
    /// the text 1 (once per keyword); the best topic and any scoring at least half as much are
    /// suggested, at most three, best first (ties in list order). Nothing matched: none.
    pub fn suggest(&self, subject: &str, text: &str) -> Vec<String> {
        let subject = words(subject);
        let cut = text.char_indices().nth(TEXT_LIMIT).map_or(text.len(), |(i, _)| i);
        let text = words(&text[..cut]);
        let mut scored: Vec<(usize, usize)> = self
            .patterns
            .iter()
            .enumerate()
            .map(|(i, keywords)| {
                let score = keywords
                    .iter()
                    .map(
                        |(k, prefix)| {
                            if contains(&subject, k, *prefix) { 2 } else { usize::from(contains(&text, k, *prefix)) }
                        },
                    )
                    .sum::<usize>();
                (i, score)
            })
            .filter(|(_, s)| *s > 0)
            .collect();
        scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let best = scored.first().map_or(0, |(_, s)| *s);
        scored
            .into_iter()
            .filter(|(_, s)| s * 2 >= best)
            .take(MAX_SUGGESTED)
            .map(|(i, _)| self.list[i].name.clone())
            .collect()
    }
}

/// Lower-cased words: runs of letters and digits.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Whether the phrase `k` occurs in `hay` as whole words; the last word may take a plural
/// `s`/`es`, or any ending when `prefix`.
fn contains(hay: &[String], k: &[String], prefix: bool) -> bool {
    let n = k.len();
    if n == 0 || hay.len() < n {
        return false;
    }
    hay.windows(n).any(|w| {
        w[..n - 1] == k[..n - 1] && {
            let (word, key) = (&w[n - 1], &k[n - 1]);
            word == key
                || (prefix && word.starts_with(key.as_str()))
                || word.strip_prefix(key.as_str()).is_some_and(|rest| rest == "s" || rest == "es")
        }
    })
}

#[cfg(test)]
mod tests;
