//! Narrow views of [`Store`]: each part of the system takes the trait with the few operations
//! it uses, so a reader sees what it may touch and a test double stays small. [`Store`]
//! implements every one.

use std::future::Future;

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};

use crate::{
    IvrPoll, IvrSnapshot, OutboxCounts, Outcome, Receipt, ReceiptOutcome, Result, RoundTrip,
    RoundTripDone, Store,
};

/// What the dispatcher does with the outbox: its round trips (record outcomes, renew its
/// leases, hand notices over, claim more; only the lease holder can record), the last
/// recording and the release on the way out, a look at the queue, and holding a channel's
/// notices while it cannot send them.
pub trait Outbox: Clone + Send + Sync + 'static {
    /// One [`RoundTrip`] in one transaction.
    fn round_trip(&self, r: RoundTrip<'_>) -> impl Future<Output = Result<RoundTripDone>> + Send;
    /// Records outcomes of notices `owner` holds; how many were recorded.
    fn complete(
        &self,
        owner: &str,
        outcomes: &[(i64, Outcome)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Gives back every lease `owner` holds; how many.
    fn release(&self, owner: &str) -> impl Future<Output = Result<u64>> + Send;
    /// The queue of `channels` at `now`.
    fn outbox_counts(
        &self,
        channels: &[Channel],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<OutboxCounts>> + Send;
    /// When the earliest waiting notice is due.
    fn next_due(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;
    /// See [`Store::hold_channel`].
    fn hold_channel(
        &self,
        channel: Channel,
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// See [`Store::resume_channel`].
    fn resume_channel(
        &self,
        channel: Channel,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// What the inbound webhooks write: delivery receipts and opt-outs, and the language to
/// answer a contact in.
pub trait Receipts: Send + Sync + 'static {
    /// See [`Store::record_receipt`].
    fn record_receipt(
        &self,
        provider_id: &str,
        receipt: &Receipt,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ReceiptOutcome>> + Send;
    /// See [`Store::opt_out_and_withdraw`].
    fn opt_out_and_withdraw(
        &self,
        channel: Channel,
        address: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// See [`Store::opt_in`].
    fn opt_in(
        &self,
        channel: Channel,
        address: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// See [`Store::contact_language`].
    fn contact_language(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<Option<Language>>> + Send;
}

/// What the IVR follower reads: a snapshot, then the changes after its cursor.
pub trait IvrFeed: Send + Sync + 'static {
    /// See [`Store::ivr_snapshot`].
    fn ivr_snapshot(
        &self,
        now: DateTime<Utc>,
        closed_since: DateTime<Utc>,
    ) -> impl Future<Output = Result<IvrSnapshot>> + Send;
    /// See [`Store::ivr_changes`].
    fn ivr_changes(&self, cursor: i64) -> impl Future<Output = Result<IvrPoll>> + Send;
}

impl Outbox for Store {
    async fn round_trip(&self, r: RoundTrip<'_>) -> Result<RoundTripDone> {
        Store::round_trip(self, r).await
    }
    async fn complete(
        &self,
        owner: &str,
        outcomes: &[(i64, Outcome)],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Store::complete(self, owner, outcomes, now).await
    }
    async fn release(&self, owner: &str) -> Result<u64> {
        Store::release(self, owner).await
    }
    async fn outbox_counts(
        &self,
        channels: &[Channel],
        now: DateTime<Utc>,
    ) -> Result<OutboxCounts> {
        Store::outbox_counts(self, channels, now).await
    }
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        Store::next_due(self).await
    }
    async fn hold_channel(
        &self,
        channel: Channel,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Store::hold_channel(self, channel, reason, now).await
    }
    async fn resume_channel(&self, channel: Channel, now: DateTime<Utc>) -> Result<u64> {
        Store::resume_channel(self, channel, now).await
    }
}

impl Receipts for Store {
    async fn record_receipt(
        &self,
        provider_id: &str,
        receipt: &Receipt,
        now: DateTime<Utc>,
    ) -> Result<ReceiptOutcome> {
        Store::record_receipt(self, provider_id, receipt, now).await
    }
    async fn opt_out_and_withdraw(
        &self,
        channel: Channel,
        address: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Store::opt_out_and_withdraw(self, channel, address, source, now).await
    }
    async fn opt_in(
        &self,
        channel: Channel,
        address: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Store::opt_in(self, channel, address, source, now).await
    }
    async fn contact_language(&self, address: &str) -> Result<Option<Language>> {
        Store::contact_language(self, address).await
    }
}

impl IvrFeed for Store {
    async fn ivr_snapshot(
        &self,
        now: DateTime<Utc>,
        closed_since: DateTime<Utc>,
    ) -> Result<IvrSnapshot> {
        Store::ivr_snapshot(self, now, closed_since).await
    }
    async fn ivr_changes(&self, cursor: i64) -> Result<IvrPoll> {
        Store::ivr_changes(self, cursor).await
    }
}
