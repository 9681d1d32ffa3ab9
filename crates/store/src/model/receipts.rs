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
