//! How long to wait before reconnecting.

use std::time::Duration;

/// The wait before the next connection attempt.
///
/// `failures` counts the connections in a row that were not healthy (see
/// [`EventSourceBuilder::reset_backoff_after`](super::EventSourceBuilder::reset_backoff_after)),
/// the one that just ended included; `jitter` is drawn from `[0, 1)`.
///
/// * After a healthy stream (`failures == 0`) the wait is the reconnection
///   time `retry`, as the spec says, even when it is zero.
/// * After `n` failures in a row the back-off starts from
///   `base = max(retry, min_backoff)`: the ceiling is `base * 2^n`, and the
///   wait is drawn in its upper half, but never below `base`:
///   `max(base, ceiling * (1 + jitter) / 2)`. Whatever `retry` says, failing
///   attempts never come faster than `min_backoff`, and clients that failed
///   together spread out.
/// * Every wait is at most `max_backoff`: a huge `retry` from a server cannot
///   put the client to sleep for ever.
pub(super) fn reconnect_delay(
    retry: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    failures: u32,
    jitter: f64,
) -> Duration {
    let retry = retry.min(max_backoff);
    if failures == 0 {
        return retry;
    }
    let base = retry.max(min_backoff).min(max_backoff);
    let ceiling = base.saturating_mul(1 << failures.min(31)).min(max_backoff);
    let factor = 0.5 + jitter.clamp(0.0, 1.0) / 2.0;
    // Not `mul_f64`: it panics when rounding pushes a value past
    // `Duration::MAX`.
    let wait = Duration::try_from_secs_f64(ceiling.as_secs_f64() * factor)
        .map_or(ceiling, |wait| wait.min(ceiling));
    wait.max(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const MIN: Duration = Duration::from_millis(1000);
    const MAX: Duration = Duration::from_millis(60_000);

    #[test]
    fn after_a_healthy_stream_waits_exactly_retry() {
        for jitter in [0.0, 0.5, 0.999] {
            assert_eq!(reconnect_delay(100 * MS, MIN, MAX, 0, jitter), 100 * MS);
            assert_eq!(
                reconnect_delay(Duration::ZERO, MIN, MAX, 0, jitter),
                Duration::ZERO
            );
        }
    }

    #[test]
    fn failures_back_off_from_the_floor_whatever_retry() {
        for retry in [Duration::ZERO, MS, 999 * MS, MIN] {
            for (failures, ceiling) in [(1, 2000), (2, 4000), (3, 8000), (4, 16_000)] {
                let ceiling = ceiling * MS;
                let low = reconnect_delay(retry, MIN, MAX, failures, 0.0);
                let high = reconnect_delay(retry, MIN, MAX, failures, 1.0);
                assert_eq!(low, ceiling / 2, "retry {retry:?}, failures {failures}");
                assert_eq!(high, ceiling, "retry {retry:?}, failures {failures}");
            }
        }
    }

    #[test]
    fn a_retry_above_the_floor_is_the_base() {
        let retry = 3000 * MS;
        assert_eq!(reconnect_delay(retry, MIN, MAX, 1, 0.0), retry);
        assert_eq!(reconnect_delay(retry, MIN, MAX, 1, 1.0), 6000 * MS);
        assert_eq!(reconnect_delay(retry, MIN, MAX, 2, 0.0), 6000 * MS);
    }

    #[test]
    fn capped_by_max_backoff_with_jitter_but_never_below_the_base() {
        assert_eq!(reconnect_delay(MIN, MIN, MAX, 30, 1.0), MAX);
        assert_eq!(reconnect_delay(MIN, MIN, MAX, 30, 0.0), MAX / 2);
        // A base above half the cap is still the lowest wait.
        let max = 1500 * MS;
        assert_eq!(reconnect_delay(MIN, MIN, max, 9, 0.0), MIN);
        assert_eq!(reconnect_delay(MIN, MIN, max, 9, 1.0), max);
    }

    #[test]
    fn a_huge_retry_is_cut_to_max_backoff() {
        let huge = Duration::from_millis(u64::MAX);
        for failures in [0, 1, 40, u32::MAX] {
            assert!(reconnect_delay(huge, MIN, MAX, failures, 0.3) <= MAX);
        }
        assert_eq!(reconnect_delay(huge, MIN, MAX, 0, 0.3), MAX);
        // A floor above the cap: the cap wins.
        assert_eq!(reconnect_delay(MS, 2 * MAX, MAX, 3, 0.0), MAX);
    }

    #[test]
    fn no_overflow() {
        let max = Duration::MAX;
        assert_eq!(reconnect_delay(max, max, max, u32::MAX, 1.0), max);
        assert_eq!(reconnect_delay(max, MIN, max, u32::MAX, 0.0), max);
        assert_eq!(
            reconnect_delay(Duration::from_secs(3), MIN, max, u32::MAX, 1.0),
            Duration::from_secs(3).saturating_mul(1 << 31)
        );
        assert_eq!(
            reconnect_delay(Duration::ZERO, Duration::ZERO, max, 9, 0.5),
            Duration::ZERO
        );
        let nearly_max = Duration::new(u64::MAX / 2, 0);
        assert_eq!(
            reconnect_delay(nearly_max, MIN, max, 1, 1.0),
            Duration::new(u64::MAX - 1, 0)
        );
    }
}
