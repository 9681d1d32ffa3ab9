//! The one error type of the ingest crate.

use std::fmt;

use outagecast_core::CoreError;

use crate::geocode::Candidate;

/// Why an area, an alert, a zone file or an address was refused. Every message names the
/// field as the user wrote it (`--wkt`, `alert/info[0]/area[1]/polygon[0]`, `--address`) and
/// says what would be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// A value was rejected.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field as the user knows it.
        field: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// An input is over a size limit (vertices, characters, bytes, elements); the problem
    /// names the limit and the setting that changes it, where there is one.
    #[error("{field}: {problem}")]
    TooLarge {
        /// The field as the user knows it.
        field: String,
        /// How large it is, the limit, and what to do.
        problem: String,
    },
    /// No known address is close enough to what was asked.
    #[error(
        "{field}: no address matches {query:?}{}; check the spelling, add the house number, or give --circle LON,LAT,METRES",
        list(candidates)
    )]
    UnknownAddress {
        /// The flag or field that held the address.
        field: String,
        /// The text asked for.
        query: String,
        /// The best (too weak) candidates, best first.
        candidates: Vec<Candidate>,
    },
    /// Several addresses in different places match equally well.
    #[error(
        "{field}: {query:?} is ambiguous{}; add the house number, postcode or city to pick one",
        list(candidates)
    )]
    AmbiguousAddress {
        /// The flag or field that held the address.
        field: String,
        /// The text asked for.
        query: String,
        /// The competing candidates, best first.
        candidates: Vec<Candidate>,
    },
}

fn list(candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = candidates
        .iter()
        .take(5)
        .map(|c| {
            format!(
                "{} ({:.0}% at {:.5},{:.5})",
                c.label,
                c.confidence * 100.0,
                c.point.lon(),
                c.point.lat()
            )
        })
        .collect();
    format!("; best candidates: {}", shown.join("; "))
}

impl IngestError {
    /// Shorthand for [`IngestError::Invalid`].
    pub fn invalid(field: impl fmt::Display, problem: impl fmt::Display) -> Self {
        IngestError::Invalid {
            field: field.to_string(),
            problem: problem.to_string(),
        }
    }

    /// Shorthand for [`IngestError::TooLarge`].
    pub fn too_large(field: impl fmt::Display, problem: impl fmt::Display) -> Self {
        IngestError::TooLarge {
            field: field.to_string(),
            problem: problem.to_string(),
        }
    }

    /// The field the error is about.
    pub fn field(&self) -> &str {
        match self {
            IngestError::Invalid { field, .. }
            | IngestError::TooLarge { field, .. }
            | IngestError::UnknownAddress { field, .. }
            | IngestError::AmbiguousAddress { field, .. } => field,
        }
    }

    /// The same error reported under an outer field name: `polygon` → `--wkt.polygon`.
    #[must_use]
    pub fn within(self, outer: impl fmt::Display) -> Self {
        match self {
            IngestError::Invalid { field, problem } => IngestError::Invalid {
                field: format!("{outer}.{field}"),
                problem,
            },
            IngestError::TooLarge { field, problem } => IngestError::TooLarge {
                field: format!("{outer}.{field}"),
                problem,
            },
            other => other,
        }
    }
}

impl From<CoreError> for IngestError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid { field, problem } => IngestError::Invalid { field, problem },
            other => IngestError::invalid("incident", other),
        }
    }
}

/// Result alias for the ingest crate.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// A core error re-rooted under `field`: the core names fields by the shape (`polygon[0]`,
/// `line[3]`, `radius`); the user knows them by where they wrote them.
pub(crate) fn core_within(e: CoreError, field: &str) -> IngestError {
    IngestError::from(e.within(field))
}
