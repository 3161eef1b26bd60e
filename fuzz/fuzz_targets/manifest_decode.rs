//! Manifest decoding alone: never panics; whatever decodes is valid and
//! survives an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmig::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::decode(data) {
        m.validate().expect("decoded manifests are valid");
        assert_eq!(Manifest::decode(&m.encode()).expect("re-decodes"), m);
    }
});
