//! Circuit breaker in front of the collector: a down collector is probed
//! once per cool-down instead of being hammered by every payload.
//!
//! Pure state machine; the caller passes the time, so tests drive it
//! without sleeping.

use std::time::{Duration, Instant};

use super::config::BreakerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum BreakerState {
    #[default]
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// What the breaker allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Send (in half-open: this is the one probe).
    Go,
    /// Leave the collector alone this long.
    Wait(Duration),
}

#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// Cool-down of the current (or last) open period.
    cooldown: Duration,
    opened: u64,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            open_until: None,
            cooldown: config.cooldown,
            opened: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Times the breaker went from closed (or half-open) to open.
    pub fn times_opened(&self) -> u64 {
        self.opened
    }

    pub fn permit(&mut self, now: Instant) -> Permit {
        match (self.state, self.open_until) {
            (BreakerState::Open, Some(until)) if now < until => Permit::Wait(until - now),
            (BreakerState::Open, _) => {
                self.state = BreakerState::HalfOpen;
                Permit::Go
            }
            _ => Permit::Go,
        }
    }

    /// The collector answered (even with a rejection): it is up.
    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed;
        self.consecutive_failures = 0;
        self.open_until = None;
        self.cooldown = self.config.cooldown;
    }

    /// A retryable failure (connection error, timeout, 429/5xx...).
    pub fn on_failure(&mut self, now: Instant) {
        match self.state {
            BreakerState::HalfOpen => {
                // The probe failed: wait longer before the next one.
                self.cooldown = (self.cooldown * 2).min(self.config.max_cooldown.max(self.config.cooldown));
                self.open(now);
            }
            BreakerState::Closed => {
                self.consecutive_failures += 1;
                if self.consecutive_failures >= self.config.failure_threshold.max(1) {
                    self.cooldown = self.config.cooldown;
                    self.open(now);
                }
            }
            BreakerState::Open => {}
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.open_until = Some(now + self.cooldown);
        self.opened += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig { failure_threshold: 3, cooldown: Duration::from_secs(1), max_cooldown: Duration::from_secs(3) }
    }

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown_with_backoff() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg());
        b.on_failure(t0);
        b.on_failure(t0);
        assert_eq!((b.state(), b.permit(t0)), (BreakerState::Closed, Permit::Go));
        b.on_failure(t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.permit(t0 + Duration::from_millis(400)), Permit::Wait(Duration::from_millis(600)));
        assert_eq!(b.permit(t0 + Duration::from_secs(1)), Permit::Go);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // Failed probe: cool-down doubles (2 s), then is capped (3 s).
        let t1 = t0 + Duration::from_secs(1);
        b.on_failure(t1);
        assert_eq!(b.permit(t1), Permit::Wait(Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(b.permit(t2), Permit::Go);
        b.on_failure(t2);
        assert_eq!(b.permit(t2), Permit::Wait(Duration::from_secs(3)));
        assert_eq!(b.times_opened(), 3);
        let t3 = t2 + Duration::from_secs(3);
        assert_eq!(b.permit(t3), Permit::Go);
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        // Closed again: the count of failures starts over, cool-down is back to 1 s.
        b.on_failure(t3);
        b.on_failure(t3);
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure(t3);
        assert_eq!(b.permit(t3), Permit::Wait(Duration::from_secs(1)));
    }

    #[test]
    fn success_resets_the_failure_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg());
        b.on_failure(t0);
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        b.on_failure(t0);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
