//! CPU-heavy requests (area parsing and validation, selection of big areas, geocoding,
//! imports) run on tokio's blocking pool behind a concurrency limit and a deadline, so that the
//! async workers stay free for the IVR however large a preview is.
//!
//! The engine's use cases are async (they await the store), so the whole call is driven with
//! `Handle::block_on` on a blocking thread: its CPU work never runs on an async worker. A full
//! queue answers 503 `busy` at once rather than waiting without bound; past the deadline the
//! answer is 504 `timeout`. When the client goes away (the handler's future is dropped) or the
//! deadline passes, a flag tells the work to stop at its next await point.
//!
//! Work that writes (a declaration, an update, an import) is different: once it has its turn
//! it runs to the end whatever the client does, because an answer of "timeout" for a write
//! that did commit would make the operator declare the same incident again. Its deadline
//! bounds only the wait for a turn ([`Finish::ToTheEnd`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::http::{Component, ComponentState, HealthSource};

/// Limits on heavy requests.
#[derive(Debug, Clone)]
pub struct HeavySettings {
    /// Heavy requests worked on at once (default: the number of cores).
    pub concurrency: usize,
    /// Heavy requests that may wait for a turn; beyond this they get 503 at once.
    pub queue: usize,
    /// The longest a heavy request may take, waiting included (default 10 s).
    pub deadline: Duration,
}

impl Default for HeavySettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        HeavySettings {
            concurrency: cores,
            queue: 4 * cores,
            deadline: Duration::from_secs(10),
        }
    }
}

/// The setting for [`HeavySettings::concurrency`].
pub const HEAVY_CONCURRENCY_KEY: &str = "OUTAGECAST_HEAVY_CONCURRENCY";
/// The setting for [`HeavySettings::deadline`], in seconds.
pub const HEAVY_DEADLINE_KEY: &str = "OUTAGECAST_HEAVY_DEADLINE";

impl HeavySettings {
    /// The settings [`HeavySettings::from_lookup`] reads, with their defaults.
    pub const KEYS: &'static [(&'static str, Option<&'static str>)] = &[
        (HEAVY_CONCURRENCY_KEY, Some("the number of cores")),
        (HEAVY_DEADLINE_KEY, Some("10")),
    ];

    /// From settings looked up by name; unset ones keep their defaults. The queue is four
    /// requests per worker.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut s = HeavySettings::default();
        let positive = |key: &str, text: String| -> Result<u64, String> {
            match text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{key}: {text:?} is not a positive whole number")),
            }
        };
        if let Some(text) = get(HEAVY_CONCURRENCY_KEY) {
            let n = positive(HEAVY_CONCURRENCY_KEY, text)?;
            s.concurrency = usize::try_from(n).unwrap_or(usize::MAX);
            s.queue = s.concurrency.saturating_mul(4);
        }
        if let Some(text) = get(HEAVY_DEADLINE_KEY) {
            s.deadline = Duration::from_secs(positive(HEAVY_DEADLINE_KEY, text)?);
        }
        Ok(s)
    }
}

/// What becomes of started work when nobody waits for its answer any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Stopped at its next await point past the deadline or when the client leaves (reads:
    /// previews).
    WhenAbandoned,
    /// Run to the end (writes); the deadline bounds only the wait for a turn.
    ToTheEnd,
}

/// The shared limiter.
#[derive(Debug, Clone)]
pub(crate) struct Heavy {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    settings: HeavySettings,
}

/// Sets the flag when dropped: the handler returned, timed out or its client went away.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Gives the waiting count back however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Heavy {
    pub(crate) fn new(settings: HeavySettings) -> Self {
        Heavy {
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            settings,
        }
    }

    /// Runs `work` on the blocking pool within the limits; `finish` says whether it may be
    /// stopped once started.
    pub(crate) async fn run<T, F>(&self, finish: Finish, work: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + self.settings.deadline;
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(cancelled.clone());
        let permit = {
            let ahead = self.waiting.fetch_add(1, Ordering::Relaxed);
            let _waiting = Waiting(&self.waiting);
            if ahead >= self.settings.queue {
                return Err(self.busy());
            }
            match tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(closed)) => return Err(ApiError::internal(&closed)),
                Err(_) => return Err(self.timed_out()),
            }
        };
        let handle = tokio::runtime::Handle::current();
        // A write's flag is one nobody sets: once started it runs to the end.
        let stop = match finish {
            Finish::WhenAbandoned => cancelled.clone(),
            Finish::ToTheEnd => Arc::new(AtomicBool::new(false)),
        };
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut work = std::pin::pin!(work);
            // Checked before every poll: each await in the engine (a store call) is a point
            // where abandoned work stops.
            handle.block_on(std::future::poll_fn(|cx| {
                if stop.load(Ordering::Relaxed) {
                    return Poll::Ready(None);
                }
                work.as_mut().poll(cx).map(Some)
            }))
        });
        let joined = match finish {
            Finish::WhenAbandoned => tokio::time::timeout_at(deadline, task).await,
            Finish::ToTheEnd => Ok(task.await),
        };
        match joined {
            Ok(Ok(Some(answer))) => answer,
            // Only after the flag was set, when nobody waits for the answer any more.
            Ok(Ok(None)) => Err(self.timed_out()),
            Ok(Err(join)) => Err(ApiError::internal(&join)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Large requests being worked on and waiting for a turn now.
    fn load(&self) -> (usize, usize) {
        let working = self
            .settings
            .concurrency
            .max(1)
            .saturating_sub(self.permits.available_permits());
        (working, self.waiting.load(Ordering::Relaxed))
    }

    fn busy(&self) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "the server is already working on {} large requests with {} more waiting ({HEAVY_CONCURRENCY_KEY}); try again shortly",
                self.settings.concurrency, self.settings.queue
            ),
        )
    }

    fn timed_out(&self) -> ApiError {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "the request took longer than the {} s limit for large requests ({HEAVY_DEADLINE_KEY}); give a smaller area or try again when the server is less busy",
                self.settings.deadline.as_secs_f64()
            ),
        )
    }
}

