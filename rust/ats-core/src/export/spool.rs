//! The spool: payloads waiting for the collector, oldest first, bounded in
//! bytes. On disk (one file per payload, so dropping the oldest is one
//! `unlink`) or, without a directory, in memory.
//!
//! File `<seq:020>.otlp`, little-endian:
//!
//! ```text
//! 0  magic "ATSSPOOL"     8  version u16 (=1)   10 signal u8   11 reserved u8 (=0)
//! 12 items u32            16 body_len u64       24 crc32 u32   28 reserved u32 (=0)
//! 32 body (uncompressed OTLP request, protobuf or JSON)
//! ```
//!
//! The CRC covers bytes 0..24 and the body. Files are written to `.tmp` and
//! renamed, so a crash never leaves half a payload under a real name; a file
//! that fails its checks anyway is removed and counted, never sent.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::payload::Signal;

const MAGIC: &[u8; 8] = b"ATSSPOOL";
const VERSION: u16 = 1;
const HEADER_LEN: u64 = 32;
const EXT: &str = "otlp";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot create spool directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot list spool directory {path}: {source}")]
    ReadDir { path: PathBuf, source: io::Error },
    #[error("cannot write spool file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// One waiting payload.
#[derive(Debug, Clone)]
pub struct SpoolEntry {
    pub seq: u64,
    pub signal: Signal,
    pub items: u64,
    /// Bytes it counts against the cap (file size, header included).
    pub size: u64,
    /// The body when the spool is in memory.
    mem: Option<Bytes>,
}

/// What a call had to throw away to stay within the cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    pub payloads: u64,
    pub items: u64,
}

impl std::ops::AddAssign for Evicted {
    fn add_assign(&mut self, o: Evicted) {
        self.payloads += o.payloads;
        self.items += o.items;
    }
}

/// Result of reading the oldest entry.
#[derive(Debug)]
pub enum Front {
    Empty,
    Ready { seq: u64, signal: Signal, items: u64, body: Bytes },
    /// The file failed its checks (or vanished) and was removed; try again.
    Corrupt { seq: u64 },
}

#[derive(Debug)]
pub struct Spool {
    dir: Option<PathBuf>,
    entries: VecDeque<SpoolEntry>,
    bytes: u64,
    max_bytes: u64,
}

impl Spool {
    pub fn in_memory(max_bytes: u64) -> Spool {
        Spool { dir: None, entries: VecDeque::new(), bytes: 0, max_bytes }
    }

