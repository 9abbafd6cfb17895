//! Per event-family sampling rules ("errors 100 %, successes 10 %").
//!
//! A rule is keyed by an event-name prefix and carries one rate for `ok`
//! outcomes and one for `error` outcomes. Matching is a plain byte prefix
//! (`driver.` matches `driver.query` and `driver.handshake`; `driver.query`
//! matches `driver.query` and `driver.query_batch`), and the longest matching
//! prefix wins, so a specific rule refines a general one. The empty prefix is
//! allowed and matches everything (a catch-all).
//!
//! Each rate is applied as a [`TraceIdRatio`] to the trace id, so every span
//! of one trace with the same family and outcome gets the same decision, and
//! because ratio decisions nest, a trace kept at the `ok` rate is also kept at
//! any higher `error` rate.
//!
//! Rules are few (tens); a linear scan over rules sorted by descending prefix
//! length beats hashing every prefix of the name, and the first hit is the
//! longest.

use super::ratio::TraceIdRatio;
use super::{Decision, Sampler, SamplingError, SamplingInput};

/// One family rule as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyRule {
    /// Event-name prefix, e.g. `driver.` or `driver.query`.
    pub prefix: String,
    /// Rate for spans whose outcome is `ok` (or unset), in `[0, 1]`.
    pub ok_rate: f64,
    /// Rate for spans whose outcome is `error`, in `[0, 1]`.
    pub error_rate: f64,
}

impl FamilyRule {
    pub fn new(prefix: impl Into<String>, ok_rate: f64, error_rate: f64) -> Self {
        Self {
            prefix: prefix.into(),
            ok_rate,
            error_rate,
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledRule {
    prefix: Box<str>,
    ok: TraceIdRatio,
    error: TraceIdRatio,
}

/// Longest-prefix family rules with a default ratio for unmatched names.
#[derive(Debug, Clone)]
pub struct FamilyRules {
    /// Sorted by descending prefix length: the first match is the longest.
    rules: Vec<CompiledRule>,
    default: TraceIdRatio,
}

impl FamilyRules {
    /// Validates every rate and rejects duplicate prefixes (which would make
    /// "longest wins" ambiguous). `default_ratio` decides unmatched names.
    pub fn new(rules: Vec<FamilyRule>, default_ratio: f64) -> Result<Self, SamplingError> {
        let default = TraceIdRatio::new(default_ratio)?;
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            let rate = |r: f64, which: &str| {
                TraceIdRatio::new(r).map_err(|_| SamplingError::InvalidRule {
                    prefix: rule.prefix.clone(),
                    reason: format!("{which} rate must be within [0, 1], got {r}"),
                })
            };
            let ok = rate(rule.ok_rate, "ok")?;
            let error = rate(rule.error_rate, "error")?;
            compiled.push(CompiledRule {
                prefix: rule.prefix.into_boxed_str(),
                ok,
                error,
            });
        }
        // Stable sort, then duplicates are adjacent.
        compiled.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then_with(|| a.prefix.cmp(&b.prefix))
        });
        if let Some(w) = compiled.windows(2).find(|w| w[0].prefix == w[1].prefix) {
            return Err(SamplingError::DuplicateRulePrefix {
                prefix: w[0].prefix.to_string(),
            });
        }
        Ok(Self {
            rules: compiled,
            default,
        })
    }

    /// The prefix of the rule that applies to `event_name`, if any.
    pub fn matching_prefix(&self, event_name: &str) -> Option<&str> {
        self.find(event_name).map(|r| &*r.prefix)
    }

    /// The rate a rule assigns to `event_name` with this outcome, or `None`
    /// when no rule matches.
    pub fn rule_rate(&self, event_name: &str, is_error: bool) -> Option<f64> {
        self.find(event_name).map(|r| {
            if is_error {
                r.error.ratio()
            } else {
                r.ok.ratio()
            }
        })
    }

    /// The rule decision, or `None` when no rule matches (the default ratio
    /// is not applied here; [`Sampler::should_sample`] does that).
    #[inline]
    pub fn decide(&self, trace_id: u128, event_name: &str, is_error: bool) -> Option<bool> {
        self.find(event_name).map(|r| {
            if is_error {
                r.error.keeps(trace_id)
            } else {
                r.ok.keeps(trace_id)
            }
        })
    }

    #[inline]
    fn find(&self, event_name: &str) -> Option<&CompiledRule> {
        let name = event_name.as_bytes();
        self.rules
            .iter()
            .find(|r| name.starts_with(r.prefix.as_bytes()))
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Sampler for FamilyRules {
    #[inline]
    fn should_sample(&self, ctx: &SamplingInput<'_>) -> Decision {
        let keep = self
            .decide(ctx.trace_id, ctx.event_name, ctx.is_error)
            .unwrap_or_else(|| self.default.keeps(ctx.trace_id));
        Decision::from_bool(keep)
    }

    fn description(&self) -> String {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| {
                format!(
                    "{:?}:ok={},error={}",
                    r.prefix,
                    r.ok.ratio(),
                    r.error.ratio()
                )
            })
            .collect();
        format!(
            "FamilyRules{{[{}],default:{}}}",
            rules.join(";"),
            self.default.ratio()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> FamilyRules {
        FamilyRules::new(
            vec![
                FamilyRule::new("driver.", 0.1, 1.0),
                FamilyRule::new("driver.query", 0.5, 1.0),
                FamilyRule::new("mcp.", 0.0, 0.0),
            ],
            1.0,
        )
        .unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let r = rules();
        assert_eq!(r.matching_prefix("driver.query"), Some("driver.query"));
        assert_eq!(
            r.matching_prefix("driver.query_batch"),
            Some("driver.query")
        );
        assert_eq!(r.matching_prefix("driver.handshake"), Some("driver."));
        assert_eq!(r.matching_prefix("driver"), None);
        assert_eq!(r.matching_prefix("agent.run"), None);
        assert_eq!(r.rule_rate("driver.query", false), Some(0.5));
        assert_eq!(r.rule_rate("driver.close", false), Some(0.1));
        assert_eq!(r.rule_rate("driver.close", true), Some(1.0));
    }

    #[test]
    fn duplicate_and_invalid_rules_are_errors() {
        let dup = FamilyRules::new(
            vec![
                FamilyRule::new("a.", 1.0, 1.0),
                FamilyRule::new("a.", 0.5, 1.0),
            ],
            1.0,
        );
        assert_eq!(
            dup.unwrap_err(),
            SamplingError::DuplicateRulePrefix {
                prefix: "a.".into()
            }
        );
        let bad = FamilyRules::new(vec![FamilyRule::new("a.", f64::NAN, 1.0)], 1.0);
        assert!(matches!(bad, Err(SamplingError::InvalidRule { .. })));
        assert!(FamilyRules::new(vec![], 1.5).is_err());
    }
}
