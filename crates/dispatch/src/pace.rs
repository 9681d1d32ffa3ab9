//! The provider's rate, shared fairly: each send reserves its start time in arrival order
//! (GCRA, the "virtual scheduling" form of a token bucket), so no send waits longer than the
//! ones before it, and a send that could not start before its deadline takes nothing from the
//! rate.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The send costs more units than the burst allows at once: it can never start.
    TooCostly,
    /// It could not start before the deadline given; nothing was reserved.
    TooLate,
}

/// A rate of `rate` units per second with bursts of up to `burst` units.
#[derive(Debug)]
pub struct Pacer {
    /// Time per unit.
    interval: Duration,
    /// How far ahead of the steady pace a burst may run.
    tolerance: Duration,
    burst: u32,
    /// The theoretical arrival time: when the bucket would be empty again.
    tat: Mutex<Option<Instant>>,
}

impl Pacer {
    /// `rate` units per second, bursts of up to `burst` units.
    pub fn new(rate: NonZeroU32, burst: NonZeroU32) -> Self {
        let interval = Duration::from_secs(1) / rate.get();
        Pacer {
            interval,
            tolerance: interval * burst.get(),
            burst: burst.get(),
            tat: Mutex::new(None),
        }
    }

    /// Reserves `cost` units: the instant the send may start (now or later), unless that
    /// would be after `deadline`.
    pub fn reserve(&self, cost: u32, now: Instant, deadline: Instant) -> Result<Instant, Refused> {
        if cost > self.burst {
            return Err(Refused::TooCostly);
        }
        let mut tat = self.tat.lock().unwrap_or_else(|e| e.into_inner());
        let from = tat.map_or(now, |t| t.max(now));
        let next = from + self.interval * cost;
        let start = (next.checked_sub(self.tolerance)).map_or(now, |s| s.max(now));
        if start > deadline {
            return Err(Refused::TooLate);
        }
        *tat = Some(next);
        Ok(start)
    }

    /// Units per second.
    pub fn rate(&self) -> f64 {
        1.0 / self.interval.as_secs_f64().max(1e-9)
    }

    /// Waits for a reservation of `cost` units made now.
    pub async fn until_ready(&self, cost: u32, deadline: Instant) -> Result<(), Refused> {
        let start = self.reserve(cost, Instant::now(), deadline)?;
        tokio::time::sleep_until(start).await;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pacer(rate: u32, burst: u32) -> Pacer {
        Pacer::new(
            NonZeroU32::new(rate).unwrap(),
            NonZeroU32::new(burst).unwrap(),
        )
    }

    #[test]
    fn a_burst_goes_at_once_then_the_steady_rate_in_arrival_order() {
        let p = pacer(100, 10);
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(60);
        let starts: Vec<Duration> = (0..30)
            .map(|_| p.reserve(1, t0, far).unwrap() - t0)
            .collect();
        assert!(starts[..10].iter().all(|s| s.is_zero()));
        for (k, s) in starts.iter().enumerate().skip(10) {
            assert_eq!(*s, Duration::from_millis(10) * (k as u32 - 9), "{k}");
        }
    }

    #[test]
    fn costs_add_up_and_a_refused_send_takes_nothing() {
        let p = pacer(10, 2);
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(60);
        assert_eq!(p.reserve(2, t0, far).unwrap(), t0);
        // The bucket is empty: the next unit is 100 ms away.
        let soon = t0 + Duration::from_millis(50);
        assert_eq!(p.reserve(1, t0, soon), Err(Refused::TooLate));
        assert_eq!(
            p.reserve(1, t0, far).unwrap(),
            t0 + Duration::from_millis(100)
        );
        assert_eq!(p.reserve(3, t0, far), Err(Refused::TooCostly));
        // After a pause the bucket refills, up to the burst.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(p.reserve(2, later, far).unwrap(), later);
    }
}