    /// Opens (creating) `dir` and takes over the payloads a previous process
    /// left there. Returns the spool and how many files were unusable
    /// (removed). Leftover entries beyond `max_bytes` are evicted oldest first.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Spool, u64, Evicted), SpoolError> {
        fs::create_dir_all(dir).map_err(|source| SpoolError::CreateDir { path: dir.to_owned(), source })?;
        let rd = fs::read_dir(dir).map_err(|source| SpoolError::ReadDir { path: dir.to_owned(), source })?;
        let mut found = Vec::new();
        let mut corrupt = 0;
        for ent in rd.flatten() {
            let path = ent.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if name.ends_with(".tmp") {
                // A write that never finished.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(seq) = name.strip_suffix(".otlp").and_then(|s| s.parse::<u64>().ok()) else { continue };
            match read_header(&path) {
                Some((signal, items, size)) => found.push(SpoolEntry { seq, signal, items, size, mem: None }),
                None => {
                    corrupt += 1;
                    let _ = fs::remove_file(&path);
                }
            }
        }
        found.sort_by_key(|e| e.seq);
        let bytes = found.iter().map(|e| e.size).sum();
        let mut spool = Spool { dir: Some(dir.to_owned()), entries: found.into(), bytes, max_bytes };
        let evicted = spool.evict_to(max_bytes, None);
        Ok((spool, corrupt, evicted))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn is_on_disk(&self) -> bool {
        self.dir.is_some()
    }
    pub fn last_seq(&self) -> Option<u64> {
        self.entries.back().map(|e| e.seq)
    }
    pub fn front_seq(&self) -> Option<u64> {
        self.entries.front().map(|e| e.seq)
    }
    /// Items in every waiting payload.
    pub fn items(&self) -> u64 {
        self.entries.iter().map(|e| e.items).sum()
    }

    /// Appends a payload (its `seq` must exceed every seq in the spool),
    /// first evicting the oldest entries except `protect` (the one being
    /// delivered) until it fits. A payload larger than the whole cap is not
    /// stored and is reported as evicted itself.
    pub fn append(
        &mut self,
        seq: u64,
        signal: Signal,
        items: u64,
        body: &Bytes,
        protect: Option<u64>,
    ) -> Result<Evicted, SpoolError> {
        debug_assert!(self.last_seq().map_or(true, |l| l < seq));
        let size = HEADER_LEN + body.len() as u64;
        if size > self.max_bytes {
            return Ok(Evicted { payloads: 1, items });
        }
        let mut evicted = self.evict_to(self.max_bytes - size, protect);
        if self.bytes + size > self.max_bytes {
            // Only the protected entry is left and both do not fit: the new
            // payload is the one that cannot be kept.
            evicted += Evicted { payloads: 1, items };
            return Ok(evicted);
        }
        let mem = match &self.dir {
            Some(dir) => {
                write_file(dir, seq, signal, items, body)?;
                None
            }
            None => Some(body.clone()),
        };
        self.entries.push_back(SpoolEntry { seq, signal, items, size, mem });
        self.bytes += size;
        Ok(evicted)
    }

    /// Drops oldest entries (never `protect`) until at most `limit` bytes remain.
    fn evict_to(&mut self, limit: u64, protect: Option<u64>) -> Evicted {
        let mut ev = Evicted::default();
        let mut i = 0;
        while self.bytes > limit && i < self.entries.len() {
            if Some(self.entries[i].seq) == protect {
                i += 1;
                continue;
            }
            if let Some(e) = self.entries.remove(i) {
                self.forget(&e);
                ev += Evicted { payloads: 1, items: e.items };
            }
        }
        ev
    }

    fn forget(&mut self, e: &SpoolEntry) {
        self.bytes -= e.size;
        if let Some(dir) = &self.dir {
            let _ = fs::remove_file(file_path(dir, e.seq));
        }
    }

    /// Reads the oldest payload without removing it.
    pub fn front(&mut self) -> Front {
        let Some(e) = self.entries.front() else { return Front::Empty };
        let (seq, signal, items) = (e.seq, e.signal, e.items);
        if let Some(body) = &e.mem {
            return Front::Ready { seq, signal, items, body: body.clone() };
        }
        let dir = self.dir.as_deref().unwrap_or(Path::new("."));
        match read_file(&file_path(dir, seq)) {
            Some((s, n, body)) if s == signal && n == items => Front::Ready { seq, signal, items, body: body.into() },
            _ => {
                self.remove(seq);
                Front::Corrupt { seq }
            }
        }
    }

    /// Removes `seq` if it is still the oldest entry (it may have been
    /// evicted meanwhile). Returns whether it was.
    pub fn remove(&mut self, seq: u64) -> bool {
        if self.front_seq() != Some(seq) {
            return false;
        }
        if let Some(e) = self.entries.pop_front() {
            self.forget(&e);
        }
        true
    }
}

fn file_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.{EXT}"))
}

fn header(signal: Signal, items: u64, body: &[u8]) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10] = signal as u8;
    h[12..16].copy_from_slice(&u32::try_from(items).unwrap_or(u32::MAX).to_le_bytes());
    h[16..24].copy_from_slice(&(body.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[0..24]);
    crc.update(body);
    h[24..28].copy_from_slice(&crc.finalize().to_le_bytes());
    h
}

fn write_file(dir: &Path, seq: u64, signal: Signal, items: u64, body: &[u8]) -> Result<(), SpoolError> {
    let path = file_path(dir, seq);
    let tmp = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&header(signal, items, body))?;
        f.write_all(body)?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&tmp);
        SpoolError::Write { path, source }
    })
}

