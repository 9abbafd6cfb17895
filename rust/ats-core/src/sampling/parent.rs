//! Parent-based sampling, shaped like OpenTelemetry's `ParentBased`.
//!
//! A span with a parent follows the decision already taken for its trace
//! (by default: sampled parent → sample, unsampled parent → drop), because a
//! trace with holes is worth less than no trace. Root spans go to the `root`
//! delegate. Each of the four parent cases can be given its own delegate.

use super::{AlwaysOff, AlwaysOn, Decision, Sampler, SamplingInput};

/// Follows the parent's sampled flag; roots go to a delegate.
pub struct ParentBased {
    root: Box<dyn Sampler>,
    remote_parent_sampled: Box<dyn Sampler>,
    remote_parent_not_sampled: Box<dyn Sampler>,
    local_parent_sampled: Box<dyn Sampler>,
    local_parent_not_sampled: Box<dyn Sampler>,
}

impl std::fmt::Debug for ParentBased {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description())
    }
}

impl ParentBased {
    /// OTel's defaults: parents' flags are followed, roots go to `root`.
    pub fn new(root: impl Sampler + 'static) -> Self {
        Self {
            root: Box::new(root),
            remote_parent_sampled: Box::new(AlwaysOn),
            remote_parent_not_sampled: Box::new(AlwaysOff),
            local_parent_sampled: Box::new(AlwaysOn),
            local_parent_not_sampled: Box::new(AlwaysOff),
        }
    }

    pub fn with_remote_parent_sampled(mut self, s: impl Sampler + 'static) -> Self {
        self.remote_parent_sampled = Box::new(s);
        self
    }
    pub fn with_remote_parent_not_sampled(mut self, s: impl Sampler + 'static) -> Self {
        self.remote_parent_not_sampled = Box::new(s);
        self
    }
    pub fn with_local_parent_sampled(mut self, s: impl Sampler + 'static) -> Self {
        self.local_parent_sampled = Box::new(s);
        self
    }
    pub fn with_local_parent_not_sampled(mut self, s: impl Sampler + 'static) -> Self {
        self.local_parent_not_sampled = Box::new(s);
        self
    }

    /// The delegate responsible for `ctx` (exposed so a policy can tell a
    /// "parent decided" drop from a "root ratio" drop).
    #[inline]
    pub fn delegate_for(&self, ctx: &SamplingInput<'_>) -> &dyn Sampler {
        match ctx.parent {
            None => &*self.root,
            Some(p) => match (p.remote, p.sampled) {
                (true, true) => &*self.remote_parent_sampled,
                (true, false) => &*self.remote_parent_not_sampled,
                (false, true) => &*self.local_parent_sampled,
                (false, false) => &*self.local_parent_not_sampled,
            },
        }
    }
}

impl Sampler for ParentBased {
    #[inline]
    fn should_sample(&self, ctx: &SamplingInput<'_>) -> Decision {
        self.delegate_for(ctx).should_sample(ctx)
    }

    fn description(&self) -> String {
        format!(
            "ParentBased{{root:{},remoteParentSampled:{},remoteParentNotSampled:{},localParentSampled:{},localParentNotSampled:{}}}",
            self.root.description(),
            self.remote_parent_sampled.description(),
            self.remote_parent_not_sampled.description(),
            self.local_parent_sampled.description(),
            self.local_parent_not_sampled.description(),
        )
    }
}
