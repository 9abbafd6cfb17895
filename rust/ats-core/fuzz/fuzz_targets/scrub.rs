//! Arbitrary bytes → lossy UTF-8 → scrub. Invariants: no panic, idempotence,
//! clean input comes back borrowed, and markers are the only thing added.
#![no_main]
use std::borrow::Cow;

use ats_core::scrub::default_scrubber;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = default_scrubber();
    let (once, counts) = s.scrub_with_counts(&text);
    match &once {
        Cow::Borrowed(b) => {
            assert_eq!(*b, &*text);
            assert_eq!(counts.total(), 0);
        }
        Cow::Owned(_) => assert!(counts.total() > 0, "changed without a count"),
    }
    let twice = s.scrub(&once);
    assert_eq!(&*twice, &*once, "not idempotent for {:?}", text);
});