/// Checks the fixed header against the file's length: (signal, items, size).
fn parse_header(h: &[u8]) -> Option<(Signal, u64, u64)> {
    if h.len() < HEADER_LEN as usize || &h[0..8] != MAGIC || h[8..10] != VERSION.to_le_bytes() {
        return None;
    }
    let signal = Signal::from_u8(h[10])?;
    let items = u64::from(u32::from_le_bytes(h[12..16].try_into().ok()?));
    let body_len = u64::from_le_bytes(h[16..24].try_into().ok()?);
    Some((signal, items, HEADER_LEN.checked_add(body_len)?))
}

fn read_header(path: &Path) -> Option<(Signal, u64, u64)> {
    let mut f = fs::File::open(path).ok()?;
    let mut h = [0u8; HEADER_LEN as usize];
    f.read_exact(&mut h).ok()?;
    let (signal, items, size) = parse_header(&h)?;
    (f.metadata().ok()?.len() == size).then_some((signal, items, size))
}

fn read_file(path: &Path) -> Option<(Signal, u64, Vec<u8>)> {
    let mut data = fs::read(path).ok()?;
    let (signal, items, size) = parse_header(&data)?;
    if data.len() as u64 != size {
        return None;
    }
    let body = data.split_off(HEADER_LEN as usize);
    (header(signal, items, &body)[..] == data[..]).then_some((signal, items, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body(n: usize, tag: u8) -> Bytes {
        Bytes::from(vec![tag; n])
    }

    fn ready(f: Front) -> (u64, Signal, u64, Bytes) {
        match f {
            Front::Ready { seq, signal, items, body } => (seq, signal, items, body),
            other => panic!("expected a ready front, got {other:?}"),
        }
    }

    #[test]
    fn disk_round_trip_survives_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, corrupt, ev) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!((corrupt, ev), (0, Evicted::default()));
        s.append(5, Signal::Traces, 2, &body(10, 1), None).unwrap();
        s.append(6, Signal::Logs, 3, &body(20, 2), None).unwrap();
        assert_eq!(s.bytes(), 32 * 2 + 30);
        drop(s);
        let (mut s, corrupt, _) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!((corrupt, s.len(), s.last_seq()), (0, 2, Some(6)));
        assert_eq!(ready(s.front()), (5, Signal::Traces, 2, body(10, 1)));
        assert!(s.remove(5));
        assert!(!s.remove(5));
        assert_eq!(ready(s.front()), (6, Signal::Logs, 3, body(20, 2)));
    }

    #[test]
    fn overflow_drops_oldest_but_never_the_protected_entry() {
        let mut s = Spool::in_memory(3 * (32 + 10));
        for seq in 1..=3 {
            assert_eq!(s.append(seq, Signal::Traces, seq, &body(10, seq as u8), None).unwrap(), Evicted::default());
        }
        // Entry 1 is being delivered: 2 goes instead.
        assert_eq!(s.append(4, Signal::Traces, 4, &body(10, 4), Some(1)).unwrap(), Evicted { payloads: 1, items: 2 });
        assert_eq!(s.append(5, Signal::Traces, 5, &body(10, 5), None).unwrap(), Evicted { payloads: 1, items: 1 });
        let seqs: Vec<u64> = s.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        // Larger than the whole cap: itself dropped, nothing else touched.
        assert_eq!(s.append(6, Signal::Logs, 9, &body(200, 6), None).unwrap(), Evicted { payloads: 1, items: 9 });
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn corrupt_files_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _, _) = Spool::open(dir.path(), 1 << 20).unwrap();
        for seq in 1..=4 {
            s.append(seq, Signal::Metrics, 1, &body(16, seq as u8), None).unwrap();
        }
        drop(s);
        // 1: flipped body byte (found on read); 2: truncated (found at open);
        // 3: wrong magic (found at open); plus a leftover .tmp and a stray file.
        let flip = file_path(dir.path(), 1);
        let mut d = fs::read(&flip).unwrap();
        d[40] ^= 0xff;
        fs::write(&flip, d).unwrap();
        let p2 = file_path(dir.path(), 2);
        let d = fs::read(&p2).unwrap();
        fs::write(&p2, &d[..d.len() - 1]).unwrap();
        let p3 = file_path(dir.path(), 3);
        let mut d = fs::read(&p3).unwrap();
        d[0] = b'X';
        fs::write(&p3, d).unwrap();
        fs::write(dir.path().join("00000000000000000009.tmp"), b"half").unwrap();
        fs::write(dir.path().join("README"), b"not ours").unwrap();

        let (mut s, corrupt, _) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!((corrupt, s.len()), (2, 2));
        assert!(matches!(s.front(), Front::Corrupt { seq: 1 }));
        assert_eq!(ready(s.front()).0, 4);
        assert!(!dir.path().join("00000000000000000009.tmp").exists());
        assert!(dir.path().join("README").exists());
    }

    #[test]
    fn reopen_with_a_smaller_cap_evicts_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _, _) = Spool::open(dir.path(), 1 << 20).unwrap();
        for seq in 1..=4 {
            s.append(seq, Signal::Traces, 10, &body(68, 0), None).unwrap();
        }
        drop(s);
        let (s, _, ev) = Spool::open(dir.path(), 250).unwrap();
        assert_eq!(ev, Evicted { payloads: 2, items: 20 });
        assert_eq!(s.front_seq(), Some(3));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(usize),
        Pop,
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..120).prop_map(Op::Append),
            2 => Just(Op::Pop),
            1 => Just(Op::Restart),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Against a model (a deque with the same cap): order, contents and
        /// every count agree after any sequence of appends, pops and restarts.
        #[test]
        fn spool_matches_model(ops in proptest::collection::vec(op(), 1..60), cap in 40u64..600) {
            let dir = tempfile::tempdir().unwrap();
            let (mut s, _, _) = Spool::open(dir.path(), cap).unwrap();
            let mut model: VecDeque<(u64, usize)> = VecDeque::new();
            let (mut dropped_items, mut model_dropped, mut seq) = (0u64, 0u64, 0u64);
            for op in ops {
                match op {
                    Op::Append(n) => {
                        seq += 1;
                        let ev = s.append(seq, Signal::Traces, n as u64, &body(n, seq as u8), None).unwrap();
                        dropped_items += ev.items;
                        let size = 32 + n as u64;
                        if size > cap {
                            model_dropped += n as u64;
                        } else {
                            while model.iter().map(|(_, n)| 32 + *n as u64).sum::<u64>() + size > cap {
                                model_dropped += model.pop_front().unwrap().1 as u64;
                            }
                            model.push_back((seq, n));
                        }
                    }
                    Op::Pop => {
                        let want = model.pop_front();
                        match s.front() {
                            Front::Ready { seq, items, body: b, .. } => {
                                let (mseq, mn) = want.unwrap();
                                prop_assert_eq!((seq, items), (mseq, mn as u64));
                                prop_assert_eq!(b, body(mn, mseq as u8));
                                prop_assert!(s.remove(seq));
                            }
                            Front::Empty => prop_assert!(want.is_none()),
                            Front::Corrupt { .. } => prop_assert!(false, "corrupt"),
                        }
                    }
                    Op::Restart => {
                        drop(s);
                        let (s2, corrupt, ev) = Spool::open(dir.path(), cap).unwrap();
                        prop_assert_eq!((corrupt, ev), (0, Evicted::default()));
                        s = s2;
                    }
                }
                prop_assert_eq!(dropped_items, model_dropped);
                prop_assert_eq!(s.len(), model.len());
                prop_assert_eq!(s.bytes(), model.iter().map(|(_, n)| 32 + *n as u64).sum::<u64>());
                prop_assert!(s.bytes() <= cap);
            }
        }
    }
}
