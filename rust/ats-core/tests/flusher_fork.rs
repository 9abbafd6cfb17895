//! Real fork(): the child rebuilds its ring, flusher and sinks and delivers
//! its own records; the parent's pipeline keeps working undisturbed.
//!
//! One test per binary on purpose: the child of a multi-threaded process may
//! only rely on what the pipeline guarantees, and fewer harness threads make
//! the scenario closer to a Python program.

use ats_core::flusher::{FlushConfig, Pipeline, PipelineConfig, Sink, SinkError};
use ats_core::record::codec;
use ats_core::record::*;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Appends encoded records to `dir/records-<pid>.bin`. Built fresh in each
/// process by the factory, so a child never touches the parent's file handle.
struct FileSink(BufWriter<std::fs::File>, Vec<u8>);
impl FileSink {
    fn open(dir: &Path) -> FileSink {
        let path = dir.join(format!("records-{}.bin", std::process::id()));
        FileSink(
            BufWriter::new(std::fs::File::create(path).expect("create")),
            Vec::new(),
        )
    }
}
impl Sink for FileSink {
    fn name(&self) -> &str {
        "file"
    }
    fn write_batch(&mut self, batch: &[Record]) -> Result<(), SinkError> {
        for r in batch {
            self.1.clear();
            codec::encode_record(r, &mut self.1).map_err(|e| SinkError::Failed {
                sink: "file".into(),
                message: e.to_string(),
            })?;
            self.0.write_all(&self.1)?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.0.flush()?)
    }
}

fn read_back(path: &Path) -> Vec<Record> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        match codec::decode_prefix(rest) {
            Ok((r, n)) => {
                out.push(r);
                rest = &rest[n..];
            }
            Err(_) => break,
        }
    }
    out
}

fn push(p: &Pipeline, tenant: &str, i: u64) -> bool {
    let log = LogRef {
        envelope: EnvelopeRef {
            ts_ns: i,
            tenant,
            ..EnvelopeRef::default()
        },
        event: "fork.test",
        component: "test",
        severity: Severity::INFO,
        body: "",
        attributes: &[],
    };
    p.push_with(codec::encoded_len_log(&log), |b| {
        let _ = codec::encode_log(&log, b);
    })
    .is_ok()
}

fn child_main(p: &Pipeline, dir: &Path, parent_pid: u32) -> i32 {
    if p.pid() != parent_pid {
        return 10; // inherited state must still say "parent"
    }
    for i in 0..1000 {
        if !push(p, "child", i) {
            return 11;
        }
    }
    if p.pid() != std::process::id() {
        return 12; // the first push rebuilt the pipeline
    }
    if p.ensure_fresh_after_fork() {
        return 13; // already fresh: nothing to rebuild
    }
    if !p.shutdown(Duration::from_secs(5)) {
        return 14;
    }
    let got = read_back(&dir.join(format!("records-{}.bin", std::process::id())));
    if got.len() != 1000 {
        return 15;
    }
    if got.iter().any(|r| r.envelope().tenant != "child") {
        return 16;
    }
    let st = p.stats();
    if st.flusher.sinks[0].records_written != 1000 || st.ring.pushed != 1000 {
        return 17;
    }
    0
}

#[test]
fn forked_child_gets_a_fresh_pipeline_and_parent_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let dir_path: PathBuf = dir.path().to_path_buf();
    let factory_dir = dir_path.clone();
    let config = PipelineConfig {
        ring_capacity_bytes: 1 << 20,
        flush: FlushConfig {
            interval: Duration::from_millis(1),
            ..FlushConfig::default()
        },
        ..PipelineConfig::default()
    };
    let p = Pipeline::new(
        config,
        Box::new(move || vec![Box::new(FileSink::open(&factory_dir)) as Box<dyn Sink>]),
    );
    let parent = std::process::id();

    // Keep the parent's flusher busy (holding its locks) around the fork.
    for i in 0..500 {
        assert!(push(&p, "parent", i));
    }
    // SAFETY: fork in a test; the child only runs `child_main` and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            child_main(&p, &dir_path, parent)
        }))
        .unwrap_or(99);
        // _exit: no atexit handlers, no destructors of inherited state.
        unsafe { libc::_exit(code) };
    }
    for i in 500..1000 {
        assert!(push(&p, "parent", i));
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally: {status}"
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child failed with code {}",
        libc::WEXITSTATUS(status)
    );

    // Parent: undisturbed, same incarnation, everything delivered.
    assert_eq!(p.pid(), parent);
    assert!(!p.ensure_fresh_after_fork());
    assert!(p.flush(Duration::from_secs(5)));
    assert!(p.shutdown(Duration::from_secs(5)));
    let mine = read_back(&dir.path().join(format!("records-{parent}.bin")));
    assert_eq!(mine.len(), 1000);
    assert!(mine.iter().all(|r| r.envelope().tenant == "parent"));
    let child = read_back(&dir.path().join(format!("records-{pid}.bin")));
    assert_eq!(child.len(), 1000);
}
