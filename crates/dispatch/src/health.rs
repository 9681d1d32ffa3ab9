//! What the dispatcher tells `/healthz`, `/healthz/dispatch` and the metrics: for each channel
//! whether it sends or why not, and whether the store takes the dispatcher's writes.
//!
//! The worker lanes write it as things happen; readers take a [`HealthReport`] snapshot. Every
//! change also sets the matching gauges through the `metrics` facade
//! (`outagecast_dispatch_channel_up{channel}`, `outagecast_dispatch_store_up`), so a scrape
//! sees the same truth as `/healthz`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use outagecast_core::contact::Channel;
use serde::Serialize;

/// Something that is wrong right now, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is wrong and the setting to check.
    pub reason: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// One channel's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChannelState {
    /// Sending (or ready to).
    Ok,
    /// The provider refuses or cannot be reached: the channel's notices wait and it is probed
    /// again with backoff.
    Degraded {
        /// What the provider said.
        reason: String,
        /// Since when.
        since: DateTime<Utc>,
    },
}

/// The dispatcher's health, shared by its lanes and the server.
#[derive(Debug, Default)]
pub struct DispatchHealth {
    state: Mutex<State>,
}

#[derive(Debug, Default, Clone)]
struct State {
    channels: BTreeMap<Channel, ChannelState>,
    store: Option<Problem>,
    restarts: u64,
}

/// A snapshot of [`DispatchHealth`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// Each configured channel's state.
    pub channels: BTreeMap<Channel, ChannelState>,
    /// Set while the dispatcher cannot write to its store.
    pub store: Option<Problem>,
    /// How many times a lane was restarted after a panic.
    pub restarts: u64,
}

impl HealthReport {
    /// Why dispatch is not working, one line per cause; empty when it is.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = &self.store {
            out.push(format!(
                "store: {} (since {})",
                p.reason,
                p.since.to_rfc3339()
            ));
        }
        for (channel, state) in &self.channels {
            if let ChannelState::Degraded { reason, since } = state {
                out.push(format!(
                    "{channel}: {reason} (since {})",
                    since.to_rfc3339()
                ));
            }
        }
        out
    }
}

impl DispatchHealth {
    /// A dispatcher's health as it starts: the store is taken to work until a write fails, and
    /// the gauges say so from the first scrape (a gauge first set on a failure would leave a
    /// dashboard blank while all is well).
    pub fn started() -> Self {
        metrics::gauge!("outagecast_dispatch_store_up").set(1.0);
        metrics::counter!("outagecast_dispatch_restarts_total").absolute(0);
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is one assignment: a panic elsewhere leaves consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A channel the dispatcher serves, healthy until told otherwise.
    pub fn serve(&self, channel: Channel) {
        self.state().channels.insert(channel, ChannelState::Ok);
        metrics::gauge!("outagecast_dispatch_channel_up", "channel" => channel.as_str()).set(1.0);
    }

    /// The channel's provider refuses or cannot be reached.
    pub fn channel_down(&self, channel: Channel, reason: &str, now: DateTime<Utc>) {
        let mut state = self.state();
        let since = match state.channels.get(&channel) {
            Some(ChannelState::Degraded { since, .. }) => *since,
            _ => now,
        };
        state.channels.insert(
            channel,
            ChannelState::Degraded {
                reason: reason.to_string(),
                since,
            },
        );
        metrics::gauge!("outagecast_dispatch_channel_up", "channel" => channel.as_str()).set(0.0);
    }

    /// The channel's provider accepts again.
    pub fn channel_up(&self, channel: Channel) {
        self.serve(channel);
    }

    /// The store refused a write.
    pub fn store_failing(&self, reason: &str, now: DateTime<Utc>) {
        let mut state = self.state();
        let since = state.store.as_ref().map_or(now, |p| p.since);
        state.store = Some(Problem {
            reason: reason.to_string(),
            since,
        });
        metrics::gauge!("outagecast_dispatch_store_up").set(0.0);
    }

    /// The store takes writes again.
    pub fn store_ok(&self) {
        self.state().store = None;
        metrics::gauge!("outagecast_dispatch_store_up").set(1.0);
    }

    /// A lane was restarted after a panic.
    pub fn restarted(&self) {
        self.state().restarts += 1;
        metrics::counter!("outagecast_dispatch_restarts_total").increment(1);
    }

    /// The state now.
    pub fn report(&self) -> HealthReport {
        let state = self.state().clone();
        HealthReport {
            channels: state.channels,
            store: state.store,
            restarts: state.restarts,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_each_cause_and_keep_the_first_since() {
        let h = DispatchHealth::default();
        h.serve(Channel::Sms);
        h.serve(Channel::Email);
        assert!(h.report().problems().is_empty());
        let t0 = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t1 = t0 + chrono::Duration::seconds(5);
        h.channel_down(Channel::Sms, "HTTP 401", t0);
        h.channel_down(Channel::Sms, "HTTP 401 again", t1);
        h.store_failing("database is locked", t1);
        let report = h.report();
        assert_eq!(
            report.channels[&Channel::Sms],
            ChannelState::Degraded {
                reason: "HTTP 401 again".into(),
                since: t0
            }
        );
        assert_eq!(report.channels[&Channel::Email], ChannelState::Ok);
        let problems = report.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("store: database is locked"));
        assert!(problems[1].starts_with("sms: HTTP 401 again"));
        h.channel_up(Channel::Sms);
        h.store_ok();
        assert!(h.report().problems().is_empty());
    }
}
