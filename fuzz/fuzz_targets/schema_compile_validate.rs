//! Fuzzes JSON Schema compilation and validation, what the guests'
//! `wasmhost:platform/validation` import runs (`schema.compile`,
//! `schema.validate`). The input is a schema and an instance separated by
//! the first NUL byte; without one, the schema is validated against itself.
//!
//! Asserts that neither step panics (the host catches a validator panic and
//! reports it; libFuzzer aborts on it first) nor hangs (run with
//! `-timeout`), and that validation is bounded and consistent:
//! * `validate` fails only for a document that is not JSON, with the same
//!   error kind and position as `json::check`, or for a number beyond `f64`, which only
//!   validation refuses (possibly before a syntax error further on);
//! * at most `MAX_VIOLATIONS` failures, each message at most 1024 bytes
//!   plus an ellipsis;
//! * validating again gives the same answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmhost_platform::json;
use wasmhost_platform::schema::{CompiledSchema, MAX_VIOLATIONS};

/// The host's cap on a failure's message (`MAX_MESSAGE_BYTES` in
/// `schema.rs`) plus the `…` it appends when it cuts one.
const MAX_MESSAGE_BYTES: usize = 1024 + '…'.len_utf8();

fuzz_target!(|data: &[u8]| {
    let (schema, instance) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, data),
    };
    let compiled = match CompiledSchema::compile(schema) {
        Ok(compiled) => compiled,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    let validate = || {
        compiled
            .validate(instance)
            .expect("validation fails only when the validator panics or no thread starts")
    };
    let first = validate();
    match &first {
        Ok(violations) => {
            assert!(
                violations.len() <= MAX_VIOLATIONS,
                "{} failures",
                violations.len()
            );
            for violation in violations {
                assert!(
                    violation.message.len() <= MAX_MESSAGE_BYTES,
                    "{violation:?}"
                );
            }
        }
        // Only validation reads numbers, so this one may come before an
        // error `check` reports further on.
        Err(e) if e.message == "number out of range" => {}
        // The same kind at the same place; serde_json words a few errors
        // differently when it parses values ("trailing comma" for
        // "expected value").
        Err(e) => match json::check(instance) {
            Err(checked) => assert_eq!(
                (e.kind, e.line, e.column),
                (checked.kind, checked.line, checked.column),
                "{e:?} but check says {checked:?}"
            ),
            Ok(()) => panic!("validation refused what check accepts: {e:?}"),
        },
    }
    assert_eq!(
        format!("{:?}", validate()),
        format!("{first:?}"),
        "validation is not deterministic"
    );
});
