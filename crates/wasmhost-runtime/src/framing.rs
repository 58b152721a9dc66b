//! The host owns the framing of every response it sends.
//!
//! A guest chooses its response's status and header fields, but on a
//! keep-alive connection those decide where the *next* response starts, and
//! the next response may be another tenant's. So before a guest's response
//! head is handed to hyper, [`check_response_head`] makes sure it cannot
//! desynchronise the connection: no `1xx` as a final response, at most one
//! `content-length`, a valid number, none on `204`, and one that matches the
//! body whenever a body is sent (RFC 9110 §8.6, §15.3.5, §15.4.5). Streamed
//! bodies of a declared length are held to it by `wasi:http` itself (a write
//! past it fails, a finish short of it aborts the connection).

use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// Checks the head of a response to a `method` request before it is sent:
/// `Ok` when it frames its body unambiguously, else why not. `body_len` is
/// the body's length when known in advance (a complete body); `None` for a
/// streamed one.
///
/// A `content-length: 0` on a `204` (as Django's `CommonMiddleware` adds) is
/// removed rather than refused: it says nothing a `204` does not already.
/// A `HEAD` response and a `304` may declare any valid length (that of the
/// representation); hyper never sends their body.
pub fn check_response_head(
    method: &Method,
    status: StatusCode,
    headers: &mut HeaderMap,
    body_len: Option<u64>,
) -> Result<(), String> {
    if status.is_informational() {
        return Err(format!("status {} is informational (1xx), not a final response", status.as_u16()));
    }
    let declared = {
        let mut values = headers.get_all(CONTENT_LENGTH).iter();
        match (values.next(), values.next()) {
            (None, _) => return Ok(()),
            (Some(_), Some(_)) => return Err("more than one content-length field".to_owned()),
            (Some(value), None) => parse_length(value)?,
        }
    };
    if status == StatusCode::NO_CONTENT {
        if declared != 0 {
            return Err(format!("a 204 response cannot declare content-length {declared}"));
        }
        headers.remove(CONTENT_LENGTH);
        return Ok(());
    }
    if *method == Method::HEAD || status == StatusCode::NOT_MODIFIED {
        return Ok(());
    }
    match body_len {
        Some(len) if len != declared => Err(format!("content-length {declared} does not match the {len}-byte body")),
        _ => Ok(()),
    }
}

/// A `content-length` value: `1*DIGIT` (RFC 9110 §8.6) that fits in a `u64`.
fn parse_length(value: &HeaderValue) -> Result<u64, String> {
    let bytes = value.as_bytes();
    let invalid = || format!("invalid content-length {:?}", String::from_utf8_lossy(bytes));
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    std::str::from_utf8(bytes).ok().and_then(|text| text.parse().ok()).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, status: u16, lengths: &[&str], body: Option<u64>) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        for length in lengths {
            headers.append(CONTENT_LENGTH, HeaderValue::from_str(length).unwrap());
        }
        let status = StatusCode::from_u16(status).unwrap();
        check_response_head(&method, status, &mut headers, body).map(|()| headers)
    }

    #[test]
    fn a_declared_length_must_match_the_body() {
        assert!(check(Method::GET, 200, &["5"], Some(5)).is_ok());
        assert!(check(Method::GET, 200, &[], Some(5)).is_ok(), "hyper adds the length");
        let err = check(Method::GET, 200, &["300"], Some(0)).unwrap_err();
        assert!(err.contains("300") && err.contains("0-byte"), "{err}");
        assert!(check(Method::POST, 201, &["4"], Some(5)).is_err());
        assert!(check(Method::GET, 200, &["300"], None).is_ok(), "wasi:http holds a streamed body to it");
    }

    #[test]
    fn lengths_must_be_one_valid_number() {
        for bad in ["abc", "", "+5", "-1", "5 ", "0x10", "99999999999999999999999"] {
            let err = check(Method::GET, 200, &[bad], Some(5)).unwrap_err();
            assert!(err.contains("invalid content-length"), "{bad:?}: {err}");
        }
        assert!(check(Method::GET, 200, &["5", "5"], Some(5)).unwrap_err().contains("more than one"));
    }

    #[test]
    fn head_and_304_keep_the_representation_length() {
        assert!(check(Method::HEAD, 200, &["300"], Some(0)).is_ok());
        assert!(check(Method::GET, 304, &["300"], Some(0)).is_ok());
        assert!(check(Method::HEAD, 200, &["abc"], Some(0)).is_err(), "still a valid number");
    }

    #[test]
    fn informational_statuses_are_refused_and_204_carries_no_length() {
        for status in [100, 101, 103, 199] {
            assert!(check(Method::GET, status, &[], Some(0)).unwrap_err().contains("1xx"), "{status}");
        }
        let headers = check(Method::DELETE, 204, &["0"], Some(0)).unwrap();
        assert!(!headers.contains_key(CONTENT_LENGTH), "a zero length on 204 is dropped");
        assert!(check(Method::DELETE, 204, &["12"], Some(0)).unwrap_err().contains("204"));
        assert!(check(Method::DELETE, 204, &[], Some(0)).is_ok());
    }
}
