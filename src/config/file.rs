//! The TOML config file: top-level scalar keys, each with its line; unknown keys named with
//! the closest known one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use outagecast_ingest::geocode::normalise::levenshtein;

/// The TOML config file: top-level scalar keys, each with its line.
#[derive(Debug)]
pub struct ConfigFile {
    pub(super) path: PathBuf,
    pub(super) entries: BTreeMap<String, Entry>,
}

#[derive(Debug)]
pub(super) struct Entry {
    value: String,
    pub(super) line: Option<usize>,
}

/// One thing wrong with the configuration, on one line.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The setting's key.
    pub key: String,
    /// The line to print.
    pub message: String,
}

impl ConfigFile {
    /// Reads the file. An unreadable file or one that is not TOML is an error; keys that are
    /// not settings (named with the closest one) and values that are not scalars are
    /// problems, and those entries are left out.
    pub(super) fn load(
        path: &Path,
        known: &BTreeSet<String>,
    ) -> Result<(ConfigFile, Vec<Problem>)> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "--config (OUTAGECAST_CONFIG): cannot read {}",
                path.display()
            )
        })?;
        let doc = toml_edit::Document::parse(text.as_str()).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(":{}", line_of(&text, s.start)))
                .unwrap_or_default();
            anyhow!(
                "{}{at}: is not TOML: {}; write one `key = value` per line, e.g. smtp_url = \"smtp://mail.example.fi:587\"",
                path.display(),
                e.message().trim().replace('\n', " ")
            )
        })?;
        let mut entries = BTreeMap::new();
        let mut problems = Vec::new();
        let table = doc.as_table();
        for (name, _) in table.iter() {
            let Some((key, item)) = table.get_key_value(name) else {
                continue;
            };
            let line = key
                .span()
                .or_else(|| item.span())
                .map(|s| line_of(&text, s.start));
            let at = match line {
                Some(l) => format!("{}:{l}", path.display()),
                None => path.display().to_string(),
            };
            if !known.contains(name) {
                problems.push(Problem {
                    key: name.to_string(),
                    message: format!(
                        "{at}: unknown key {name:?}{}",
                        suggestion(name, item, known)
                    ),
                });
                continue;
            }
            use toml_edit::Value as V;
            let value = match item.as_value() {
                Some(V::String(s)) => s.value().clone(),
                Some(V::Integer(i)) => i.value().to_string(),
                Some(V::Float(f)) => f.value().to_string(),
                Some(V::Boolean(b)) => b.value().to_string(),
                _ => {
                    problems.push(Problem {
                        key: name.to_string(),
                        message: format!(
                            "{at}: {name} is a TOML {}; write a string, a number or true/false",
                            item.type_name()
                        ),
                    });
                    continue;
                }
            };
            entries.insert(name.to_string(), Entry { value, line });
        }
        Ok((
            ConfigFile {
                path: path.to_path_buf(),
                entries,
            },
            problems,
        ))
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|e| e.value.as_str())
    }

    /// `FILE:LINE` of a key, for messages.
    pub(super) fn at(&self, key: &str) -> String {
        match self.entries.get(key).and_then(|e| e.line) {
            Some(line) => format!("{}:{line}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// The hint after an unknown key: the closest known key, or how keys are written.
fn suggestion(name: &str, item: &toml_edit::Item, known: &BTreeSet<String>) -> String {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("outagecast_").unwrap_or(&lower);
    if bare != name && known.contains(bare) {
        return format!(
            "; write {bare:?} (the variable's name in lower case, without OUTAGECAST_)"
        );
    }
    if let Some(table) = item.as_table_like() {
        let joined = table
            .iter()
            .map(|(k, _)| format!("{bare}_{k}"))
            .find(|k| known.contains(k));
        return match joined {
            Some(k) => format!("; sections are not read: write {k} = ... at the top of the file"),
            None => "; sections are not read: every key is at the top of the file".to_string(),
        };
    }
    match closest(bare, known) {
        Some(k) => format!("; did you mean {k:?}?"),
        None => "; `outagecast config check` lists every key".to_string(),
    }
}

/// The known key nearest to `name` by edit distance, if it is near enough to be a typo.
fn closest<'a>(name: &str, known: &'a BTreeSet<String>) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_closest_key() {
        let known: BTreeSet<String> = ["smtp_url", "sms_rate", "sms_from"]
            .map(String::from)
            .into();
        assert_eq!(closest("smtp_ur", &known), Some("smtp_url"));
        assert_eq!(closest("sms_rat", &known), Some("sms_rate"));
        assert_eq!(closest("completely_different", &known), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
