//! When to try a payload again: exponential backoff with full jitter, or the
//! server's `Retry-After` (delta-seconds or HTTP-date).

use std::time::{Duration, SystemTime};

use super::config::RetryConfig;

/// Longest server-requested pause honoured; a larger `Retry-After` is cut to
/// this so one header cannot park the exporter for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Delay before retry number `attempt` (0 = first retry): uniformly random in
/// `[0, min(max, initial * 2^attempt)]` ("full jitter"), so many processes
/// that lost the same collector do not come back in lockstep.
pub fn backoff(config: &RetryConfig, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
    let cap = config
        .initial_backoff
        .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .min(config.max_backoff);
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.u64(0..=nanos))
}

/// Parses a `Retry-After` value relative to `now`. A date in the past means
/// "now" (zero); garbage means "no advice" (`None`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:07 GMT", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn backoff_is_bounded_by_the_exponential_cap() {
        let cfg = RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_elapsed: None,
        };
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 0..40 {
            let cap = Duration::from_millis(100 * (1u64 << attempt.min(20))).min(Duration::from_millis(1000));
            for _ in 0..50 {
                assert!(backoff(&cfg, attempt, &mut rng) <= cap);
            }
        }
        // Jitter spreads: not every draw is the cap.
        let draws: Vec<_> = (0..20).map(|_| backoff(&cfg, 5, &mut rng)).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_millis(900)));
    }
}
