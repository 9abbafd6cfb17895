//! Tail sampling: hold a trace's spans until its local root ends, then keep
//! the whole trace if any span failed or was slow, plus a base ratio of the
//! rest.
//!
//! Spans are offered as they end (children usually before their root). A
//! span with `parent_span_id == 0` is the local root; its arrival decides the
//! trace. The decision for every other trace is taken early, from the spans
//! seen so far, in two bounded situations:
//!
//! - **Caps.** At most `max_traces` traces, `max_spans` spans and `max_bytes`
//!   bytes (as reported by the caller per span) are held. When an offer goes
//!   over a cap, the oldest held traces (by first span seen) are decided until
//!   it is under again. Counted in [`TailStats::early_decisions`].
//! - **Timeout.** A trace whose first span was seen `trace_timeout_ns` or more
//!   before `now_ns` is decided (its root may never end, e.g. the process
//!   lost it). Checked on every offer and by [`TailSampler::tick`]. Counted in
//!   [`TailStats::timed_out`].
//!
//! The rule is the same in every case: keep iff a span seen so far failed or
//! took longer than `latency_threshold_ns`, or the trace id falls within
//! `base_ratio` (a [`TraceIdRatio`] test, so the "rest" agrees with a head
//! sampler at the same ratio). An early decision therefore never loses an
//! error it has already seen; it can only miss evidence that arrives later.
//!
//! Decided trace ids are remembered (the last `decided_cache` of them) so
//! that spans arriving after the decision follow it: kept traces stay whole,
//! dropped ones stay dropped ([`TailStats::late_kept`] / `late_dropped`).
//!
//! Spans with trace id 0 ("no trace") cannot be grouped and are decided alone
//! by the same rule.
//!
//! `now_ns` should not go backwards; if it does, timeouts are merely late.
//! Not internally synchronised: the flusher thread owns one instance (wrap it
//! in a mutex to share it).

use std::collections::{BTreeMap, HashMap, VecDeque};

use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::ratio::TraceIdRatio;
use super::SamplingError;

/// Tail sampler configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TailConfig {
    /// Keep traces with a span strictly longer than this.
    pub latency_threshold_ns: u64,
    /// Fraction of the remaining (fast, successful) traces to keep.
    pub base_ratio: f64,
    /// Traces held at once, `>= 1`.
    pub max_traces: usize,
    /// Spans held at once, `>= 1`.
    pub max_spans: usize,
    /// Sum of `size_bytes` held at once, `>= 1`.
    pub max_bytes: usize,
    /// A trace is decided this long after its first span was seen, `> 0`.
    pub trace_timeout_ns: u64,
    /// Decisions remembered for late spans (0 = none).
    pub decided_cache: usize,
}

impl Default for TailConfig {
    fn default() -> Self {
        Self {
            latency_threshold_ns: 500_000_000,
            base_ratio: 0.1,
            max_traces: 10_000,
            max_spans: 100_000,
            max_bytes: 64 << 20,
            trace_timeout_ns: 30_000_000_000,
            decided_cache: 10_000,
        }
    }
}

/// One ended span as offered to the tail sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct TailSpan<T> {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0 marks the local root (no parent in this process).
    pub parent_span_id: u64,
    pub is_error: bool,
    pub duration_ns: u64,
    /// What holding this span costs (encoded size); counts toward `max_bytes`.
    pub size_bytes: usize,
    pub item: T,
}

/// What one call released: items to keep (in offer order per trace) and how
/// much was dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct TailDecisions<T> {
    pub keep: Vec<T>,
    pub kept_traces: u64,
    pub dropped_traces: u64,
    pub dropped_spans: u64,
}

impl<T> Default for TailDecisions<T> {
    fn default() -> Self {
        Self {
            keep: Vec::new(),
            kept_traces: 0,
            dropped_traces: 0,
            dropped_spans: 0,
        }
    }
}

