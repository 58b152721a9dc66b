//! JSON text operations: the host's limits, well-formedness, minifying and
//! RFC 6901 JSON Pointer extraction.
//!
//! Every document first goes through a pre-scan: a size check, a UTF-8
//! check and one iterative pass that measures nesting depth (ignoring
//! brackets inside strings) and refuses lone UTF-16 surrogate escapes. Only
//! then does serde_json's recursive parser see it, so a 100 000-deep array
//! never reaches it. Numbers are never interpreted by `check`, `minify` or
//! `extract`: they are copied as written, so `1e400` or a 400-digit integer
//! pass through unchanged. Validation needs values, so there such a number
//! is a `syntax` error at its position ("number out of range").

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use serde::Deserialize as _;

pub use crate::bindings::wasmhost::platform::json::{Error as JsonError, ErrorKind};

/// Largest document the host accepts, in bytes (64 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 64 << 20;

/// Deepest nesting of arrays and objects the host accepts.
pub const MAX_DEPTH: usize = 128;

impl JsonError {
    fn new(kind: ErrorKind, message: impl Into<String>, line: usize, column: usize) -> Self {
        Self {
            kind,
            message: message.into(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }

    /// An error of `kind` at byte `offset` of `text`.
    fn at(kind: ErrorKind, message: impl Into<String>, text: &[u8], offset: usize) -> Self {
        let before = &text[..offset.min(text.len())];
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        Self::new(kind, message, line, offset - line_start + 1)
    }

    /// A syntax error reported by serde_json, which counts lines and
    /// columns (in bytes) itself.
    fn from_serde(error: &serde_json::Error) -> Self {
        let message = error.to_string();
        let message = match message.rsplit_once(" at line ") {
            Some((message, _)) => message.to_owned(),
            None => message,
        };
        // serde_json says column 0 for the end of input at the start of a
        // line (an empty document, or one ending in a newline); ours are
        // 1-based.
        Self::new(ErrorKind::Syntax, message, error.line(), error.column().max(1))
    }

    /// The error as one line of prose, position included.
    pub fn describe(&self) -> String {
        if self.line == 0 {
            self.message.clone()
        } else {
            format!("{} at line {}, column {}", self.message, self.line, self.column)
        }
    }
}

/// Checks everything serde_json's recursive parser cannot be trusted with:
/// size, UTF-8, nesting depth and lone surrogate escapes. Returns the text.
fn prescan(document: &[u8]) -> Result<&str, JsonError> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(JsonError::new(
            ErrorKind::TooLarge,
            format!(
                "the document is {} bytes; the host accepts at most {MAX_DOCUMENT_BYTES} bytes (64 MiB)",
                document.len()
            ),
            0,
            0,
        ));
    }
    let text = std::str::from_utf8(document)
        .map_err(|e| JsonError::at(ErrorKind::Syntax, "invalid UTF-8", document, e.valid_up_to()))?;
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = check_string(bytes, i)?,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(JsonError::at(
                        ErrorKind::TooDeep,
                        format!("arrays and objects are nested more than {MAX_DEPTH} levels deep"),
                        bytes,
                        i,
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(text)
}

/// Scans the string starting at the quote at `open`, refusing `\u` escapes
/// that are lone UTF-16 surrogates. Returns the index of the closing quote
/// (or the end of the text; serde_json reports unterminated strings).
fn check_string(bytes: &[u8], open: usize) -> Result<usize, JsonError> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok(i),
            b'\\' if bytes.get(i + 1) == Some(&b'u') => {
                let Some(unit) = hex4(bytes, i + 2) else {
                    // Not four hex digits: serde_json reports it.
                    i += 2;
                    continue;
                };
                let lone = || {
                    JsonError::at(
                        ErrorKind::Syntax,
                        "lone UTF-16 surrogate in a \\u escape (JSON text must be valid Unicode)",
                        bytes,
                        i,
                    )
                };
                match unit {
                    0xD800..=0xDBFF => {
                        let low = (bytes.get(i + 6..i + 8) == Some(b"\\u")).then(|| hex4(bytes, i + 8)).flatten();
                        if !matches!(low, Some(0xDC00..=0xDFFF)) {
                            return Err(lone());
                        }
                        i += 12;
                    }
                    0xDC00..=0xDFFF => return Err(lone()),
                    _ => i += 6,
                }
            }
            b'\\' => i += 2,
            // serde_json refuses these too, but when it only checks a
            // string (`check`, `minify`, `extract`) it reports the column
            // before the character.
            0x00..=0x1F => {
                return Err(JsonError::at(
                    ErrorKind::Syntax,
                    "control character (\\u0000-\\u001F) found while parsing a string",
                    bytes,
                    i,
                ))
            }
            _ => i += 1,
        }
    }
    Ok(bytes.len())
}

