//! The one error type of the IVR crate.

/// What can go wrong in the IVR's pure parts: a FastAGI peer that does not speak the protocol,
/// or a setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IvrError {
    /// A line from the FastAGI peer was longer than the limit; the session is dropped rather
    /// than buffered without bound.
    #[error("FastAGI: a line is longer than {limit} bytes")]
    AgiLineTooLong {
        /// The limit.
        limit: usize,
    },
    /// The environment block did not end within the limit of lines.
    #[error("FastAGI: the environment block has more than {limit} lines")]
    AgiTooManyLines {
        /// The limit.
        limit: usize,
    },
    /// A line that is not what Asterisk sends at this point.
    #[error("FastAGI: unexpected line {line:?} ({expected})")]
    AgiMalformed {
        /// The line, lossily decoded and shortened.
        line: String,
        /// What was expected instead.
        expected: &'static str,
    },
    /// The channel hung up (Asterisk sent `HANGUP`).
    #[error("FastAGI: the caller hung up")]
    AgiHangup,
    /// Asterisk refused a command (`510`, `511`, `520`…).
    #[error("FastAGI: command refused with {code}: {message}")]
    AgiRefused {
        /// The status code.
        code: u16,
        /// Asterisk's text.
        message: String,
    },
    /// A setting could not be used.
    #[error("{field}: {problem}")]
    Invalid {
        /// The setting, as the operator knows it.
        field: &'static str,
        /// What is wrong and what would be accepted.
        problem: String,
    },
}

impl IvrError {
    /// A line as it may appear in an error: lossily decoded, at most 80 characters.
    pub(crate) fn malformed(line: &[u8], expected: &'static str) -> Self {
        let text: String = String::from_utf8_lossy(line).chars().take(80).collect();
        IvrError::AgiMalformed {
            line: text,
            expected,
        }
    }
}
