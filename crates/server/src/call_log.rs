//! The IVR's call log, kept off the lookup's path: a lookup hands its caller to a bounded
//! queue and returns (a full queue drops the call and counts it,
//! `outagecast_ivr_calls_dropped_total`; the phone system never waits for the database), and
//! one task writes the queue to the store in batches about once a second, each caller at
//! most once a minute (a load test or a redialling caller is one row, not thousands). The
//! store keeps the log 90 days; this task prunes it hourly. What an incident's report makes of
//! it: `Store::calls_avoided`.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_ivr::CallerKey;
use outagecast_store::{CallRecord, Store};
use tokio::sync::mpsc;

/// Calls queued at most: about a second of a heavy load test; a real IVR is far below.
const QUEUE: usize = 65_536;
/// How long the writer gathers calls before writing them.
const GATHER: Duration = Duration::from_secs(1);
/// How often old calls are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One lookup with a caller number.
#[derive(Debug, Clone, Copy)]
struct Call {
    caller: CallerKey,
    at: DateTime<Utc>,
    announced: bool,
}

/// Where lookups leave their callers.
#[derive(Debug, Clone)]
pub struct CallLog {
    queue: mpsc::Sender<Call>,
    dropped: ::metrics::Counter,
}

impl CallLog {
    /// A log written to `store` by a task spawned now; it ends when every clone of the log is
    /// dropped, after writing what is queued.
    pub fn start(store: Store) -> CallLog {
        let (queue, calls) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, calls));
        CallLog {
            queue,
            dropped: ::metrics::counter!("outagecast_ivr_calls_dropped_total"),
        }
    }

    /// Notes that `caller` was looked up at `at`, and whether an announcement was armed.
    pub fn record(&self, caller: CallerKey, at: DateTime<Utc>, announced: bool) {
        let call = Call {
            caller,
            at,
            announced,
        };
        if self.queue.try_send(call).is_err() {
            self.dropped.increment(1);
        }
    }
}

/// The writer: gathers for [`GATHER`], keeps a caller's first call per minute (and the
/// first announced one), writes them in one transaction; a store error is logged and the
/// batch kept for the next round (bounded by the queue's size).
async fn write(store: Store, mut calls: mpsc::Receiver<Call>) {
    let mut batch: Vec<Call> = Vec::new();
    let mut seen: HashSet<(CallerKey, i64, bool)> = HashSet::new();
    let mut last_prune = tokio::time::Instant::now();
    let mut failing = false;
    loop {
        let mut incoming = Vec::with_capacity(1024);
        if calls.recv_many(&mut incoming, QUEUE).await == 0 {
            break;
        }
        tokio::time::sleep(GATHER).await;
        while let Ok(call) = calls.try_recv() {
            incoming.push(call);
        }
        for call in incoming {
            let minute = call.at.timestamp() / 60;
            if seen.insert((call.caller, minute, call.announced)) && batch.len() < QUEUE {
                batch.push(call);
            }
        }
        failing = flush(&store, &mut batch, failing).await;
        // Minutes before the last one gathered cannot repeat.
        let newest = batch.iter().map(|c| c.at.timestamp() / 60).max();
        let keep_from = newest.unwrap_or(Utc::now().timestamp() / 60) - 1;
        seen.retain(|(_, minute, _)| *minute >= keep_from);
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = tokio::time::Instant::now();
            if let Err(e) = store.prune_calls(Utc::now()).await {
                tracing::warn!(error = %e, "cannot prune the IVR call log");
            }
        }
    }
    flush(&store, &mut batch, failing).await;
}

/// Writes `batch`; whether the store is failing (one WARN line when it starts failing, one
/// INFO when it recovers).
async fn flush(store: &Store, batch: &mut Vec<Call>, failing: bool) -> bool {
    if batch.is_empty() {
        return failing;
    }
    let callers: Vec<String> = batch.iter().map(|c| c.caller.to_string()).collect();
    let records: Vec<CallRecord<'_>> = batch
        .iter()
        .zip(&callers)
        .map(|(c, caller)| CallRecord {
            caller,
            at: c.at,
            announced: c.announced,
        })
        .collect();
    match store.record_calls(&records).await {
        Ok(_) => {
            if failing {
                tracing::info!("the IVR call log is written again");
            }
            batch.clear();
            false
        }
        Err(e) => {
            if !failing {
                tracing::warn!(error = %e, queued = batch.len(), "cannot write the IVR call log; the calls are kept and written when the store takes them (the IVR answers meanwhile)");
            }
            true
        }
    }
}
