#![no_main]
//! Arbitrary bytes → decode. Whatever decodes must re-encode to bytes that
//! decode again to the same record (compared as bytes, so NaN payloads count).
use ats_core::record::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_prefix(data);
    if let Ok(r) = codec::decode(data) {
        let mut b1 = Vec::new();
        codec::encode_record(&r, &mut b1).expect("re-encode");
        assert_eq!(b1.len(), codec::encoded_len(&r));
        let r2 = codec::decode(&b1).expect("re-encoded record decodes");
        let mut b2 = Vec::new();
        codec::encode_record(&r2, &mut b2).expect("re-encode twice");
        assert_eq!(b1, b2);
    }
});