impl<T> TailDecisions<T> {
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
            && self.kept_traces == 0
            && self.dropped_traces == 0
            && self.dropped_spans == 0
    }
}

/// Counters since creation plus the current holdings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TailStats {
    pub held_traces: usize,
    pub held_spans: usize,
    pub held_bytes: usize,
    pub kept_traces: u64,
    pub dropped_traces: u64,
    pub kept_spans: u64,
    pub dropped_spans: u64,
    /// Traces decided before their root ended because a cap was exceeded.
    pub early_decisions: u64,
    /// Traces decided because their root did not end in time.
    pub timed_out: u64,
    /// Spans that arrived after their trace was decided.
    pub late_kept: u64,
    pub late_dropped: u64,
}

struct Held<T> {
    seq: u64,
    first_seen_ns: u64,
    bytes: usize,
    interesting: bool,
    items: Vec<T>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    RootEnded,
    Cap,
    Timeout,
    Flush,
}

/// Bounded tail sampler, generic over the held item. See the module docs.
pub struct TailSampler<T> {
    config: TailConfig,
    ratio: TraceIdRatio,
    held: HashMap<u128, Held<T>, Xxh3DefaultBuilder>,
    /// First-seen order (seq -> trace id): oldest first.
    order: BTreeMap<u64, u128>,
    next_seq: u64,
    held_spans: usize,
    held_bytes: usize,
    decided: HashMap<u128, bool, Xxh3DefaultBuilder>,
    decided_order: VecDeque<u128>,
    stats: TailStats,
}

