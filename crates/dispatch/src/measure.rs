//! What the dispatcher counts for `/metrics`, recorded through the `metrics` facade at the
//! one place a provider answers (`worker`'s send): every attempt's latency and the provider's
//! answer, and every notice the attempt settled. The names and their HELP texts are here, in
//! one place ([`describe`]).

use std::time::Duration;

use outagecast_core::contact::Channel;
use outagecast_store::Outcome;

use crate::transport::SendOutcome;

/// Attempts' latency per channel, request to answer (or to the deadline).
pub const SEND_SECONDS: &str = "outagecast_send_seconds";
/// Provider answers per channel and kind.
pub const PROVIDER_RESPONSES: &str = "outagecast_provider_responses_total";
/// Notices settled by an attempt per channel and outcome.
pub const NOTICES: &str = "outagecast_notices_total";

/// The HELP text of each metric the dispatcher records; called once when the recorder is
/// installed.
pub fn describe() {
    metrics::describe_gauge!(
        "outagecast_dispatch_channel_up",
        "Whether a channel's provider answers (1), or its circuit is open (0)."
    );
    metrics::describe_gauge!(
        "outagecast_dispatch_store_up",
        "Whether the dispatcher can write to its store."
    );
    metrics::describe_counter!(
        "outagecast_dispatch_restarts_total",
        "Dispatcher lanes restarted after a panic."
    );
    metrics::describe_histogram!(
        SEND_SECONDS,
        metrics::Unit::Seconds,
        "Time from a send request to the provider's answer (or its deadline), by channel."
    );
    metrics::describe_counter!(
        PROVIDER_RESPONSES,
        "Provider answers to send requests by channel and status: accepted, retry (429, 5xx), timeout, permanent (the recipient is refused), provider_down (credentials, account, connection)."
    );
    metrics::describe_counter!(
        NOTICES,
        "Notices settled by a send attempt, by channel and outcome: sent (including possible_duplicate), possible_duplicate (sent again after an attempt the provider could not be asked about), failed, retried, held (the provider is down: waiting for it)."
    );
}

/// How the provider answered, as the `status` label.
pub(crate) fn response_status(answer: &SendOutcome) -> &'static str {
    match answer {
        SendOutcome::Accepted { .. } => "accepted",
        SendOutcome::Retry { in_doubt: true, .. } => "timeout",
        SendOutcome::Retry { .. } => "retry",
        SendOutcome::Permanent { .. } => "permanent",
        SendOutcome::ProviderDown { .. } => "provider_down",
    }
}

/// Records one attempt: its latency, the provider's answer (`status`, from
/// [`response_status`]) and what became of the notice.
pub(crate) fn attempt(channel: Channel, took: Duration, status: &'static str, outcome: &Outcome) {
    let channel = channel.as_str();
    metrics::histogram!(SEND_SECONDS, "channel" => channel).record(took.as_secs_f64());
    metrics::counter!(PROVIDER_RESPONSES, "channel" => channel, "status" => status).increment(1);
    let settled: &[&'static str] = match outcome {
        Outcome::Sent { .. } => &["sent"],
        Outcome::SentAgain { .. } => &["sent", "possible_duplicate"],
        Outcome::Failed { .. } => &["failed"],
        Outcome::Retry { .. } => &["retried"],
        // The provider is down: the lane holds the notice until its probe succeeds.
        Outcome::Released | Outcome::Deferred { .. } => &["held"],
        _ => &[],
    };
    for outcome in settled {
        metrics::counter!(NOTICES, "channel" => channel, "outcome" => *outcome).increment(1);
    }
}
