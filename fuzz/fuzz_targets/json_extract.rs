//! Fuzzes `json::extract`, what the guests' `wasmhost:platform/json.extract`
//! import runs, with arbitrary RFC 6901 pointers plus every pointer that
//! exists in the document (so the one-pass walk is exercised on hits, not
//! only misses).
//!
//! Asserts, besides never panicking:
//! * a malformed pointer (not `""` nor starting with `/`, or a `~` not
//!   followed by `0` or `1`) is a `bad-pointer` error, whatever the
//!   document; otherwise `extract` fails exactly when `check` does;
//! * one answer per pointer, each minified and well-formed;
//! * each answer agrees with serde_json's `Value::pointer` on the parsed
//!   document (duplicate keys: the last one wins in both).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize as _;
use serde_json::Value;
use wasmhost_platform::json::{self, ErrorKind};

/// Most pointers taken from the document itself.
const MAX_DOCUMENT_POINTERS: usize = 64;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    pointers: Vec<String>,
    document: &'a [u8],
}

/// `text` as a value, without serde_json's depth limit (the host's is
/// already enforced); `None` when a number is beyond `f64`.
fn value(text: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(text);
    de.disable_recursion_limit();
    Value::deserialize(&mut de).ok()
}

fn well_formed_pointer(pointer: &str) -> bool {
    let escapes_ok = pointer
        .split('~')
        .skip(1)
        .all(|after| after.starts_with(['0', '1']));
    pointer.is_empty() || (pointer.starts_with('/') && escapes_ok)
}

/// Pointers to the first values of `document`, breadth first.
fn pointers_in(document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut queue = std::collections::VecDeque::from([(String::new(), document)]);
    while let Some((pointer, value)) = queue.pop_front() {
        if found.len() == MAX_DOCUMENT_POINTERS {
            break;
        }
        match value {
            Value::Array(items) => queue.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (format!("{pointer}/{i}"), item)),
            ),
            Value::Object(members) => queue.extend(members.iter().map(|(key, member)| {
                let token = key.replace('~', "~0").replace('/', "~1");
                (format!("{pointer}/{token}"), member)
            })),
            _ => {}
        }
        found.push(pointer);
    }
    found
}

fuzz_target!(|input: Input<'_>| {
    let Input {
        mut pointers,
        document,
    } = input;
    let parsed = value(document);
    if let Some(parsed) = &parsed {
        pointers.extend(pointers_in(parsed));
    }
    let extracted = json::extract(document, &pointers);
    if !pointers.iter().all(|p| well_formed_pointer(p)) {
        let e = extracted.expect_err("a malformed pointer is refused");
        assert_eq!(e.kind, ErrorKind::BadPointer, "{e:?}");
        return;
    }
    let found = match (extracted, json::check(document)) {
        (Ok(found), Ok(())) => found,
        (Err(e), Err(checked)) => {
            // `JsonError` has no `PartialEq`: compare what it shows.
            assert_eq!(
                format!("{e:?}"),
                format!("{checked:?}"),
                "extract and check disagree"
            );
            return;
        }
        (extracted, checked) => panic!("extract {extracted:?} but check {checked:?}"),
    };
    assert_eq!(found.len(), pointers.len());
    for (pointer, found) in pointers.iter().zip(&found) {
        if let Some(text) = found {
            json::check(text).expect("extracted text is well-formed");
            assert_eq!(
                json::minify(text, false).ok().as_ref(),
                Some(text),
                "not minified"
            );
        }
        if let Some(parsed) = &parsed {
            assert_eq!(
                found.as_deref().and_then(value).as_ref(),
                parsed.pointer(pointer),
                "{pointer:?} disagrees with serde_json"
            );
        }
    }
});
