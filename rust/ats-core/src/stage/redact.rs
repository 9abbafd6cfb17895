//! Scrubs every free-text value on its way to the sinks.
//!
//! String attribute values, log bodies and error messages may carry PII or
//! secrets the instrumented program never meant to export. The scrubber's
//! clean fast path returns the input unchanged, so clean text costs one scan.

use std::borrow::Cow;
use std::sync::Arc;

use crate::flusher::Processor;
use crate::record::{AttrValue, Attributes, Record};
use crate::scrub::Scrubber;

pub struct Redactor {
    scrubber: Arc<Scrubber>,
}

impl Redactor {
    pub fn new(scrubber: Arc<Scrubber>) -> Self {
        Self { scrubber }
    }

    fn scrub_in_place(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.scrubber.scrub(text) {
            *text = clean;
        }
    }

    fn scrub_attributes(&self, attributes: &mut Attributes) {
        for (_, value) in attributes.iter_mut() {
            if let AttrValue::Str(text) = value {
                self.scrub_in_place(text);
            }
        }
    }
}

impl Processor for Redactor {
    fn name(&self) -> &str {
        "redact"
    }

    fn process(&mut self, batch: &mut Vec<Record>) {
        for record in batch.iter_mut() {
            match record {
                Record::Span(span) => self.scrub_attributes(&mut span.attributes),
                Record::Log(log) => {
                    self.scrub_in_place(&mut log.body);
                    self.scrub_attributes(&mut log.attributes);
                }
                // Metric labels and reward fields are bounded identifiers, not free text.
                Record::Metric(_) | Record::Reward(_) => {}
            }
        }
    }
}
