//! [`Pipeline`]: the process-wide owner of one ring and its flusher, which
//! rebuilds both (and the sinks, from a factory) in a forked child.

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::fork::{fork_generation, install_fork_hook};
use super::{Collector, FlushConfig, Flusher, FlusherStats, Sink, Stages};
use crate::ring::{DropReason, Ring, RingStats};

/// Builds the sinks of a pipeline; called again in every forked child.
pub type SinkFactory = Box<dyn Fn() -> Vec<Box<dyn Sink>> + Send + Sync>;
/// Builds the collectors of a pipeline; called again in every forked child.
pub type CollectorFactory = Box<dyn Fn() -> Vec<Box<dyn Collector>> + Send + Sync>;
/// Builds the collectors and processors of a pipeline; called again in every forked child.
pub type StagesFactory = Box<dyn Fn() -> Stages + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineConfig {
    pub ring_capacity_bytes: usize,
    pub flush: FlushConfig,
    /// Deadline used when the pipeline is dropped without an explicit
    /// [`Pipeline::shutdown`].
    pub drop_deadline: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            ring_capacity_bytes: 16 << 20,
            flush: FlushConfig::default(),
            drop_deadline: Duration::from_secs(2),
        }
    }
}

/// Everything that belongs to one process incarnation.
struct Inner {
    ring: Arc<Ring>,
    flusher: Flusher,
    pid: u32,
    generation: u64,
    /// Pid of the process rebuilding from this incarnation; 0 if none. A
    /// stale claim inherited from another process is taken over.
    rebuild_claim: AtomicU32,
}

/// Ring + flusher + sink factory, safe to share (`&Pipeline`) between all
/// application threads. [`ring`](Self::ring) is the hot path.
pub struct Pipeline {
    /// Always points at a live `Inner`. Superseded incarnations are leaked,
    /// never freed, so a reference obtained before a rebuild stays valid.
    current: AtomicPtr<Inner>,
    config: PipelineConfig,
    sinks: SinkFactory,
    stages: Option<StagesFactory>,
}

/// Counters of the current incarnation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineStats {
    pub ring: RingStats,
    pub flusher: FlusherStats,
}

impl Pipeline {
    pub fn new(config: PipelineConfig, sinks: SinkFactory) -> Pipeline {
        Self::build(config, sinks, None)
    }

    pub fn with_collectors(
        config: PipelineConfig,
        sinks: SinkFactory,
        collectors: CollectorFactory,
    ) -> Pipeline {
        Self::with_stages(
            config,
            sinks,
            Box::new(move || Stages { collectors: collectors(), processors: Vec::new(), driver_metrics: None }),
        )
    }

    pub fn with_stages(config: PipelineConfig, sinks: SinkFactory, stages: StagesFactory) -> Pipeline {
        Self::build(config, sinks, Some(stages))
    }

    fn build(config: PipelineConfig, sinks: SinkFactory, stages: Option<StagesFactory>) -> Pipeline {
        install_fork_hook();
        let p = Pipeline {
            current: AtomicPtr::new(std::ptr::null_mut()),
            config,
            sinks,
            stages,
        };
        p.current
            .store(Box::into_raw(Box::new(p.incarnation())), Ordering::Release);
        p
    }

    fn incarnation(&self) -> Inner {
        let ring = Arc::new(Ring::new(self.config.ring_capacity_bytes));
        let stages = self.stages.as_ref().map(|f| f()).unwrap_or_default();
        let flusher = Flusher::start_staged(ring.clone(), (self.sinks)(), stages, self.config.flush);
        Inner {
            ring,
            flusher,
            pid: std::process::id(),
            generation: fork_generation(),
            rebuild_claim: AtomicU32::new(0),
        }
    }

    #[inline]
    fn inner(&self) -> &Inner {
        // SAFETY: `current` always holds a pointer from Box::into_raw that is
        // only freed in `drop(&mut self)`, when no borrow can exist.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// The ring of this process. One relaxed load detects a fork; the first
    /// call in a forked child rebuilds the pipeline.
    #[inline]
    pub fn ring(&self) -> &Ring {
        let i = self.inner();
        if i.generation != fork_generation() {
            return &self.refresh().ring;
        }
        &i.ring
    }

    pub fn push(&self, record: &[u8]) -> Result<(), DropReason> {
        self.ring().push(record)
    }

    pub fn push_with(&self, len: usize, write: impl FnOnce(&mut [u8])) -> Result<(), DropReason> {
        self.ring().push_with(len, write)
    }

    /// Call in a forked child (e.g. from `os.register_at_fork`); rebuilds
    /// the ring, flusher and sinks if this process is not the one that built
    /// them. Returns true if it rebuilt.
    pub fn ensure_fresh_after_fork(&self) -> bool {
        let i = self.inner();
        if i.pid == std::process::id() && i.generation == fork_generation() {
            return false;
        }
        self.refresh();
        true
    }

    fn refresh(&self) -> &Inner {
        let pid = std::process::id();
        let generation = fork_generation();
        loop {
            let cur = self.inner();
            if cur.pid == pid && cur.generation == generation {
                return cur;
            }
            let claim = cur.rebuild_claim.load(Ordering::Acquire);
            let won = claim != pid
                && cur
                    .rebuild_claim
                    .compare_exchange(claim, pid, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
            if won {
                let fresh = Box::into_raw(Box::new(self.incarnation()));
                // The old incarnation is leaked: its flusher thread does not
                // exist in this process and its locks may be held.
                self.current.store(fresh, Ordering::Release);
                // SAFETY: just created from Box::into_raw; see `inner`.
                return unsafe { &*fresh };
            }
            std::thread::yield_now();
        }
    }

    /// True in a forked child that has not pushed (so not rebuilt) yet.
    fn is_stale(&self) -> bool {
        let i = self.inner();
        i.pid != std::process::id() || i.generation != fork_generation()
    }

    /// See [`Flusher::flush`]. In a forked child that has pushed nothing,
    /// there is nothing of this process to flush: true, without rebuilding.
    pub fn flush(&self, deadline: Duration) -> bool {
        if self.is_stale() {
            return true;
        }
        self.inner().flusher.flush(deadline)
    }

    /// See [`Flusher::shutdown`]. Later pushes are dropped as `closed`.
    /// Like `flush`, a no-op returning true in a child that never pushed.
    pub fn shutdown(&self, deadline: Duration) -> bool {
        if self.is_stale() {
            return true;
        }
        self.inner().flusher.shutdown(deadline)
    }

    pub fn stats(&self) -> PipelineStats {
        self.ensure_fresh_after_fork();
        let i = self.inner();
        PipelineStats {
            ring: i.ring.stats(),
            flusher: i.flusher.stats(),
        }
    }

    /// Pid of the process the current incarnation was built in.
    pub fn pid(&self) -> u32 {
        self.inner().pid
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if self.is_stale() {
            // Inherited across fork and never rebuilt: leak, never join.
            return;
        }
        let ptr = *self.current.get_mut();
        self.inner().flusher.shutdown(self.config.drop_deadline);
        // SAFETY: created by Box::into_raw and not freed before.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("pid", &self.pid())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
