//! Fuzzes `json::check`, what the guests' `wasmhost:platform/json.check`
//! import runs, on arbitrary bytes.
//!
//! Asserts, besides never panicking (every panic aborts under libFuzzer):
//! * what `check` accepts, serde_json parses into a value (without a depth
//!   limit), unless a number is beyond `f64`, which `check` lets through;
//! * what serde_json parses into a value with its default limit of 128
//!   levels, `check` accepts: the non-recursive pre-scan (depth, strings,
//!   surrogate escapes) refuses nothing that is valid;
//! * an error's position lies within the document (line 0 only for
//!   `too-large`, which has none).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize as _;
use wasmhost_platform::json::{self, ErrorKind};

fuzz_target!(|document: &[u8]| {
    match json::check(document) {
        Ok(()) => {
            let mut de = serde_json::Deserializer::from_slice(document);
            de.disable_recursion_limit();
            if let Err(e) = serde_json::Value::deserialize(&mut de).and_then(|_| de.end()) {
                assert!(
                    e.to_string().contains("number out of range"),
                    "check accepted what serde_json refuses: {e}"
                );
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(document) {
                panic!("check refused what serde_json parses ({value:?}): {e:?}");
            }
            if e.kind != ErrorKind::TooLarge {
                let lines = 1 + document.iter().filter(|&&b| b == b'\n').count();
                assert!(
                    (1..=lines).contains(&(e.line as usize)),
                    "line out of the document: {e:?}"
                );
                assert!(
                    (1..=document.len() + 1).contains(&(e.column as usize)),
                    "column out of the document: {e:?}"
                );
            }
        }
    }
});
