//! When to try a notice again: exponential backoff with jitter, bounded by attempts and age.
//! Pure: the caller passes the clock and the random draw.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Retry limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first backoff.
    pub base: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
    /// Give up after this many attempts.
    pub max_attempts: u32,
    /// Give up on a notice older than this: news of an outage hours late does more harm
    /// than good.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
            max_attempts: 8,
            max_age: Duration::from_secs(6 * 3600),
        }
    }
}

impl RetryPolicy {
    /// When to try again after attempt number `attempts` failed, or `None` to give up.
    /// `retry_after` is the provider's own request and wins over the backoff; `jitter` is a
    /// uniform draw in [0, 1) that spreads retries so a recovering provider is not hit by a
    /// synchronised wave ("equal jitter": half fixed, half random).
    ///
    /// ```
    /// use std::time::Duration;
    /// use chrono::Utc;
    /// use outagecast_dispatch::retry::RetryPolicy;
    /// let p = RetryPolicy::default();
    /// let now = Utc::now();
    /// let next = p.next_attempt(1, now, now, None, 0.0).unwrap();
    /// assert_eq!((next - now).num_seconds(), 1); // half of the 2 s base
    /// assert!(p.next_attempt(8, now, now, None, 0.5).is_none()); // out of attempts
    /// ```
    pub fn next_attempt(
        &self,
        attempts: u32,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts {
            return None;
        }
        let delay = match retry_after {
            Some(after) => after,
            None => {
                let exp = self
                    .base
                    .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
                    .min(self.max_delay);
                exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
            }
        };
        let at = now + chrono::Duration::from_std(delay).ok()?;
        let deadline = created_at + chrono::Duration::from_std(self.max_age).ok()?;
        (at <= deadline).then_some(at)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let now = Utc::now();
        let delay =
            |n| (p.next_attempt(n, now, now, None, 0.999).unwrap() - now).num_milliseconds();
        assert!(delay(1) < delay(2) && delay(2) < delay(3));
        assert!(delay(7) <= 300_000);
    }

    #[test]
    fn retry_after_wins_but_not_past_the_age_limit() {
        let p = RetryPolicy::default();
        let now = Utc::now();
        let at = p
            .next_attempt(1, now, now, Some(Duration::from_secs(30)), 0.0)
            .unwrap();
        assert_eq!((at - now).num_seconds(), 30);
        let old = now - chrono::Duration::hours(6);
        assert!(
            p.next_attempt(1, old, now, Some(Duration::from_secs(30)), 0.0)
                .is_none()
        );
    }
}