/// `/healthz` lists the queue as the `api` part: degraded while it is full (new large
/// requests get 503 `busy`), so the on-call engineer sees why previews are refused. The IVR
/// does not depend on it, so `/healthz` stays 200.
impl HealthSource for Heavy {
    fn components(&self) -> Vec<Component> {
        let (working, waiting) = self.load();
        let full = waiting >= self.settings.queue;
        vec![Component {
            name: "api".into(),
            state: if full {
                ComponentState::Degraded
            } else {
                ComponentState::Ok
            },
            reason: full.then(|| {
                format!(
                    "busy: {working} large requests (previews, declarations, imports) working and {waiting} waiting, the most allowed ({HEAVY_CONCURRENCY_KEY}); new ones get 503 until some finish"
                )
            }),
            since: None,
        }]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_and_checked() {
        let s = HeavySettings::from_lookup(|k| match k {
            HEAVY_CONCURRENCY_KEY => Some("3".into()),
            HEAVY_DEADLINE_KEY => Some("20".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (s.concurrency, s.queue, s.deadline),
            (3, 12, Duration::from_secs(20))
        );
        let err = HeavySettings::from_lookup(|k| (k == HEAVY_DEADLINE_KEY).then(|| "0".into()))
            .unwrap_err();
        assert!(err.starts_with("OUTAGECAST_HEAVY_DEADLINE"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn limits_answer_busy_and_timeout_and_abandoned_work_stops() {
        let heavy = Heavy::new(HeavySettings {
            concurrency: 1,
            queue: 1,
            deadline: Duration::from_millis(300),
        });
        assert_eq!(
            heavy
                .run(Finish::WhenAbandoned, async { Ok(7) })
                .await
                .unwrap(),
            7
        );
        // One working past its deadline, one waiting for it, a third refused at once.
        let steps = Arc::new(AtomicUsize::new(0));
        let slow = {
            let steps = steps.clone();
            async move {
                for _ in 0..50 {
                    steps.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(())
            }
        };
        assert_eq!(heavy.components()[0].state, ComponentState::Ok);
        let (a, b, c, health) = tokio::join!(
            heavy.run(Finish::WhenAbandoned, slow),
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                heavy.run(Finish::WhenAbandoned, async { Ok(()) }).await
            },
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                heavy.run(Finish::WhenAbandoned, async { Ok(()) }).await
            },
            async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                heavy.components().remove(0)
            },
        );
        // While one worked and one waited, the queue was full and /healthz said so.
        assert_eq!(health.state, ComponentState::Degraded);
        let reason = health.reason.unwrap();
        assert!(reason.starts_with("busy: 1 large requests"), "{reason}");
        assert!(reason.contains("1 waiting"), "{reason}");
        assert_eq!(a.unwrap_err().status(), StatusCode::GATEWAY_TIMEOUT);
        // The abandoned work stopped at its next await and gave its permit back within the
        // waiting one's deadline.
        assert!(b.is_ok());
        assert_eq!(c.unwrap_err().status(), StatusCode::SERVICE_UNAVAILABLE);
        let at_deadline = steps.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            steps.load(Ordering::Relaxed) <= at_deadline + 1,
            "the abandoned work stopped at its next await"
        );
        // The permit came back.
        assert_eq!(
            heavy
                .run(Finish::WhenAbandoned, async { Ok(1) })
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_runs_to_the_end_past_the_deadline_and_when_its_client_leaves() {
        let heavy = Heavy::new(HeavySettings {
            concurrency: 1,
            queue: 1,
            deadline: Duration::from_millis(100),
        });
        // Past its deadline: still answered, with its own result.
        let slow_write = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(5)
        };
        assert_eq!(heavy.run(Finish::ToTheEnd, slow_write).await.unwrap(), 5);
        // Its client gone: the write still finishes.
        let done = Arc::new(AtomicBool::new(false));
        let write = {
            let done = done.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                done.store(true, Ordering::Relaxed);
                Ok(())
            }
        };
        let abandoned = tokio::time::timeout(
            Duration::from_millis(50),
            heavy.run(Finish::ToTheEnd, write),
        );
        assert!(abandoned.await.is_err(), "the client left first");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(done.load(Ordering::Relaxed), "the write was not stopped");
    }
}
