//! The contract between the worker and a channel adapter (SMS gateway, SMTP server).

use std::future::Future;
use std::time::Duration;

use outagecast_core::contact::Channel;

/// One message to send: a claimed notice as the adapter needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The notice id: stable across retries, so adapters can derive idempotency keys and
    /// Message-IDs from it.
    pub notice_id: i64,
    /// The incident it is about.
    pub incident_id: i64,
    /// SMS or email.
    pub channel: Channel,
    /// E.164 number or email address.
    pub to: String,
    /// Email subject (unused for SMS).
    pub subject: String,
    /// The text.
    pub body: String,
    /// `fi`, `sv` or `en`, for the email's `Content-Language`.
    pub language: String,
}

/// What the provider said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted; `provider_id` is the provider's message id (Twilio's `SM…` sid, or the
    /// email's Message-ID).
    Accepted {
        /// The provider's id.
        provider_id: String,
    },
    /// Not sent now, try again later: 429, 5xx, a timeout or a refused connection.
    /// `after` is the provider's Retry-After when it gave one. `in_doubt` is true when the
    /// provider may have acted on the request (a timeout after the request was written).
    Retry {
        /// Why, for the operator.
        reason: String,
        /// The provider's requested wait.
        after: Option<Duration>,
        /// Whether the message may have gone out anyway.
        in_doubt: bool,
    },
    /// Never going to work (an invalid number, a rejected address): the provider's reason.
    Permanent {
        /// The provider's code and message.
        reason: String,
    },
    /// The provider, not this recipient, is failing: refused credentials (401/403), an
    /// unknown account (404 on the account's URL), a name that does not resolve, a refused
    /// connection. Nothing was accepted. The channel stops sending and probes again later;
    /// the notice waits.
    ProviderDown {
        /// What happened and the setting to check.
        reason: String,
    },
}

/// Why an earlier attempt could not be looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The provider has no way to be asked (SMTP; a gateway without a message list, answering
    /// 404/405/501; or configured so): the in-doubt policy decides.
    Unsupported,
    /// The look-up failed this time (a timeout, a 5xx): try again later.
    Failed(String),
}

/// A channel adapter.
pub trait Transport: Send + Sync {
    /// The channel this adapter serves.
    fn channel(&self) -> Channel;

    /// Sends one message.
    fn send(&self, message: &OutgoingMessage) -> impl Future<Output = SendOutcome> + Send;

    /// After a crash or a timeout: did an earlier attempt of this message reach the provider?
    /// Returns its provider id if so. Adapters that cannot ask answer
    /// [`LookupError::Unsupported`].
    fn find_sent(
        &self,
        message: &OutgoingMessage,
    ) -> impl Future<Output = Result<Option<String>, LookupError>> + Send;

    /// How many units of the provider's rate limit this message costs (SMS segments; 1 for
    /// an email).
    fn cost(&self, message: &OutgoingMessage) -> u32;

    /// The longest one send may take, whatever the far end does: the worker gives up on a
    /// send after this (in doubt: it may have gone out) and starts one only while that much of
    /// the notice's lease is left.
    fn timeout(&self) -> Duration;

    /// Work the adapter does beside sending for as long as its lane runs (voice: asking the
    /// provider about calls whose final status never came). Most adapters have none.
    fn maintain(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    /// Waits up to `wait` for room for one more send, before the hand-over: a channel with a
    /// cap on what is in progress at once (simultaneous calls) makes its sends queue here.
    /// `None`: no room in time, the notice is given back unsent. Most channels have no cap.
    fn permit(&self, wait: Duration) -> impl Future<Output = Option<Permit>> + Send {
        let _ = wait;
        async { Some(Permit::free()) }
    }
}

/// Room for one send, from [`Transport::permit`]: given back when dropped, or by
/// [`Permit::done`] with whether the provider accepted the send (an accepted call keeps its
/// room until the call ends).
pub struct Permit(Option<Box<dyn FnOnce(bool) + Send>>);

impl Permit {
    /// A permit for a channel without a cap.
    pub fn free() -> Self {
        Permit(None)
    }

    /// A permit that calls `release` with whether the send was accepted.
    pub fn new(release: impl FnOnce(bool) + Send + 'static) -> Self {
        Permit(Some(Box::new(release)))
    }

    /// The send is over; `accepted` whether the provider took it.
    pub fn done(mut self, accepted: bool) {
        if let Some(release) = self.0.take() {
            release(accepted);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release(false);
        }
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Permit"
        } else {
            "Permit(free)"
        })
    }
}
