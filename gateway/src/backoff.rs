//! Retry waits: exponential from a first step up to a cap, with jitter (50% to 100% of the
//! step) so that clients failing together do not retry in lockstep.

use std::time::Duration;

/// An exponential backoff.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The step of the first retry; doubled at each further one.
    pub first: Duration,
    /// The largest step.
    pub max: Duration,
}

impl Backoff {
    /// The wait after failed attempt `attempt` (1-based).
    pub fn wait(&self, attempt: u32) -> Duration {
        let step = self
            .first
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        step.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    /// Waits for [`Self::wait`] of `attempt`.
    pub async fn sleep(&self, attempt: u32) {
        tokio::time::sleep(self.wait(attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn waits_double_from_the_first_step_with_jitter_up_to_the_cap() {
        let backoff = Backoff {
            first: 100 * MS,
            max: 30_000 * MS,
        };
        // (attempt, step): 100 ms, 200 ms, 400 ms, ..., then 30 s from attempt 10 (51.2 s)
        for (attempt, step) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (9, 25_600),
            (10, 30_000),
            (40, 30_000),
        ] {
            let waits: Vec<Duration> = (0..200).map(|_| backoff.wait(attempt)).collect();
            let (low, high) = (step * MS / 2, step * MS);
            assert!(
                waits.iter().all(|w| *w >= low && *w <= high),
                "attempt {attempt}: every wait within {low:?}..={high:?}"
            );
            assert!(
                waits.iter().any(|w| *w != waits[0]),
                "attempt {attempt}: the waits vary (jitter)"
            );
        }
    }
}
