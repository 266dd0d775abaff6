//! The Redis the Redis tests run against.

use std::io::Write as _;

/// The Redis to test against (`REDIS_URL`), or `None` to skip the test.
///
/// Skipping happens outside CI only: with `CI` set and no `REDIS_URL`, this
/// panics, so a CI run without Redis fails instead of passing silently.
pub fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| !ci.is_empty()) => panic!(
            "REDIS_URL is not set, and CI is: the Redis tests must run in CI \
             (start a server with `eval \"$(.ci/redis.sh)\"`)"
        ),
        _ => {
            // Straight to stderr, past the test harness's capture: a skip
            // must be seen, once per test binary.
            static NOTE: std::sync::Once = std::sync::Once::new();
            NOTE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "note: REDIS_URL is not set: skipping the Redis tests \
                     (run `eval \"$(.ci/redis.sh)\"` first to run them)"
                );
            });
            None
        }
    }
}
