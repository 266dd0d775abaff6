//! How long to wait before reconnecting.

use std::time::Duration;

/// The wait before reconnection attempt number `failures` in a row
/// (1 for the first reconnection after an open connection ended).
///
/// The first wait is exactly `retry`, the reconnection time. Each failure in
/// a row doubles the ceiling, up to `max_backoff` (never below `retry`), and
/// the wait is drawn in the upper half of what exceeds `retry`:
/// `retry + (ceiling - retry) * (0.5 + jitter / 2)` with `jitter` in
/// `[0, 1)`. So a wait is never shorter than `retry`, never longer than the
/// ceiling, and clients that failed together spread out.
pub(super) fn reconnect_delay(
    retry: Duration,
    max_backoff: Duration,
    failures: u32,
    jitter: f64,
) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    let ceiling = retry
        .saturating_mul(1 << doublings)
        .min(max_backoff.max(retry));
    let excess = ceiling - retry;
    let factor = 0.5 + jitter.clamp(0.0, 1.0) / 2.0;
    // Not `mul_f64`: it panics when rounding pushes a huge `retry` (which
    // the server controls) past `Duration::MAX`.
    let extra = Duration::try_from_secs_f64(excess.as_secs_f64() * factor)
        .map_or(excess, |extra| extra.min(excess));
    retry + extra
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_reconnection_waits_exactly_retry() {
        for jitter in [0.0, 0.5, 0.999] {
            assert_eq!(reconnect_delay(100 * MS, 10_000 * MS, 1, jitter), 100 * MS);
        }
    }

    #[test]
    fn grows_exponentially_within_the_upper_half() {
        let retry = 100 * MS;
        for (failures, ceiling) in [(2, 200), (3, 400), (4, 800), (5, 1600)] {
            let ceiling = ceiling * MS;
            let low = reconnect_delay(retry, 60_000 * MS, failures, 0.0);
            let high = reconnect_delay(retry, 60_000 * MS, failures, 1.0);
            assert_eq!(low, retry + (ceiling - retry) / 2, "failures {failures}");
            assert_eq!(high, ceiling, "failures {failures}");
        }
    }

    #[test]
    fn capped_by_max_backoff_but_never_below_retry() {
        assert_eq!(reconnect_delay(100 * MS, 1000 * MS, 30, 1.0), 1000 * MS);
        assert_eq!(reconnect_delay(100 * MS, 1000 * MS, 30, 0.0), 550 * MS);
        // A server's retry above max_backoff wins.
        assert_eq!(reconnect_delay(5000 * MS, 1000 * MS, 7, 0.3), 5000 * MS);
    }

    #[test]
    fn no_overflow() {
        let max = Duration::MAX;
        assert_eq!(reconnect_delay(max, max, u32::MAX, 1.0), max);
        assert_eq!(
            reconnect_delay(Duration::from_secs(3), max, u32::MAX, 1.0),
            Duration::from_secs(3).saturating_mul(1 << 31)
        );
        assert_eq!(reconnect_delay(Duration::ZERO, max, 9, 0.5), Duration::ZERO);
        // A server may send `retry: 18446744073709551615`.
        let huge = Duration::from_millis(u64::MAX);
        assert!(reconnect_delay(huge, Duration::from_secs(60), 40, 0.9) >= huge);
        let nearly_max = Duration::new(u64::MAX / 2, 0);
        assert_eq!(
            reconnect_delay(nearly_max, max, 2, 1.0),
            Duration::new(u64::MAX - 1, 0)
        );
    }
}
