//! The one error type of the core: every way a value can fail to be built.

use std::fmt;

/// What went wrong when building a domain value, naming the input field and how to fix it.
///
/// Every message is meant for an operator reading it at 3 a.m.: it names the field as the
/// user typed it (`--circle`, `lat`, `polygon.coordinates[0]`) and says what would be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// An input value was rejected by a validating constructor.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field as the user knows it (CLI flag, CSV column, JSON path).
        field: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// An incident lifecycle transition that is not allowed from the current status.
    #[error("incident is {from}; it cannot be {action} (allowed: {allowed})")]
    Transition {
        /// The current status.
        from: crate::incident::IncidentStatus,
        /// What was attempted, in past tense ("restored").
        action: &'static str,
        /// What can still be done from `from`.
        allowed: &'static str,
    },
}

impl CoreError {
    /// Shorthand for [`CoreError::Invalid`].
    pub fn invalid(field: impl fmt::Display, problem: impl fmt::Display) -> Self {
        CoreError::Invalid {
            field: field.to_string(),
            problem: problem.to_string(),
        }
    }

    /// The same error with the root of its field renamed, e.g. `polygon[0]` → `--polygon[0]`,
    /// when the value came in through a flag of another name.
    #[must_use]
    pub fn renamed(self, from: &str, to: &str) -> Self {
        match self {
            CoreError::Invalid { field, problem } => CoreError::Invalid {
                field: match field.strip_prefix(from) {
                    Some(rest) => format!("{to}{rest}"),
                    None => field,
                },
                problem,
            },
            other => other,
        }
    }

    /// The same error reported under an outer field name, e.g. `phone` → `line 7: phone`.
    #[must_use]
    pub fn within(self, outer: impl fmt::Display) -> Self {
        match self {
            CoreError::Invalid { field, problem } => CoreError::Invalid {
                field: format!("{outer}.{field}"),
                problem,
            },
            other => other,
        }
    }
}

/// Result alias for the core.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
