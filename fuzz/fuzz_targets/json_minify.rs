//! Fuzzes `json::minify`, what the guests' `wasmhost:platform/json.minify`
//! import runs, with and without `sort_keys`.
//!
//! Asserts, besides never panicking:
//! * `minify` fails exactly when `check` does, with the same error;
//! * its output is well-formed, re-parses with serde_json to a value equal
//!   to the input's, and minifies to itself (both modes are idempotent);
//! * minifying then sorting equals sorting;
//! * with `sort_keys`, every object's keys are strictly increasing (sorted
//!   by code point, duplicates gone).
#![no_main]

use std::fmt;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde::de::{Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use wasmhost_platform::json;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    sort_keys: bool,
    document: &'a [u8],
}

/// A JSON value whose objects all have strictly increasing keys; anything
/// else fails to deserialize.
struct Canonical;

impl<'de> Deserialize<'de> for Canonical {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CanonicalVisitor)
    }
}

struct CanonicalVisitor;

impl<'de> Visitor<'de> for CanonicalVisitor {
    type Value = Canonical;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value with sorted keys")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Canonical, E> {
        Ok(Canonical)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Canonical, E> {
        Ok(Canonical)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Canonical, E> {
        Ok(Canonical)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Canonical, E> {
        Ok(Canonical)
    }

    fn visit_str<E>(self, _: &str) -> Result<Canonical, E> {
        Ok(Canonical)
    }

    fn visit_unit<E>(self) -> Result<Canonical, E> {
        Ok(Canonical)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Canonical, A::Error> {
        while seq.next_element::<Canonical>()?.is_some() {}
        Ok(Canonical)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Canonical, A::Error> {
        let mut previous: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            if previous.as_ref().is_some_and(|p| *p >= key) {
                return Err(A::Error::custom(format!(
                    "key {key:?} after {previous:?}: keys are not sorted"
                )));
            }
            map.next_value::<Canonical>()?;
            previous = Some(key);
        }
        Ok(Canonical)
    }
}

/// `text` as a value, without serde_json's depth limit (the host's is
/// already enforced); `None` when a number is beyond `f64`.
fn value(text: &[u8]) -> Option<serde_json::Value> {
    let mut de = serde_json::Deserializer::from_slice(text);
    de.disable_recursion_limit();
    serde_json::Value::deserialize(&mut de).ok()
}

fuzz_target!(|input: Input<'_>| {
    let Input {
        sort_keys,
        document,
    } = input;
    let minified = json::minify(document, sort_keys);
    let out = match (minified, json::check(document)) {
        (Ok(out), Ok(())) => out,
        (Err(e), Err(checked)) => {
            // `JsonError` has no `PartialEq`: compare what it shows.
            assert_eq!(
                format!("{e:?}"),
                format!("{checked:?}"),
                "minify and check disagree"
            );
            return;
        }
        (minified, checked) => panic!("minify {minified:?} but check {checked:?}"),
    };
    json::check(&out).expect("minified output is well-formed");
    // A number beyond `f64` has no value to compare; with `sort_keys` it
    // may also be dropped with the duplicate key that held it.
    if let Some(input) = value(document) {
        assert_eq!(value(&out), Some(input), "minifying changed the value");
    }
    assert_eq!(
        json::minify(&out, false).ok(),
        Some(out.clone()),
        "output has whitespace"
    );
    let sorted = json::minify(document, true).expect("well-formed");
    assert_eq!(
        json::minify(&out, true).ok(),
        Some(sorted),
        "sorting is not idempotent or not canonical"
    );
    if sort_keys {
        let mut de = serde_json::Deserializer::from_slice(&out);
        de.disable_recursion_limit();
        if let Err(e) = Canonical::deserialize(&mut de) {
            assert!(e.to_string().contains("number out of range"), "{e}");
        }
    }
});
