//! The dispatcher: turns the pending outbox into messages on phones and in inboxes, at the
//! provider's pace, and records every outcome.
//!
//! - [`transport`]: the contract a channel adapter fulfils ([`transport::Transport`]).
//! - [`sms`]: Twilio-compatible SMS over HTTP.
//! - [`voice`]: Twilio-compatible voice calls over HTTP (landlines).
//! - [`retry`]: when to try again (pure).
//! - [`pace`]: the provider's rate, reserved in arrival order.
//! - [`worker`]: the claim → send → record loop.
//! - [`zone`]: each customer's time zone from the service location (for quiet hours).
//!
//! Exactly once: a claimed notice is marked *in doubt* before it is sent and cleared when its
//! outcome is recorded. After a crash an in-doubt SMS is first looked up at the provider
//! (`Transport::find_sent`) and only sent if the provider has no record of it.

pub mod email;
pub mod health;
pub mod measure;
pub mod pace;
pub mod retry;
pub mod sms;
pub mod transport;
pub mod voice;
pub mod worker;
pub mod zone;

/// Everything that can go wrong setting up or running the dispatcher.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A configuration value is missing or malformed.
    #[error("{field}: {problem}")]
    Config {
        /// The setting (environment variable or flag).
        field: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] outagecast_store::StoreError),
}

/// Result alias for the dispatcher.
pub type Result<T, E = DispatchError> = std::result::Result<T, E>;

/// reqwest here is built with rustls but without a default crypto provider (ring is used
/// everywhere, so the build needs no cmake); install it once before any client is built.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
