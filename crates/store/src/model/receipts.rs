//! What comes back from customers and providers: delivery receipts by the provider's message
//! id, and opt-outs (keyed by contact, channel + address, never by account, so they survive
//! customer re-imports).

/// How long a receipt for an unknown message id waits for its notice.
pub(crate) const EARLY_RECEIPT_TTL: chrono::Duration = chrono::Duration::days(1);

/// A final delivery report from the SMS provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// The handset has it.
    Delivered,
    /// It will never arrive: the provider's status and error code.
    Failed {
        /// For the operator, e.g. `undelivered: error 30003`.
        reason: String,
    },
}

impl Receipt {
    /// The notice status it sets and the reason it records.
    pub(crate) fn status(&self) -> (&'static str, Option<&str>) {
        match self {
            Receipt::Delivered => ("delivered", None),
            Receipt::Failed { reason } => ("failed", Some(reason.as_str())),
        }
    }
}

/// What recording a receipt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// The notice was updated.
    Applied,
    /// The notice was already final (a duplicate or out-of-order receipt); nothing changed.
    Unchanged,
    /// No notice has this id yet (the worker has not recorded it): the receipt waits and is
    /// applied when it does.
    Waiting,
}

/// What a voice call's final status callback said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// Someone or something took the call: `completed`, with Twilio's `AnsweredBy` (`human`,
    /// `machine_end_beep`, …; `unknown` when detection gave no verdict). A voicemail counts as
    /// delivered: the message was left after the beep.
    Answered {
        /// Twilio's `AnsweredBy`, as given.
        by: Option<String>,
    },
    /// `busy` or `no-answer`: called again after the retry delay, up to the attempts allowed.
    Unanswered {
        /// `busy` or `no-answer`.
        status: &'static str,
    },
    /// `failed` or `canceled`: the notice fails with this reason.
    Failed {
        /// `failed` or `canceled`.
        status: &'static str,
        /// The provider's error code, if it gave one.
        reason: Option<String>,
    },
}

impl CallResult {
    /// What a final call status means for the notice; `None` for progress (`queued`, `ringing`,
    /// `in-progress`, …), which changes nothing.
    pub fn from_status(
        status: &str,
        answered_by: Option<&str>,
        error_code: Option<&str>,
    ) -> Option<CallResult> {
        let code = || error_code.map(|c| c.chars().take(32).collect::<String>());
        match status.to_ascii_lowercase().as_str() {
            // A fax is no one to tell: the call failed for this notice.
            "completed" if answered_by.is_some_and(|a| a.eq_ignore_ascii_case("fax")) => {
                Some(CallResult::Failed {
                    status: "failed",
                    reason: Some("answered by a fax machine".into()),
                })
            }
            "completed" => Some(CallResult::Answered {
                by: answered_by.map(|a| a.chars().take(32).collect()),
            }),
            "busy" => Some(CallResult::Unanswered { status: "busy" }),
            "no-answer" => Some(CallResult::Unanswered {
                status: "no-answer",
            }),
            "failed" => Some(CallResult::Failed {
                status: "failed",
                reason: code(),
            }),
            "canceled" => Some(CallResult::Failed {
                status: "canceled",
                reason: code(),
            }),
            _ => None,
        }
    }

    /// The `call_attempts.outcome` word.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            CallResult::Answered { .. } => "answered",
            CallResult::Unanswered { status } | CallResult::Failed { status, .. } => status,
        }
    }
}

/// How busy and unanswered calls are tried again (`OUTAGECAST_VOICE_RETRY_DELAY`,
/// `OUTAGECAST_VOICE_ATTEMPTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRetry {
    /// The wait before the next call.
    pub delay: chrono::Duration,
    /// Calls in all, the first included.
    pub attempts: u32,
}

impl Default for CallRetry {
    /// Ten minutes, three calls: what the issue asks for by default.
    fn default() -> Self {
        CallRetry {
            delay: chrono::Duration::minutes(10),
            attempts: 3,
        }
    }
}

/// What recording a call's status did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// Delivered (answered by a person or a voicemail).
    Delivered,
    /// Pending again: called again at `at`.
    CallAgain {
        /// When.
        at: chrono::DateTime<chrono::Utc>,
    },
    /// Failed with this reason.
    Failed {
        /// Why, for the operator.
        reason: String,
    },
    /// This call's status was recorded already (a repeated callback): nothing changed.
    Unchanged,
    /// No sent call has this sid (not recorded yet, or not ours): the caller may retry.
    Unknown,
}