/// The four hex digits at `at`, as a number.
fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

/// Checks that `document` is one well-formed JSON value within the limits
/// and returns its text.
fn well_formed(document: &[u8]) -> Result<&str, JsonError> {
    let text = prescan(document)?;
    let mut de = serde_json::Deserializer::from_str(text);
    // `prescan` bounded the depth at MAX_DEPTH; serde_json's own limit is
    // one level lower.
    de.disable_recursion_limit();
    serde::de::IgnoredAny::deserialize(&mut de).and_then(|_| de.end()).map_err(|e| JsonError::from_serde(&e))?;
    Ok(text)
}

/// Parses `document` into a value for validation. Besides [`check`]'s
/// errors, a number outside the range of `f64` is a `syntax` error.
pub(crate) fn parse_value(document: &[u8]) -> Result<serde_json::Value, JsonError> {
    let text = prescan(document)?;
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let value = serde_json::Value::deserialize(&mut de).map_err(|e| JsonError::from_serde(&e))?;
    de.end().map_err(|e| JsonError::from_serde(&e))?;
    Ok(value)
}

/// Checks that `document` is one well-formed JSON value: valid UTF-8, no
/// trailing data, no lone surrogate escapes, at most [`MAX_DOCUMENT_BYTES`]
/// long and [`MAX_DEPTH`] deep.
pub fn check(document: &[u8]) -> Result<(), JsonError> {
    well_formed(document).map(drop)
}

/// `document` without insignificant whitespace. Without `sort_keys` that is
/// all that changes: key order, duplicate keys, string escapes and numbers
/// stay as written. With `sort_keys` the output is canonical: object keys
/// are sorted by code point, a duplicated key keeps its last value (as
/// parsers do), and strings are re-escaped minimally (`"\u0041"` becomes
/// `"A"`). Numbers are always kept as written.
pub fn minify(document: &[u8], sort_keys: bool) -> Result<Vec<u8>, JsonError> {
    let text = well_formed(document)?;
    Ok(if sort_keys { canonical(text.as_bytes()) } else { strip_whitespace(text.as_bytes()) })
}

/// For each RFC 6901 pointer in `pointers`, the minified text of the value
/// it selects in `document`, or `None` when there is no such value. A
/// duplicated key selects its last value. A pointer that is neither `""`
/// nor starts with `/`, or has a `~` not followed by `0` or `1`, is a
/// `bad-pointer` error. One pass over the document answers all pointers.
pub fn extract(document: &[u8], pointers: &[String]) -> Result<Vec<Option<Vec<u8>>>, JsonError> {
    let mut trie = Trie::default();
    for (index, pointer) in pointers.iter().enumerate() {
        trie.insert(index, pointer)?;
    }
    let text = well_formed(document)?.as_bytes();
    let found = trie.find(text, pointers.len());
    Ok(found.into_iter().map(|range| range.map(|r| strip_whitespace(&text[r]))).collect())
}

