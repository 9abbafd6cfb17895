//! Tail sampling on the flusher thread: spans are held until their trace's
//! local root ends, then the whole trace is kept (failed, slow, or in the
//! base ratio) or dropped. Other record kinds pass straight through.


use crate::flusher::Processor;
use crate::record::{codec, Record, Status};
use crate::sampling::{SamplingError, TailConfig, TailDecisions, TailSampler, TailSpan, TailStats};

pub struct TailStage {
    sampler: TailSampler<Record>,
    decisions: TailDecisions<Record>,
}

use crate::clock::now_ns;

impl TailStage {
    pub fn new(config: TailConfig) -> Result<Self, SamplingError> {
        Ok(Self { sampler: TailSampler::new(config)?, decisions: TailDecisions::default() })
    }

    pub fn stats(&self) -> TailStats {
        self.sampler.stats()
    }

    fn release_into(&mut self, batch: &mut Vec<Record>) {
        batch.append(&mut self.decisions.keep);
        self.decisions = TailDecisions::default();
    }
}

impl Processor for TailStage {
    fn name(&self) -> &str {
        "tail_sampling"
    }

    fn process(&mut self, batch: &mut Vec<Record>) {
        let now = now_ns();
        let incoming = std::mem::take(batch);
        for record in incoming {
            match record {
                Record::Span(span) => {
                    let (trace_id, span_id, parent_span_id) =
                        (span.envelope.trace_id, span.envelope.span_id, span.envelope.parent_span_id);
                    let is_error = span.status == Status::Error;
                    let duration_ns = span.end_ns.saturating_sub(span.envelope.ts_ns);
                    let item = Record::Span(span);
                    let size_bytes = codec::encoded_len(&item);
                    let offered = TailSpan { trace_id, span_id, parent_span_id, is_error, duration_ns, size_bytes, item };
                    self.sampler.offer_into(offered, now, &mut self.decisions);
                }
                other => batch.push(other),
            }
        }
        let timed_out = self.sampler.tick(now);
        self.decisions.keep.extend(timed_out.keep);
        self.release_into(batch);
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        self.decisions.keep.extend(self.sampler.flush().keep);
        self.release_into(out);
    }
}
