//! What a request's target must look like before routing reads it (one
//! unambiguous authority, a path without dot-segments), and what it becomes
//! when a mount strips its prefix.
//!
//! Routing picks a tenant by host and path prefix, and `strip_prefix` cuts
//! the prefix off, so both must mean one thing only: `Host: a.test,c.test`
//! or `user@host` are refused (`400`), and `/b/../whoami` is read as
//! `/whoami` (RFC 3986 §5.2.4, with `%2e` counted as `.`), never as a path
//! under `/b` that the app then sees as `/../whoami`.

use http::uri::{Authority, PathAndQuery};
use http::Request;

/// Checks the request's authority and removes dot-segments from its path;
/// the reason for a `400` when the request is ambiguous.
pub(crate) fn admit<B>(request: &mut Request<B>) -> Result<(), &'static str> {
    check_authority(request)?;
    normalize_path(request);
    Ok(())
}

/// Refuses what RFC 9112 §3.2 says a server must answer with 400 (more than
/// one `Host` header, or one that is not `host[:port]`), and any authority
/// (`Host`, absolute-form target, HTTP/2 `:authority`) with userinfo or a
/// comma: two readers of it could pick different hosts.
fn check_authority<B>(request: &Request<B>) -> Result<(), &'static str> {
    if let Some(authority) = request.uri().authority() {
        if !plain_authority(authority.as_str()) {
            return Err("invalid authority in the request target");
        }
    }
    let mut hosts = request.headers().get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err("more than one Host header"),
        (Some(host), None) => match host.to_str() {
            Ok(host) if plain_authority(host) => Ok(()),
            _ => Err("invalid Host header"),
        },
    }
}

/// Whether `text` is `host[:port]` and nothing else.
fn plain_authority(text: &str) -> bool {
    !text.contains(['@', ',']) && text.parse::<Authority>().is_ok()
}

/// Rewrites the request's path without dot-segments, when it has any.
fn normalize_path<B>(request: &mut Request<B>) {
    let uri = request.uri();
    let path = uri.path();
    let may_have_dots = path.contains('.') || path.contains("%2e") || path.contains("%2E");
    if !path.starts_with('/') || !may_have_dots {
        return;
    }
    let Some(normalized) = remove_dot_segments(path) else { return };
    let path_and_query = match uri.query() {
        Some(query) => format!("{normalized}?{query}"),
        None => normalized,
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(value) = path_and_query.parse::<PathAndQuery>() {
        parts.path_and_query = Some(value);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
}

/// Removes the first `len` bytes of the request's path (a prefix its mount
/// strips); what is left starts with exactly one `/` (an emptied path becomes
/// `/`).
pub(crate) fn strip_prefix<B>(request: &mut Request<B>, len: usize) {
    if len == 0 {
        return;
    }
    let uri = request.uri();
    // `/b//x` leaves `//x`, which a URL parser would read as host `x`.
    let rest = format!("/{}", uri.path()[len..].trim_start_matches('/'));
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest,
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(value) = path_and_query.parse() {
        parts.path_and_query = Some(value);
        if let Ok(stripped) = http::Uri::from_parts(parts) {
            *request.uri_mut() = stripped;
        }
    }
}

/// `path` (absolute) without `.` and `..` segments, or `None` when it has
/// none. A `..` above the root stays at the root; a path ending in a
/// dot-segment keeps its trailing slash.
fn remove_dot_segments(path: &str) -> Option<String> {
    let segments: Vec<&str> = path[1..].split('/').collect();
    if !segments.iter().any(|segment| dot_segment(segment).is_some()) {
        return None;
    }
    let mut kept: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        match dot_segment(segment) {
            Some(Dots::One) => {}
            Some(Dots::Two) => {
                kept.pop();
            }
            None => kept.push(segment),
        }
        if i == last && dot_segment(segment).is_some() {
            kept.push("");
        }
    }
    Some(format!("/{}", kept.join("/")))
}

enum Dots {
    One,
    Two,
}

/// Whether `segment` is `.` or `..`, percent-encoded or not.
fn dot_segment(segment: &str) -> Option<Dots> {
    let dots = segment.to_ascii_lowercase().replace("%2e", ".");
    match dots.as_str() {
        "." => Some(Dots::One),
        ".." => Some(Dots::Two),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(uri: &str, host: Option<&str>) -> Result<String, &'static str> {
        let mut builder = Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        let mut request = builder.body(()).unwrap();
        admit(&mut request).map(|()| request.uri().to_string())
    }

    #[test]
    fn dot_segments_are_removed_before_routing() {
        for (given, expected) in [
            ("/b/../whoami", "/whoami"),
            ("/b/%2e%2E/whoami", "/whoami"),
            ("/b/.%2e/x?q=../y", "/x?q=../y"),
            ("/a/./b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/../../etc", "/etc"),
            ("/a/..b/c.d/...", "/a/..b/c.d/..."),
            ("/plain", "/plain"),
        ] {
            assert_eq!(admitted(given, Some("a.test")).unwrap(), expected, "{given}");
        }
    }

    #[test]
    fn ambiguous_authorities_are_refused() {
        assert!(admitted("/", Some("a.test,c.test")).is_err());
        assert!(admitted("/", Some("user@a.test")).is_err());
        assert!(admitted("/", Some("bad host")).is_err());
        assert!(admitted("http://user@a.test/x", None).is_err());
        assert!(admitted("http://user:pw@a.test/x", Some("a.test")).is_err());
        assert_eq!(admitted("http://a.test:8080/x", None).unwrap(), "http://a.test:8080/x");
        assert!(admitted("/", Some("a.test:8080")).is_ok());
        assert!(admitted("/", Some("[::1]:8080")).is_ok());
        assert!(admitted("/", None).is_ok(), "HTTP/1.0 without Host is the app's business");
    }

    #[test]
    fn stripping_keeps_the_query_and_one_leading_slash() {
        let stripped = |uri: &str, len| {
            let mut request = Request::builder().uri(uri).body(()).unwrap();
            strip_prefix(&mut request, len);
            request.uri().to_string()
        };
        assert_eq!(stripped("/api/orders?x=1", 4), "/orders?x=1");
        assert_eq!(stripped("/api?x=1", 4), "/?x=1");
        assert_eq!(stripped("/api//evil.example/x", 4), "/evil.example/x", "never a leading `//`");
        assert_eq!(stripped("/api/x", 0), "/api/x");
    }

    #[test]
    fn more_than_one_host_header_is_refused() {
        let mut request = Request::builder().uri("/").header("host", "a").header("host", "b").body(()).unwrap();
        assert_eq!(admit(&mut request), Err("more than one Host header"));
    }
}