/// Whitespace JSON allows between tokens.
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Index just past the string whose opening quote is at `open`, in text
/// that is known to be well-formed.
fn string_end(text: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < text.len() {
        match text[i] {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    text.len()
}

/// Index just past the number or literal starting at `start`.
fn scalar_end(text: &[u8], start: usize) -> usize {
    text[start..]
        .iter()
        .position(|&b| is_whitespace(b) || matches!(b, b',' | b']' | b'}' | b':'))
        .map_or(text.len(), |n| start + n)
}

/// Index just past the value starting at `start` (not whitespace), in text
/// that is known to be well-formed. Iterative.
fn value_end(text: &[u8], start: usize) -> usize {
    match text.get(start) {
        Some(b'"') => string_end(text, start),
        Some(b'[' | b'{') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < text.len() {
                match text[i] {
                    b'"' => {
                        i = string_end(text, i);
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            text.len()
        }
        _ => scalar_end(text, start),
    }
}

/// Index of the first non-whitespace byte at or after `i`.
fn skip_whitespace(text: &[u8], mut i: usize) -> usize {
    while text.get(i).is_some_and(|&b| is_whitespace(b)) {
        i += 1;
    }
    i
}

/// Well-formed JSON text without whitespace outside strings.
fn strip_whitespace(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let end = string_end(text, i);
                out.extend_from_slice(&text[i..end]);
                i = end;
            }
            b if is_whitespace(b) => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The decoded contents of the well-formed JSON string `raw` (quotes
/// included), borrowed when it has no escapes.
fn decode_string(raw: &[u8]) -> Option<Cow<'_, str>> {
    let inner = raw.get(1..raw.len().saturating_sub(1))?;
    if inner.contains(&b'\\') {
        let raw = std::str::from_utf8(raw).ok()?;
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        std::str::from_utf8(inner).ok().map(Cow::Borrowed)
    }
}

/// Writes `s` as a JSON string with minimal escapes.
fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[last..i]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        last = i + 1;
    }
    out.extend_from_slice(&s.as_bytes()[last..]);
    out.push(b'"');
}

/// Copies the well-formed string `raw` to `out`, re-escaped minimally.
fn write_canonical_string(out: &mut Vec<u8>, raw: &[u8]) {
    if raw.contains(&b'\\') {
        match decode_string(raw) {
            Some(s) => write_string(out, &s),
            // Unreachable for well-formed text; keeping it as written is
            // still valid JSON.
            None => out.extend_from_slice(raw),
        }
    } else {
        // Without escapes a well-formed string is already minimal.
        out.extend_from_slice(raw);
    }
}

/// One member of an object being written by [`canonical`].
struct Member {
    key: String,
    /// Where `"key":value` is in the output.
    bytes: Range<usize>,
}

/// An open container while writing [`canonical`] output.
enum Frame {
    Array,
    Object {
        /// Output index just after the `{`.
        start: usize,
        members: Vec<Member>,
        /// The key and output start of the member being written.
        open: Option<(String, usize)>,
        key_next: bool,
    },
}

impl Frame {
    /// Whether the next string in this container is an object key.
    fn expects_key(&self) -> bool {
        matches!(self, Frame::Object { key_next: true, .. })
    }
}

/// Canonical minified text: sorted keys, last duplicate wins, minimal
/// string escapes. Iterative; objects are written in document order and
/// reordered in place when they close, only if they are not already sorted.
fn canonical(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        match b {
            b if is_whitespace(b) => i += 1,
            b'[' => {
                out.push(b'[');
                stack.push(Frame::Array);
                i += 1;
            }
            b'{' => {
                out.push(b'{');
                stack.push(Frame::Object { start: out.len(), members: Vec::new(), open: None, key_next: true });
                i += 1;
            }
            b']' => {
                out.push(b']');
                stack.pop();
                i += 1;
            }
            b'}' => {
                if let Some(Frame::Object { start, mut members, open, .. }) = stack.pop() {
                    if let Some((key, from)) = open {
                        members.push(Member { key, bytes: from..out.len() });
                    }
                    close_object(&mut out, start, members);
                }
                out.push(b'}');
                i += 1;
            }
            b',' => {
                if let Some(Frame::Object { members, open, key_next, .. }) = stack.last_mut() {
                    if let Some((key, from)) = open.take() {
                        members.push(Member { key, bytes: from..out.len() });
                    }
                    *key_next = true;
                }
                out.push(b',');
                i += 1;
            }
            b':' => {
                out.push(b':');
                i += 1;
            }
            b'"' => {
                let end = string_end(text, i);
                let raw = &text[i..end];
                if let Some(Frame::Object { open, key_next, .. }) = stack.last_mut().filter(|f| f.expects_key()) {
                    let key = decode_string(raw).map(Cow::into_owned).unwrap_or_default();
                    *open = Some((key, out.len()));
                    *key_next = false;
                }
                write_canonical_string(&mut out, raw);
                i = end;
            }
            _ => {
                let end = scalar_end(text, i);
                out.extend_from_slice(&text[i..end]);
                i = end;
            }
        }
    }
    out
}

/// Finishes an object whose members (separated by commas) were written to
/// `out` from `start` on: sorts them by key and drops all but the last of
/// duplicated keys, rewriting the object only when that changes it.
fn close_object(out: &mut Vec<u8>, start: usize, mut members: Vec<Member>) {
    if members.windows(2).all(|pair| pair[0].key < pair[1].key) {
        return;
    }
    // Stable, so among equal keys the last member is still last.
    members.sort_by(|a, b| a.key.cmp(&b.key));
    let mut rewritten = Vec::with_capacity(out.len() - start);
    for (n, member) in members.iter().enumerate() {
        if members.get(n + 1).is_some_and(|next| next.key == member.key) {
            continue;
        }
        if !rewritten.is_empty() {
            rewritten.push(b',');
        }
        rewritten.extend_from_slice(&out[member.bytes.clone()]);
    }
    out.truncate(start);
    out.extend_from_slice(&rewritten);
}

/// Parsed pointers, sharing prefixes, for answering them all in one pass.
#[derive(Default)]
struct Trie {
    /// Node 0 is the whole document (the pointer `""`).
    nodes: Vec<TrieNode>,
}

#[derive(Default)]
struct TrieNode {
    children: HashMap<String, usize>,
    /// Indexes of the pointers that end here.
    targets: Vec<usize>,
}

/// A container on the path of some pointer while [`Trie::find`] walks a
/// document.
struct WalkFrame {
    node: usize,
    start: usize,
    array: bool,
    next_index: usize,
}

/// Where a pointer's value was found, and the visit of every node on its
/// path at that time (so a later duplicate key can invalidate it).
struct Found {
    range: Range<usize>,
    visits: Vec<(usize, u64)>,
}

impl Trie {
    /// Adds pointer number `index`.
    fn insert(&mut self, index: usize, pointer: &str) -> Result<(), JsonError> {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let bad = |why: &str| JsonError::new(ErrorKind::BadPointer, format!("JSON Pointer {pointer:?} {why}"), 0, 0);
        let mut node = 0;
        if !pointer.is_empty() {
            let Some(rest) = pointer.strip_prefix('/') else {
                return Err(bad("must be empty or start with `/`"));
            };
            for raw in rest.split('/') {
                let token = unescape_token(raw).ok_or_else(|| bad("has a `~` not followed by `0` or `1`"))?;
                node = match self.nodes[node].children.get(&token) {
                    Some(&child) => child,
                    None => {
                        let child = self.nodes.len();
                        self.nodes.push(TrieNode::default());
                        self.nodes[node].children.insert(token, child);
                        child
                    }
                };
            }
        }
        self.nodes[node].targets.push(index);
        Ok(())
    }

    /// The byte range of each pointer's value in the well-formed `text`.
    fn find(&self, text: &[u8], count: usize) -> Vec<Option<Range<usize>>> {
        let mut found: Vec<Option<Found>> = (0..count).map(|_| None).collect();
        if self.nodes.is_empty() {
            return Vec::new();
        }
        // How many times each trie node's value has been entered; a
        // duplicate key enters it again and makes earlier finds under it
        // stale.
        let mut visits = vec![0u64; self.nodes.len()];
        let mut stack: Vec<WalkFrame> = Vec::new();
        let mut i = skip_whitespace(text, 0);
        // The trie node of the value at `i`, `None` when no pointer goes
        // through it.
        let mut node = Some(0);
        loop {
            match node {
                Some(node) => {
                    visits[node] += 1;
                    let container = text.get(i).filter(|&&b| b == b'[' || b == b'{');
                    match container {
                        Some(&open) if !self.nodes[node].children.is_empty() => {
                            stack.push(WalkFrame { node, start: i, array: open == b'[', next_index: 0 });
                            i += 1;
                        }
                        _ => {
                            let end = value_end(text, i);
                            self.record(node, i..end, &stack, &visits, &mut found);
                            i = end;
                        }
                    }
                }
                None => i = value_end(text, i),
            }
            match self.next_value(text, &mut i, &mut stack, &visits, &mut found) {
                Some(next) => node = next,
                None => break,
            }
        }
        found
            .into_iter()
            .map(|found| {
                let found = found?;
                found.visits.iter().all(|&(node, visit)| visits[node] == visit).then_some(found.range)
            })
            .collect()
    }

    /// Moves `i` to the next value inside the open containers, closing the
    /// ones that end on the way. Returns the trie node of that value, or
    /// `None` when the document is done.
    fn next_value(
        &self,
        text: &[u8],
        i: &mut usize,
        stack: &mut Vec<WalkFrame>,
        visits: &[u64],
        found: &mut [Option<Found>],
    ) -> Option<Option<usize>> {
        loop {
            *i = skip_whitespace(text, *i);
            match text.get(*i) {
                Some(b',') => *i += 1,
                Some(b']' | b'}') | None => {
                    *i = (*i + 1).min(text.len());
                    let frame = stack.pop()?;
                    self.record(frame.node, frame.start..*i, stack, visits, found);
                }
                Some(_) => {
                    let frame = stack.last_mut()?;
                    let children = &self.nodes[frame.node].children;
                    let child = if frame.array {
                        let index = frame.next_index;
                        frame.next_index += 1;
                        children.get(&index.to_string()).copied()
                    } else {
                        let key_end = string_end(text, *i);
                        let key = decode_string(&text[*i..key_end]);
                        // Past the colon.
                        *i = skip_whitespace(text, key_end) + 1;
                        key.and_then(|key| children.get(key.as_ref()).copied())
                    };
                    *i = skip_whitespace(text, *i);
                    return Some(child);
                }
            }
        }
    }

    /// Records `range` as the value of the pointers ending at `node`.
    fn record(
        &self,
        node: usize,
        range: Range<usize>,
        stack: &[WalkFrame],
        visits: &[u64],
        found: &mut [Option<Found>],
    ) {
        let targets = &self.nodes[node].targets;
        if targets.is_empty() {
            return;
        }
        let path: Vec<(usize, u64)> =
            stack.iter().map(|frame| frame.node).chain([node]).map(|n| (n, visits[n])).collect();
        for &target in targets {
            found[target] = Some(Found { range: range.clone(), visits: path.clone() });
        }
    }
}

/// A pointer reference token with `~1` and `~0` decoded; `None` when a `~`
/// is not followed by `0` or `1`.
fn unescape_token(raw: &str) -> Option<String> {
    if !raw.contains('~') {
        return Some(raw.to_owned());
    }
    let mut token = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => token.push('~'),
                Some('1') => token.push('/'),
                _ => return None,
            }
        } else {
            token.push(c);
        }
    }
    Some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(result: Result<impl std::fmt::Debug, JsonError>) -> JsonError {
        result.expect_err("expected an error")
    }

    fn minified(doc: &str, sort_keys: bool) -> String {
        String::from_utf8(minify(doc.as_bytes(), sort_keys).expect("valid")).expect("UTF-8")
    }

    fn extracted(doc: &str, pointers: &[&str]) -> Vec<Option<String>> {
        let pointers: Vec<String> = pointers.iter().map(|p| (*p).to_owned()).collect();
        extract(doc.as_bytes(), &pointers)
            .expect("valid")
            .into_iter()
            .map(|v| v.map(|v| String::from_utf8(v).expect("UTF-8")))
            .collect()
    }

    #[test]
    fn check_accepts_json_values() {
        for doc in
            ["0", "-1.5e-3", "\"a\"", "true", "null", "[]", "{}", " [1, {\"a\": [null]}] \n", "\"\\ud83d\\ude00\""]
        {
            assert!(check(doc.as_bytes()).is_ok(), "{doc}");
        }
    }

    #[test]
    fn trailing_data_is_a_syntax_error_with_its_position() {
        let e = err(check(b"{\"a\": 1}\n  x"));
        assert_eq!(e.kind, ErrorKind::Syntax);
        assert_eq!((e.line, e.column), (2, 3), "{e:?}");
        assert!(e.message.contains("trailing"), "{e:?}");
        assert_eq!(err(check(b"1 2")).kind, ErrorKind::Syntax);
        assert_eq!(err(check(b"[1,]")).kind, ErrorKind::Syntax);
        assert_eq!(err(check(b"")).kind, ErrorKind::Syntax);
        let e = err(check(b"[1,"));
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::Syntax, 1, 3), "{e:?}");
    }

    #[test]
    fn invalid_utf8_is_a_syntax_error_with_its_position() {
        let e = err(check(b"[\"ok\",\n \"\xff\"]"));
        assert_eq!(e.kind, ErrorKind::Syntax);
        assert_eq!((e.line, e.column), (2, 3), "{e:?}");
        assert!(e.message.contains("UTF-8"));
        // Also outside strings, and truncated sequences.
        assert_eq!(err(check(b"\xc3")).kind, ErrorKind::Syntax);
        assert_eq!(err(minify(b"[\"\xe2\x82\"]", false)).kind, ErrorKind::Syntax);
    }

    /// Found by `fuzz/` (json_check): column 0 with line 1.
    #[test]
    fn end_of_input_positions_are_1_based() {
        let e = err(check(b""));
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::Syntax, 1, 1), "{e:?}");
        let e = err(check(b"[1,\n"));
        assert_eq!((e.line, e.column), (2, 1), "{e:?}");
    }

    /// Found by `fuzz/` (schema_compile_validate): `check` put a control
    /// character one column before where validation put it.
    #[test]
    fn control_characters_in_strings_are_located_alike_everywhere() {
        let doc = b"[\"ok\",\n \"a\x00\"]";
        let e = err(check(doc));
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::Syntax, 2, 4), "{e:?}");
        assert!(e.message.contains("control character"), "{e:?}");
        let parsed = err(parse_value(doc));
        assert_eq!((parsed.line, parsed.column), (2, 4), "{parsed:?}");
        assert_eq!(err(minify(b"\"\t\"", false)).column, 2);
    }

    #[test]
    fn lone_surrogates_are_syntax_errors() {
        for doc in
            [r#""\ud800""#, r#""\udc00""#, r#"["x\ud800y"]"#, r#"{"\ud800":1}"#, r#""\ud800\u0041""#, r#""\ud800\"#]
        {
            let e = err(check(doc.as_bytes()));
            assert_eq!(e.kind, ErrorKind::Syntax, "{doc}: {e:?}");
        }
        let e = err(check(br#"[1, "\ud800"]"#));
        assert_eq!((e.line, e.column), (1, 6), "{e:?}");
        assert!(e.message.contains("surrogate"));
        assert!(check(br#""\ud800\udc00 \\ud800""#).is_ok(), "a pair, and an escaped backslash");
        assert_eq!(err(parse_value(br#""\udfff""#)).kind, ErrorKind::Syntax);
    }

    #[test]
    fn depth_is_limited_without_recursion() {
        let depth = |n: usize, open: &str, leaf: &str, close: &str| {
            format!("{}{leaf}{}", open.repeat(n), close.repeat(n)).into_bytes()
        };
        assert!(check(&depth(MAX_DEPTH, "[", "1", "]")).is_ok());
        assert!(parse_value(&depth(MAX_DEPTH, "{\"a\":", "1", "}")).is_ok());
        let e = err(check(&depth(MAX_DEPTH + 1, "[", "", "]")));
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::TooDeep, 1, 129));
        for doc in [depth(100_000, "[", "", "]"), depth(100_000, "{\"a\":", "1", "}"), "[".repeat(100_000).into_bytes()]
        {
            assert_eq!(err(check(&doc)).kind, ErrorKind::TooDeep);
            assert_eq!(err(minify(&doc, true)).kind, ErrorKind::TooDeep);
            assert_eq!(err(extract(&doc, &["/0".to_owned()])).kind, ErrorKind::TooDeep);
            assert_eq!(err(parse_value(&doc)).kind, ErrorKind::TooDeep);
        }
        // Brackets in strings do not count.
        let in_string = format!("[\"{}\\\"{}\"]", "[".repeat(100_000), "{".repeat(100));
        assert!(check(in_string.as_bytes()).is_ok());
    }

    #[test]
    fn size_is_limited() {
        let mut doc = vec![b' '; MAX_DOCUMENT_BYTES];
        doc[0] = b'0';
        assert!(check(&doc).is_ok());
        doc.push(b' ');
        let e = err(check(&doc));
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::TooLarge, 0, 0));
        assert_eq!(err(minify(&doc, false)).kind, ErrorKind::TooLarge);
        assert_eq!(err(parse_value(&doc)).kind, ErrorKind::TooLarge);
    }

    #[test]
    fn huge_numbers_pass_through_text_operations_and_fail_parsing_with_a_position() {
        let big_int = "9".repeat(400);
        let doc = format!("{{\"f\": 1e400, \"i\": {big_int}, \"t\": -1E-400}}");
        assert!(check(doc.as_bytes()).is_ok());
        assert_eq!(minified(&doc, false), format!("{{\"f\":1e400,\"i\":{big_int},\"t\":-1E-400}}"));
        assert_eq!(minified(&doc, true), format!("{{\"f\":1e400,\"i\":{big_int},\"t\":-1E-400}}"));
        assert_eq!(extracted(&doc, &["/f", "/i"]), [Some("1e400".to_owned()), Some(big_int.clone())]);
        let e = err(parse_value(doc.as_bytes()));
        // serde_json points at the last digit of `1e400`.
        assert_eq!((e.kind, e.line, e.column), (ErrorKind::Syntax, 1, 11), "{e:?}");
        assert!(e.message.contains("out of range"), "{e:?}");
        let e = err(parse_value(big_int.as_bytes()));
        assert_eq!(e.kind, ErrorKind::Syntax);
        // Large integers within the range of f64 become floats.
        assert!(parse_value("9".repeat(300).as_bytes()).is_ok_and(|v| v.is_f64()));
    }

    #[test]
    fn minify_keeps_everything_but_whitespace() {
        let doc = " {\"b\" : [1, 2.50, \"x y\\n\\u0041\"],\r\n\t\"a\": {\"a\":1, \"a\": 2}, \"\": null } ";
        assert_eq!(minified(doc, false), r#"{"b":[1,2.50,"x y\n\u0041"],"a":{"a":1,"a":2},"":null}"#);
        assert_eq!(minified("\"  \"", false), "\"  \"");
    }

    #[test]
    fn sort_keys_is_canonical() {
        let doc = r#"{"b":1,"a":{"z":[{"y":1,"x":2}],"\u0041":"\u0041\/\u00e9\u001f","é":0,"Z":0,"aa":0},"a":{"k":2,"j":1},"":[]}"#;
        assert_eq!(minified(doc, true), r#"{"":[],"a":{"j":1,"k":2},"b":1}"#, "the last duplicate wins");
        let doc =
            r#" {"z":[{"y":1,"x":2}],"\u0041":"\u0041\/\u00e9\u001f\ud83d\ude00","é":0,"Z":0,"aa":0, "a": true} "#;
        assert_eq!(
            minified(doc, true),
            "{\"A\":\"A/é\\u001f😀\",\"Z\":0,\"a\":true,\"aa\":0,\"z\":[{\"x\":2,\"y\":1}],\"é\":0}"
        );
    }

    #[test]
    fn sort_keys_agrees_with_serde_json() {
        // serde_json's `Value` (without `preserve_order`) sorts keys and
        // keeps the last duplicate; integers print as written.
        let docs = [
            r#"{"c":{"b":[3,{"z":1,"y":[{"q":1,"p":2}]}],"a":-7},"b":"\n\t\"\\","a":[{},[],""]}"#,
            r#"[{"k":1,"k":2,"j":{"k":[1],"k":{"x":0}}},{"\u00ff":1,"\u0100":2,"~":3," ":4}]"#,
            r#"{"x":{"x":{"x":{"x":{"b":1,"a":2}}}},"\u2028":"\u2029","\ud83d\ude00":"\u20ac"}"#,
        ];
        for doc in docs {
            let value: serde_json::Value = serde_json::from_str(doc).expect("valid");
            assert_eq!(minified(doc, true), serde_json::to_string(&value).expect("serializes"), "{doc}");
        }
    }

    #[test]
    fn extract_follows_rfc_6901() {
        let doc = r#"{"a": {"b": [10, {"c": "d"}, [1, 2]]}, "x/y": 1, "m~n": 2, "": 3, "a\u0062": 4, " ": {"": 5}}"#;
        let found = extracted(
            doc,
            &[
                "", "/a", "/a/b", "/a/b/0", "/a/b/1/c", "/a/b/2", "/x~1y", "/m~0n", "/", "/ab", "/ /", "/a/b/3",
                "/a/b/01", "/a/b/-", "/a/b/0/x", "/nope", "/a/c",
            ],
        );
        let expected = [
            Some(r#"{"a":{"b":[10,{"c":"d"},[1,2]]},"x/y":1,"m~n":2,"":3,"a\u0062":4," ":{"":5}}"#),
            Some(r#"{"b":[10,{"c":"d"},[1,2]]}"#),
            Some(r#"[10,{"c":"d"},[1,2]]"#),
            Some("10"),
            Some(r#""d""#),
            Some("[1,2]"),
            Some("1"),
            Some("2"),
            Some("3"),
            Some("4"),
            Some("5"),
            None,
            None,
            None,
            None,
            None,
            None,
        ];
        assert_eq!(found, expected.map(|e| e.map(str::to_owned)));
        assert_eq!(extracted("[]", &[]), Vec::<Option<String>>::new());
    }

    #[test]
    fn extract_takes_the_last_duplicate() {
        assert_eq!(
            extracted(r#"{"a":{"b":1},"a":{"b":2}}"#, &["/a/b", "/a"]),
            [Some("2".into()), Some(r#"{"b":2}"#.into())]
        );
        assert_eq!(extracted(r#"{"a":{"b":1},"a":2}"#, &["/a/b", "/a"]), [None, Some("2".into())]);
        assert_eq!(
            extracted(r#"{"a":[{"b":1},{"b":2,"b":3}],"a":[{"c":1}]}"#, &["/a/0/b", "/a/0/c", "/a/1/b"]),
            [None, Some("1".into()), None]
        );
    }

    #[test]
    fn bad_pointers_are_refused() {
        for pointer in ["a", "a/b", "#/a", "/~", "/~2", "/a~"] {
            let e = err(extract(b"{}", &[pointer.to_owned()]));
            assert_eq!(e.kind, ErrorKind::BadPointer, "{pointer}");
            assert!(e.message.contains(&format!("{pointer:?}")), "{e:?}");
        }
    }
}