impl<T> std::fmt::Debug for TailSampler<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailSampler")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<T> TailSampler<T> {
    pub fn new(config: TailConfig) -> Result<Self, SamplingError> {
        let invalid = |reason: &str| {
            Err(SamplingError::InvalidTailConfig {
                reason: reason.to_owned(),
            })
        };
        if config.max_traces == 0 {
            return invalid("max_traces must be at least 1");
        }
        if config.max_spans == 0 {
            return invalid("max_spans must be at least 1");
        }
        if config.max_bytes == 0 {
            return invalid("max_bytes must be at least 1");
        }
        if config.trace_timeout_ns == 0 {
            return invalid("trace_timeout_ns must be > 0");
        }
        let ratio = TraceIdRatio::new(config.base_ratio)?;
        Ok(Self {
            ratio,
            held: HashMap::default(),
            order: BTreeMap::new(),
            next_seq: 0,
            held_spans: 0,
            held_bytes: 0,
            decided: HashMap::default(),
            decided_order: VecDeque::new(),
            stats: TailStats::default(),
            config,
        })
    }

    pub fn config(&self) -> &TailConfig {
        &self.config
    }

    /// Offers one ended span; returns whatever this released.
    pub fn offer(&mut self, span: TailSpan<T>, now_ns: u64) -> TailDecisions<T> {
        let mut out = TailDecisions::default();
        self.offer_into(span, now_ns, &mut out);
        out
    }

    /// Like [`offer`](Self::offer) but appends to `out`, so a batch loop can
    /// reuse one buffer.
    pub fn offer_into(&mut self, span: TailSpan<T>, now_ns: u64, out: &mut TailDecisions<T>) {
        self.expire(now_ns, out);
        let interesting = span.is_error || span.duration_ns > self.config.latency_threshold_ns;

        if span.trace_id == 0 {
            let keep = interesting || self.ratio.keeps(0);
            let mut held = Held {
                seq: 0,
                first_seen_ns: now_ns,
                bytes: 0,
                interesting,
                items: vec![span.item],
            };
            self.emit(&mut held, keep, out);
            return;
        }

        if let Some(&keep) = self.decided.get(&span.trace_id) {
            if keep {
                self.stats.late_kept += 1;
                self.stats.kept_spans += 1;
                out.keep.push(span.item);
            } else {
                self.stats.late_dropped += 1;
                self.stats.dropped_spans += 1;
                out.dropped_spans += 1;
            }
            return;
        }

        let held = self.held.entry(span.trace_id).or_insert_with(|| {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.order.insert(seq, span.trace_id);
            Held {
                seq,
                first_seen_ns: now_ns,
                bytes: 0,
                interesting: false,
                items: Vec::new(),
            }
        });
        held.items.push(span.item);
        held.bytes = held.bytes.saturating_add(span.size_bytes);
        held.interesting |= interesting;
        self.held_spans += 1;
        self.held_bytes = self.held_bytes.saturating_add(span.size_bytes);

        if span.parent_span_id == 0 {
            self.decide(span.trace_id, Why::RootEnded, out);
        }
        while self.held.len() > self.config.max_traces
            || self.held_spans > self.config.max_spans
            || self.held_bytes > self.config.max_bytes
        {
            let Some((_, &oldest)) = self.order.iter().next() else {
                break;
            };
            self.decide(oldest, Why::Cap, out);
        }
    }

    /// Decides every trace that has timed out at `now_ns`.
    pub fn tick(&mut self, now_ns: u64) -> TailDecisions<T> {
        let mut out = TailDecisions::default();
        self.expire(now_ns, &mut out);
        out
    }

    /// Decides every held trace now (shutdown), by the same rule.
    pub fn flush(&mut self) -> TailDecisions<T> {
        let mut out = TailDecisions::default();
        while let Some((_, &oldest)) = self.order.iter().next() {
            self.decide(oldest, Why::Flush, &mut out);
        }
        out
    }

    pub fn stats(&self) -> TailStats {
        TailStats {
            held_traces: self.held.len(),
            held_spans: self.held_spans,
            held_bytes: self.held_bytes,
            ..self.stats
        }
    }

    fn expire(&mut self, now_ns: u64, out: &mut TailDecisions<T>) {
        while let Some((_, &oldest)) = self.order.iter().next() {
            let due = match self.held.get(&oldest) {
                Some(h) => now_ns.saturating_sub(h.first_seen_ns) >= self.config.trace_timeout_ns,
                None => true, // unreachable by construction; self-heal the index
            };
            if !due {
                break;
            }
            self.decide(oldest, Why::Timeout, out);
        }
    }

    fn decide(&mut self, trace_id: u128, why: Why, out: &mut TailDecisions<T>) {
        let Some(mut held) = self.held.remove(&trace_id) else {
            // Index entry without a trace: drop the stale entry.
            self.order.retain(|_, t| *t != trace_id);
            return;
        };
        self.order.remove(&held.seq);
        self.held_spans -= held.items.len();
        self.held_bytes = self.held_bytes.saturating_sub(held.bytes);
        match why {
            Why::Cap => self.stats.early_decisions += 1,
            Why::Timeout => self.stats.timed_out += 1,
            Why::RootEnded | Why::Flush => {}
        }
        let keep = held.interesting || self.ratio.keeps(trace_id);
        self.remember(trace_id, keep);
        self.emit(&mut held, keep, out);
    }

    fn emit(&mut self, held: &mut Held<T>, keep: bool, out: &mut TailDecisions<T>) {
        let n = held.items.len() as u64;
        if keep {
            self.stats.kept_traces += 1;
            self.stats.kept_spans += n;
            out.kept_traces += 1;
            out.keep.append(&mut held.items);
        } else {
            self.stats.dropped_traces += 1;
            self.stats.dropped_spans += n;
            out.dropped_traces += 1;
            out.dropped_spans += n;
            held.items.clear();
        }
    }

    fn remember(&mut self, trace_id: u128, keep: bool) {
        if self.config.decided_cache == 0 {
            return;
        }
        if self.decided.insert(trace_id, keep).is_none() {
            self.decided_order.push_back(trace_id);
        }
        while self.decided_order.len() > self.config.decided_cache {
            if let Some(old) = self.decided_order.pop_front() {
                self.decided.remove(&old);
            }
        }
    }
}
