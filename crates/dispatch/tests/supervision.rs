//! A lane that panics is restarted and its notices still go, each once: the dispatcher against
//! a real SQLite store whose outbox panics the lane once, right after the hand-over committed
//! (the notices are in doubt and leased to the dead lane).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use outagecast_core::contact::Channel;
use outagecast_core::incident::Severity;
use outagecast_dispatch::worker::{Dispatcher, Unconfigured, WorkerConfig};
use outagecast_store::ports::Outbox;
use outagecast_store::{OutboxCounts, Outcome, Result, RoundTrip, RoundTripDone, Store};

mod support;

use support::{HELSINKI, HELSINKI_PRIORITY, NEW_YORK, Recorder, declared};

/// The store's outbox, except that the first round trip that hands notices over panics once
/// it has committed: as a bug in the lane would, at the worst moment.
#[derive(Clone)]
struct PanicsOnce {
    store: Store,
    panicked: Arc<AtomicBool>,
}

impl Outbox for PanicsOnce {
    async fn round_trip(&self, r: RoundTrip<'_>) -> Result<RoundTripDone> {
        let handing = !r.hand.is_empty();
        let done = self.store.round_trip(r).await;
        if handing && !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("injected: the lane dies after its hand-over");
        }
        done
    }
    async fn complete(&self, owner: &str, o: &[(i64, Outcome)], now: DateTime<Utc>) -> Result<u64> {
        self.store.complete(owner, o, now).await
    }
    async fn release(&self, owner: &str) -> Result<u64> {
        self.store.release(owner).await
    }
    async fn outbox_counts(&self, c: &[Channel], now: DateTime<Utc>) -> Result<OutboxCounts> {
        self.store.outbox_counts(c, now).await
    }
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        self.store.next_due().await
    }
    async fn hold_channel(&self, c: Channel, why: &str, now: DateTime<Utc>) -> Result<u64> {
        self.store.hold_channel(c, why, now).await
    }
    async fn resume_channel(&self, c: Channel, now: DateTime<Utc>) -> Result<u64> {
        self.store.resume_channel(c, now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_that_panics_is_restarted_and_every_notice_goes_once() {
    let (store, _dir) = declared(Utc::now(), Severity::Severe).await;
    let outbox = PanicsOnce {
        store: store.clone(),
        panicked: Arc::default(),
    };
    let recorder = Recorder::default();
    let dispatcher: Dispatcher<Recorder, Unconfigured, PanicsOnce> = Dispatcher::new(
        outbox.clone(),
        Some((recorder.clone(), 1000)),
        None,
        WorkerConfig::new("supervision-test"),
    );
    dispatcher.drain().await.unwrap();

    assert!(outbox.panicked.load(Ordering::SeqCst), "the lane did panic");
    assert_eq!(dispatcher.health().report().restarts, 1);
    let mut sent = recorder.sent.lock().unwrap().clone();
    sent.sort();
    let mut all = vec![HELSINKI, NEW_YORK, HELSINKI_PRIORITY];
    all.sort();
    assert_eq!(sent, all, "each notice sent once after the restart");
    let counts = store
        .outbox_counts(&[Channel::Sms], Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (counts.due, counts.waiting, counts.leased, counts.sent),
        (0, 0, 0, 3),
        "{counts:?}"
    );
    assert_eq!(
        counts.possible_duplicates, 0,
        "the lookup said not sent: no duplicate"
    );
}
