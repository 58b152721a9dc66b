//! JSON Schema compilation and validation with the `jsonschema` crate, and
//! the per-app cache of compiled schemas.
//!
//! `jsonschema` recurses through the schema while it compiles and
//! validates, and collects every failure before it returns any. Both are
//! unbounded for some schemas: a chain of 10 000 `$ref`s overflows a 1 MiB
//! stack; listing the failures of a recursive `anyOf` of two `$ref`s takes
//! time exponential in the document's depth; and since `anyOf`, `oneOf`,
//! `not`, ... check their part of the document with `is_valid` before
//! collecting its failures, nesting many of them makes listing quadratic.
//! (Checking validity alone is memoized by `jsonschema` and stays cheap.)
//! So before compiling, the host works out the schema's `Shape` from its
//! graph of subschemas and references:
//!
//! * how deeply validation can nest, which decides whether validating can
//!   run on the caller's stack (a guest's fiber) or needs a helper thread
//!   with a large stack; schemas that would need more than that are
//!   refused;
//! * how many schema nodes can check one node of a document, and how many
//!   re-checking keywords a path can nest, which with the document's size
//!   and depth bound the work of listing failures. Within a small bound all
//!   failures are listed (at most 100), within a larger one only the first,
//!   and beyond it (or when the work is unbounded) one failure that says
//!   the document does not match.
//!
//! Compiling always runs on a helper thread (it is cached, so rare).
//! Only `$ref`s within the schema are supported: `#`, `#/json/pointer`,
//! `#anchor`, or the root's own `$id` followed by one of those. Remote and
//! file references, embedded resources (`$id` in a subschema) and
//! `$dynamicRef`/`$recursiveRef` are refused at compile time; nothing is
//! ever fetched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{anyhow, Context as _};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::json::{self, JsonError};

pub use crate::bindings::wasmhost::platform::validation::ValidationError as Violation;

/// Most failures [`CompiledSchema::validate`] lists.
pub const MAX_VIOLATIONS: usize = 100;

/// Compiled schemas a [`SchemaCache`] keeps by default.
pub const DEFAULT_CACHE_ENTRIES: usize = 256;

/// Stack of the helper threads that compile schemas and validate against
/// deeply nested ones. Only the pages a thread touches are committed.
const HELPER_STACK_BYTES: usize = 64 << 20;

/// Deepest nesting of validator calls (counted in subschemas) that runs on
/// the caller's stack. A guest's fiber has 2 MiB, up to 512 KiB of it
/// for wasm; the `inline_validation_fits_in_512_kib` test checks that the
/// worst schema under this bound validates within 512 KiB.
const INLINE_HOPS: u64 = 1_000;

/// Deepest nesting of validator calls accepted at all: under a tenth of
/// [`HELPER_STACK_BYTES`] at the measured few hundred bytes per subschema.
/// It also bounds compile time, which grows with the square of the longest
/// `$ref` chain (0.7 s at this length).
const MAX_HOPS: u64 = 20_000;

/// Bound on the work of listing failures (see [`Shape::listing_cost`])
/// under which all of them are collected; it also bounds their memory.
const ITEMIZE_COST: u64 = 250_000;

/// Bound on the work of finding the first failure, above which none is
/// looked for (about a second in the worst case).
const FIRST_FAILURE_COST: u64 = 20_000_000;

/// Largest schema graph (in subschemas) for which the fanout is computed;
/// failures against larger schemas are not listed.
const MAX_FANOUT_NODES: usize = 100_000;

/// Fanout above which failures are not collected at all.
const MAX_FANOUT: u64 = 1 << 20;

/// Longest `message` in a listed failure; longer ones (which quote a large
/// part of the document) are replaced by a version that does not quote it.
const MAX_MESSAGE_BYTES: usize = 1024;

/// Total size of the failures listed for one document.
const MAX_VIOLATION_BYTES: usize = 1 << 20;

/// Limit on the compiled size of each `pattern`, in bytes.
const REGEX_SIZE_LIMIT: usize = 2 << 20;

/// A JSON Schema compiled for validation, with the bounds the host derived
/// from its shape.
pub struct CompiledSchema {
    validator: jsonschema::Validator,
    shape: Shape,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema").field("shape", &self.shape).finish_non_exhaustive()
    }
}

impl CompiledSchema {
    /// Compiles `schema` (JSON text). The error says what is wrong with it.
    /// Runs on a helper thread; blocks until it is done.
    pub fn compile(schema: &[u8]) -> Result<Self, String> {
        let value = json::parse_value(schema).map_err(|e| format!("the schema is not valid JSON: {}", e.describe()))?;
        let shape = Shape::of(&value)?;
        let validator = on_helper_thread(|| {
            jsonschema::options()
                .offline()
                .with_pattern_options(jsonschema::PatternOptions::regex().size_limit(REGEX_SIZE_LIMIT))
                .build(&value)
                .map_err(|e| describe_schema_error(&e))
        })
        .map_err(|e| format!("{e:#}"))??;
        Ok(Self { validator, shape })
    }

    /// Validates `document`: the failures (at most [`MAX_VIOLATIONS`]),
    /// empty when it is valid, or why it is not JSON. Fails only when a
    /// helper thread cannot be started or the validator panics.
    pub fn validate(&self, document: &[u8]) -> anyhow::Result<Result<Vec<Violation>, JsonError>> {
        match json::parse_value(document) {
            Ok(value) => self.validate_value(&value).map(Ok),
            Err(e) => Ok(Err(e)),
        }
    }

    /// [`Self::validate`] for a parsed document.
    pub(crate) fn validate_value(&self, document: &Value) -> anyhow::Result<Vec<Violation>> {
        let work = || self.violations(document);
        if self.shape.hops <= INLINE_HOPS {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|_| {
                anyhow!("the JSON Schema validator panicked; this is a bug in wasmhost or the jsonschema crate")
            })
        } else {
            on_helper_thread(work)
        }
    }

    /// The failures of `document`, as many as can be listed with bounded
    /// work.
    fn violations(&self, document: &Value) -> Vec<Violation> {
        if self.validator.is_valid(document) {
            return Vec::new();
        }
        match self.shape.listing_cost(document) {
            Some(cost) if cost <= ITEMIZE_COST => {
                let mut listed = Vec::new();
                let mut bytes = 0;
                for error in self.validator.iter_errors(document).take(MAX_VIOLATIONS) {
                    let violation = violation(&error);
                    bytes += violation.instance_path.len() + violation.schema_path.len() + violation.message.len();
                    if bytes > MAX_VIOLATION_BYTES && !listed.is_empty() {
                        break;
                    }
                    listed.push(violation);
                }
                listed
            }
            Some(cost) if cost <= FIRST_FAILURE_COST => match self.validator.validate(document) {
                Err(error) => vec![violation(&error)],
                // Unreachable: `is_valid` said otherwise.
                Ok(()) => vec![not_itemized()],
            },
            _ => vec![not_itemized()],
        }
    }
}

/// One failure, with a message that does not quote a large part of the
/// document.
fn violation(error: &jsonschema::ValidationError<'_>) -> Violation {
    let mut message = error.to_string();
    if message.len() > MAX_MESSAGE_BYTES {
        message = error.masked().to_string();
    }
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    Violation {
        instance_path: error.instance_path().to_string(),
        schema_path: error.schema_path().to_string(),
        message,
    }
}

/// The one failure listed when listing the real ones could take too long.
fn not_itemized() -> Violation {
    Violation {
        instance_path: String::new(),
        schema_path: String::new(),
        message: "the document does not match the schema (its failures are not listed: for this \
                  schema and document that could take very long, e.g. alternatives combined with \
                  recursive references)"
            .to_owned(),
    }
}

/// What `jsonschema` said about a schema it refused, with where in the
/// schema and a hint for patterns.
fn describe_schema_error(error: &jsonschema::ValidationError<'_>) -> String {
    let mut message = error.to_string();
    if message.ends_with("is not a \"regex\"") {
        message.push_str(
            " (patterns use the Rust `regex` syntax, which runs in linear time: no look-around or \
             backreferences, and a compiled size limit of 2 MiB)",
        );
    }
    let at = error.instance_path().to_string();
    if at.is_empty() {
        format!("invalid schema: {message}")
    } else {
        format!("invalid schema at {at}: {message}")
    }
}

/// The number of nodes (values of any kind) in a document and its depth
/// (0 for a scalar). Iterative.
fn measure(document: &Value) -> (u64, u64) {
    let (mut count, mut deepest) = (0u64, 0u64);
    let mut stack = vec![(document, 0u64)];
    while let Some((value, depth)) = stack.pop() {
        count += 1;
        deepest = deepest.max(depth);
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(members) => stack.extend(members.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    (count, deepest)
}

/// Runs `work` on a new thread with a [`HELPER_STACK_BYTES`] stack and
/// waits for it.
fn on_helper_thread<R: Send>(work: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("wasmhost-schema".to_owned())
            .stack_size(HELPER_STACK_BYTES)
            .spawn_scoped(scope, work)
            .context("cannot start a thread for JSON Schema work; the host is short of threads or memory")?;
        thread.join().map_err(|_| {
            anyhow!("the JSON Schema validator panicked; this is a bug in wasmhost or the jsonschema crate")
        })
    })
}

/// Bounds derived from a schema's graph of subschemas: nodes are schema
/// objects and booleans, edges go to subschemas and `$ref` targets.
/// "In place" edges (`allOf`, `$ref`, `if`, ...) apply to the same part of
/// the document; "descending" edges (`properties`, `items`, ...) to a part
/// one level down, so a path can take at most [`json::MAX_DEPTH`] of them.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Upper bound on the nesting of validator calls, in subschemas.
    hops: u64,
    /// Upper bound on how many schema nodes check one node of a document
    /// while failures are collected; `None` when unbounded or too large to
    /// be worth listing failures.
    fanout: Option<u64>,
    /// Upper bound on the subschemas that re-check their part of the
    /// document (see [`RECHECKING`]) on one path: in total, or per level of
    /// the document for recursive schemas.
    rechecks: Rechecks,
}

/// See [`Shape::rechecks`].
#[derive(Clone, Copy, Debug)]
enum Rechecks {
    Total(u64),
    PerLevel(u64),
}

/// Keywords whose failures `jsonschema` collects only after checking the
/// same part of the document with `is_valid`, so collection work nested
/// under them is done twice.
const RECHECKING: &[&str] = &[
    "anyOf",
    "oneOf",
    "not",
    "if",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentSchemas",
    "dependencies",
];

/// Keywords whose value is a subschema applied in place.
const IN_PLACE: &[&str] = &["not", "if", "then", "else"];
/// Keywords whose value is an array of subschemas applied in place.
const IN_PLACE_LISTS: &[&str] = &["allOf", "anyOf", "oneOf"];
/// Keywords whose value maps names to subschemas applied in place.
const IN_PLACE_MAPS: &[&str] = &["dependentSchemas", "dependencies"];
/// Keywords whose value is a subschema applied one level down (`items` may
/// also be an array of them).
const DESCENDING: &[&str] = &[
    "items",
    "additionalItems",
    "unevaluatedItems",
    "contains",
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
    "contentSchema",
];
/// Keywords whose value is an array of subschemas applied one level down.
const DESCENDING_LISTS: &[&str] = &["items", "prefixItems"];
/// Keywords whose value maps names to subschemas applied one level down.
const DESCENDING_MAPS: &[&str] = &["properties", "patternProperties"];
/// Keywords that hold subschemas only for `$ref`s to point at.
const DEFINITIONS: &[&str] = &["$defs", "definitions"];

/// The subschemas of a schema object: `(in place, subschema)`.
fn subschemas(schema: &Value) -> Vec<(bool, &Value)> {
    let Value::Object(schema) = schema else {
        return Vec::new();
    };
    let is_schema = |v: &&Value| v.is_object() || v.is_boolean();
    let mut found = Vec::new();
    for (keywords, in_place) in [(IN_PLACE, true), (DESCENDING, false)] {
        for keyword in keywords {
            found.extend(schema.get(*keyword).filter(is_schema).map(|v| (in_place, v)));
        }
    }
    for (keywords, in_place) in [(IN_PLACE_LISTS, true), (DESCENDING_LISTS, false)] {
        for keyword in keywords {
            if let Some(Value::Array(items)) = schema.get(*keyword) {
                found.extend(items.iter().filter(is_schema).map(|v| (in_place, v)));
            }
        }
    }
    for (keywords, in_place) in [(IN_PLACE_MAPS, true), (DESCENDING_MAPS, false)] {
        for keyword in keywords {
            if let Some(Value::Object(members)) = schema.get(*keyword) {
                found.extend(members.values().filter(is_schema).map(|v| (in_place, v)));
            }
        }
    }
    found
}

/// Where `$ref`s can point: the root, its `$id`, and its anchors.
struct Resource<'a> {
    root: &'a Value,
    id: Option<&'a str>,
    anchors: HashMap<&'a str, &'a Value>,
}

impl<'a> Resource<'a> {
    /// Walks every subschema (definitions included) once: collects anchors
    /// and refuses what the host does not resolve.
    fn new(root: &'a Value) -> Result<Self, String> {
        let draft4 = root.get("$schema").and_then(Value::as_str).is_some_and(|s| s.contains("draft-04"));
        let id_keyword = if draft4 { "id" } else { "$id" };
        let id = root.get(id_keyword).and_then(Value::as_str).map(|id| id.trim_end_matches('#'));
        let mut anchors = HashMap::new();
        let mut stack = vec![root];
        while let Some(schema) = stack.pop() {
            let Value::Object(members) = schema else {
                continue;
            };
            for keyword in ["$dynamicRef", "$recursiveRef"] {
                if members.contains_key(keyword) {
                    return Err(format!("the schema uses `{keyword}`, which wasmhost does not support; use `$ref`"));
                }
            }
            if let Some(anchor) = members.get("$anchor").and_then(Value::as_str) {
                anchors.insert(anchor, schema);
            }
            if let Some(id) = members.get(id_keyword).and_then(Value::as_str) {
                if let Some(anchor) = id.strip_prefix('#') {
                    anchors.insert(anchor, schema);
                } else if !std::ptr::eq(schema, root) {
                    return Err(format!(
                        "a subschema has its own `$id` ({id:?}); wasmhost resolves `$ref`s within one \
                         schema resource only, so remove the inner `$id` and refer to the subschema \
                         with `#/...`"
                    ));
                }
            }
            stack.extend(subschemas(schema).into_iter().map(|(_, v)| v));
            for keyword in DEFINITIONS {
                if let Some(Value::Object(definitions)) = members.get(*keyword) {
                    stack.extend(definitions.values());
                }
            }
        }
        Ok(Self { root, id, anchors })
    }

    /// The subschema `reference` points at; `None` when it points nowhere
    /// (`jsonschema` reports that).
    fn resolve(&self, reference: &str) -> Result<Option<&'a Value>, String> {
        let local = match self.id {
            Some(id) if !id.is_empty() => reference.strip_prefix(id).unwrap_or(reference),
            _ => reference,
        };
        if local.is_empty() {
            return Ok(Some(self.root));
        }
        let Some(fragment) = local.strip_prefix('#') else {
            return Err(format!(
                "`$ref` {reference:?} points outside the schema; wasmhost never fetches remote or \
                 file schemas: put the referenced schema under `$defs` and use `#/$defs/...`"
            ));
        };
        let fragment =
            percent_decode(fragment).ok_or_else(|| format!("`$ref` {reference:?} has an invalid percent-encoding"))?;
        if fragment.is_empty() {
            Ok(Some(self.root))
        } else if fragment.starts_with('/') {
            Ok(self.root.pointer(&fragment))
        } else {
            Ok(self.anchors.get(fragment.as_str()).copied())
        }
    }
}

/// `s` with `%XX` escapes decoded; `None` when they are not valid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The schema graph reachable from the root.
struct Graph {
    in_place: Vec<Vec<usize>>,
    descending: Vec<Vec<usize>>,
    /// Whether each node has a [`RECHECKING`] keyword.
    rechecking: Vec<bool>,
    /// Whether some subschema has `unevaluatedProperties` or
    /// `unevaluatedItems`, which re-walk in-place subschemas.
    unevaluated: bool,
}

impl Graph {
    fn new(resource: &Resource<'_>) -> Result<Self, String> {
        let mut nodes = vec![resource.root];
        let mut ids = HashMap::from([(std::ptr::from_ref(resource.root), 0usize)]);
        let mut graph = Self {
            in_place: vec![Vec::new()],
            descending: vec![Vec::new()],
            rechecking: Vec::new(),
            unevaluated: false,
        };
        let mut next = 0;
        while let Some(&schema) = nodes.get(next) {
            let mut edges = subschemas(schema);
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                edges.extend(resource.resolve(reference)?.map(|target| (true, target)));
            }
            graph.rechecking.push(RECHECKING.iter().any(|k| schema.get(*k).is_some()));
            graph.unevaluated |=
                schema.get("unevaluatedProperties").is_some() || schema.get("unevaluatedItems").is_some();
            for (in_place, target) in edges {
                let id = *ids.entry(std::ptr::from_ref(target)).or_insert_with(|| {
                    nodes.push(target);
                    graph.in_place.push(Vec::new());
                    graph.descending.push(Vec::new());
                    nodes.len() - 1
                });
                if in_place {
                    graph.in_place[next].push(id);
                } else {
                    graph.descending[next].push(id);
                }
            }
            next += 1;
        }
        Ok(graph)
    }

    fn len(&self) -> usize {
        self.in_place.len()
    }

    /// A topological order of the nodes over the given edges, or `None`
    /// when they have a cycle.
    fn topological_order(&self, with_descending: bool) -> Option<Vec<usize>> {
        let edges = |u: usize| {
            let descending: &[usize] = if with_descending { &self.descending[u] } else { &[] };
            self.in_place[u].iter().chain(descending)
        };
        let mut incoming = vec![0usize; self.len()];
        for u in 0..self.len() {
            for &v in edges(u) {
                incoming[v] += 1;
            }
        }
        let mut order: Vec<usize> = (0..self.len()).filter(|&u| incoming[u] == 0).collect();
        let mut i = 0;
        while let Some(&u) = order.get(i) {
            for &v in edges(u) {
                incoming[v] -= 1;
                if incoming[v] == 0 {
                    order.push(v);
                }
            }
            i += 1;
        }
        (order.len() == self.len()).then_some(order)
    }

    /// The largest total `weight` of the nodes on one path, following the
    /// edges that `order` is a topological order of.
    fn heaviest_path(&self, order: &[usize], with_descending: bool, weight: impl Fn(usize) -> u64) -> u64 {
        let mut heaviest: Vec<u64> = (0..self.len()).map(&weight).collect();
        for &u in order {
            let descending: &[usize] = if with_descending { &self.descending[u] } else { &[] };
            for &v in self.in_place[u].iter().chain(descending) {
                heaviest[v] = heaviest[v].max(heaviest[u] + weight(v));
            }
        }
        heaviest.into_iter().max().unwrap_or(0)
    }

    /// The most paths from the root that reach the same node of a document
    /// (at any depth up to the limit), or `None` when that exceeds
    /// [`MAX_FANOUT`]. `in_place_order` is a topological order of the
    /// in-place edges.
    fn fanout(&self, in_place_order: &[usize]) -> Option<u64> {
        let mut seed = vec![0u64; self.len()];
        seed[0] = 1;
        let mut fanout = 0u64;
        for _ in 0..=json::MAX_DEPTH {
            let mut paths = seed.clone();
            for &u in in_place_order {
                let count = paths[u];
                if count > 0 {
                    for &v in &self.in_place[u] {
                        paths[v] = paths[v].saturating_add(count);
                    }
                }
            }
            let level = paths.iter().fold(0u64, |sum, &n| sum.saturating_add(n));
            fanout = fanout.max(level);
            if fanout > MAX_FANOUT {
                return None;
            }
            let mut below = vec![0u64; self.len()];
            for (u, &count) in paths.iter().enumerate() {
                if count > 0 {
                    for &v in &self.descending[u] {
                        below[v] = below[v].saturating_add(count);
                    }
                }
            }
            // Nothing deeper, or every deeper level is the same as this one.
            if below.iter().all(|&n| n == 0) || below == seed {
                break;
            }
            seed = below;
        }
        Some(fanout)
    }
}

impl Shape {
    /// Works out the shape of `schema`, refusing schemas whose validation
    /// would nest too deeply and `$ref`s the host does not resolve.
    fn of(schema: &Value) -> Result<Self, String> {
        let resource = Resource::new(schema)?;
        let graph = Graph::new(&resource)?;
        let in_place_order = graph.topological_order(false);
        let rechecking = |u: usize| u64::from(graph.rechecking[u]);
        let (hops, rechecks) = match graph.topological_order(true) {
            // No recursion: the longest path bounds the nesting.
            Some(order) => (
                graph.heaviest_path(&order, true, |_| 1),
                Rechecks::Total(graph.heaviest_path(&order, true, rechecking)),
            ),
            None => {
                // Recursion: a path takes one descending edge per level of
                // the document, with in-place paths between them (a cycle of
                // in-place edges is cut by the validator, so no in-place
                // path visits more than all nodes).
                let (in_place, rechecks) = match &in_place_order {
                    Some(order) => {
                        (graph.heaviest_path(order, false, |_| 1), graph.heaviest_path(order, false, rechecking))
                    }
                    None => (graph.len() as u64, (0..graph.len()).map(rechecking).sum()),
                };
                ((json::MAX_DEPTH as u64 + 1).saturating_mul(in_place), Rechecks::PerLevel(rechecks))
            }
        };
        if hops > MAX_HOPS {
            return Err(format!(
                "the schema nests too deeply for the host: validating could nest {hops} subschemas \
                 and `$ref`s, and the host allows {MAX_HOPS}; shorten chains of `$ref`s and \
                 in-place keywords (`allOf`, `anyOf`, `$ref`, ...), especially in recursive schemas"
            ));
        }
        let fanout = match in_place_order {
            Some(order) if graph.len() <= MAX_FANOUT_NODES => graph
                .fanout(&order)
                .and_then(|f| if graph.unevaluated { f.checked_mul(graph.len() as u64) } else { Some(f) })
                .filter(|&f| f <= MAX_FANOUT),
            _ => None,
        };
        Ok(Self { hops, fanout, rechecks })
    }

    /// Upper bound on the work of collecting all failures of `document`:
    /// each of its nodes is checked by at most `fanout` schema nodes, and
    /// each check may be repeated once per re-checking subschema above it.
    /// `None` when unbounded.
    fn listing_cost(&self, document: &Value) -> Option<u64> {
        let (nodes, depth) = measure(document);
        let rechecks = match self.rechecks {
            Rechecks::Total(n) => n,
            Rechecks::PerLevel(n) => n.saturating_mul(depth + 1),
        };
        Some(self.fanout?.saturating_mul(nodes).saturating_mul(rechecks.saturating_add(1)))
    }
}

/// Compiled schemas of one app, keyed by the SHA-256 of their text and
/// shared by all its instances and requests. Holds at most a fixed number
/// of schemas (failed compiles included), dropping the least recently used.
pub struct SchemaCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<[u8; 32], Entry>,
    clock: u64,
}

struct Entry {
    result: Result<Arc<CompiledSchema>, Arc<str>>,
    used: u64,
}

impl Default for SchemaCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_ENTRIES)
    }
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache").field("capacity", &self.capacity).field("len", &self.len()).finish()
    }
}

impl SchemaCache {
    /// An empty cache that keeps at most `capacity` schemas (at least one).
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), entries: Mutex::new(Entries::default()) }
    }

    /// Schemas (and failed compiles) held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The compiled form of `schema` (JSON text), compiling it unless it is
    /// cached. The error says what is wrong with the schema.
    pub fn compile(&self, schema: &[u8]) -> Result<Arc<CompiledSchema>, String> {
        let key: [u8; 32] = Sha256::digest(schema).into();
        {
            let mut entries = self.lock();
            entries.clock += 1;
            let now = entries.clock;
            if let Some(entry) = entries.map.get_mut(&key) {
                entry.used = now;
                return entry.result.clone().map_err(|e| e.to_string());
            }
        }
        // Compile without holding the lock; two callers racing on the same
        // schema both compile it, and the second result replaces the first.
        let result = CompiledSchema::compile(schema).map(Arc::new).map_err(Arc::<str>::from);
        let mut entries = self.lock();
        if entries.map.len() >= self.capacity {
            let oldest = entries.map.iter().min_by_key(|(_, entry)| entry.used).map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                entries.map.remove(&oldest);
            }
        }
        entries.clock += 1;
        let used = entries.clock;
        entries.map.insert(key, Entry { result: result.clone(), used });
        result.map_err(|e| e.to_string())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compile(schema: &Value) -> CompiledSchema {
        CompiledSchema::compile(schema.to_string().as_bytes()).unwrap_or_else(|e| panic!("{schema}: {e}"))
    }

    fn refused(schema: &Value) -> String {
        CompiledSchema::compile(schema.to_string().as_bytes()).expect_err("expected the schema to be refused")
    }

    fn failures(schema: &CompiledSchema, document: &Value) -> Vec<Violation> {
        schema.validate(document.to_string().as_bytes()).expect("no host failure").expect("valid JSON")
    }

    fn paths(violations: &[Violation]) -> Vec<(&str, &str)> {
        violations.iter().map(|v| (v.instance_path.as_str(), v.schema_path.as_str())).collect()
    }

    /// Runs `work` on a thread with a 512 KiB stack: what a guest's fiber
    /// has left, with room to spare, when its wasm uses its 512 KiB.
    fn on_small_stack<R: Send>(work: impl FnOnce() -> R + Send) -> R {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(512 << 10)
                .spawn_scoped(scope, work)
                .expect("spawns")
                .join()
                .expect("does not overflow or panic")
        })
    }

    fn nested_arrays(depth: usize, leaf: Value) -> Value {
        (0..depth).fold(leaf, |inner, _| json!([inner]))
    }

    /// `{"$ref": a0}` with `$defs` a0..a{n}, each `wrap(ref to the next)`,
    /// and a{n} = `leaf`.
    fn chain(n: usize, wrap: impl Fn(Value) -> Value, leaf: Value) -> Value {
        let mut defs = serde_json::Map::new();
        for i in 0..n {
            defs.insert(format!("a{i}"), wrap(json!({"$ref": format!("#/$defs/a{}", i + 1)})));
        }
        defs.insert(format!("a{n}"), leaf);
        json!({"$ref": "#/$defs/a0", "$defs": defs})
    }

    #[test]
    fn lists_failures_with_pointers() {
        let schema = compile(&json!({
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": {
                "type": "object",
                "required": ["qty"],
                "properties": {"qty": {"type": "integer", "minimum": 1}}
            }}}
        }));
        assert!(failures(&schema, &json!({"items": [{"qty": 1}]})).is_empty());
        let found = failures(&schema, &json!({"items": [{"qty": 0}, {}]}));
        assert_eq!(
            paths(&found),
            [
                ("/items/0/qty", "/properties/items/items/properties/qty/minimum"),
                ("/items/1", "/properties/items/items/required")
            ]
        );
        assert!(found[0].message.contains("minimum of 1"), "{found:?}");
        assert!(found[1].message.contains("\"qty\" is a required property"), "{found:?}");
        assert_eq!(paths(&failures(&schema, &json!([]))), [("", "/type")]);
    }

    #[test]
    fn validate_reports_documents_that_are_not_json() {
        let schema = compile(&json!({}));
        let e = schema.validate(b"{\"a\":").expect("no host failure").expect_err("not JSON");
        assert_eq!(e.kind, json::ErrorKind::Syntax);
        let e = schema.validate(b"1e400").expect("no host failure").expect_err("out of range");
        assert!(e.message.contains("out of range"), "{e:?}");
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let e = schema.validate(deep.as_bytes()).expect("no host failure").expect_err("too deep");
        assert_eq!(e.kind, json::ErrorKind::TooDeep);
    }

    #[test]
    fn lists_at_most_100_failures_and_bounds_their_size() {
        let schema = compile(&json!({"items": {"type": "string"}}));
        let found = failures(&schema, &Value::Array(vec![json!(0); 1000]));
        assert_eq!(found.len(), MAX_VIOLATIONS);
        assert_eq!(found[99].instance_path, "/99");
        // A failure that would quote a 100 KB string does not.
        let schema = compile(&json!({"type": "integer"}));
        let found = failures(&schema, &json!("x".repeat(100_000)));
        assert_eq!(found.len(), 1);
        assert!(found[0].message.len() <= MAX_MESSAGE_BYTES + 3, "{}", found[0].message.len());
        // A large document gets its first failure only.
        let schema = compile(&json!({"items": {"type": "string"}}));
        let found = failures(&schema, &Value::Array(vec![json!(0); 300_000]));
        assert_eq!(paths(&found), [("/0", "/items/type")]);
    }

    #[test]
    fn draft_2020_12_is_the_default_and_schema_picks_another() {
        let schema = compile(&json!({"prefixItems": [{"type": "integer"}]}));
        assert_eq!(paths(&failures(&schema, &json!(["x"]))), [("/0", "/prefixItems/0/type")]);
        let schema = compile(
            &json!({"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 3, "exclusiveMaximum": true}),
        );
        assert!(failures(&schema, &json!(2)).is_empty());
        assert_eq!(failures(&schema, &json!(3)).len(), 1);
    }

    #[test]
    fn recursive_refs_compile_and_validate_with_bounded_work() {
        let tree = compile(&json!({
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}}
        }));
        let mut good = json!({"name": "leaf"});
        let mut bad = json!({"name": 1});
        for _ in 0..63 {
            good = json!({"name": "n", "children": [good]});
            bad = json!({"name": "n", "children": [bad]});
        }
        assert!(failures(&tree, &good).is_empty());
        let found = failures(&tree, &bad);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].instance_path, format!("{}/name", "/children/0".repeat(63)));

        let everything = compile(&json!({"$ref": "#"}));
        assert!(failures(&everything, &json!({"any": ["thing"]})).is_empty());

        let cycle = compile(&json!({
            "$ref": "#/$defs/a",
            "$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}], "type": "integer"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}}
        }));
        assert!(cycle.shape.fanout.is_none());
        assert_eq!(failures(&cycle, &json!("x")).len(), 1);
    }

    #[test]
    fn exponential_alternatives_are_not_itemized() {
        // Listing the failures of this schema for a document `depth` deep
        // visits 2^depth paths; jsonschema would never return.
        let schema =
            compile(&json!({"type": "array", "minItems": 1, "items": {"anyOf": [{"$ref": "#"}, {"$ref": "#"}]}}));
        assert!(schema.shape.fanout.is_none());
        let found = failures(&schema, &nested_arrays(127, json!([])));
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("not listed"), "{found:?}");
        // The same with the alternatives behind distinct definitions.
        let schema = compile(&json!({
            "$ref": "#/$defs/node",
            "$defs": {
                "node": {"anyOf": [{"$ref": "#/$defs/cat"}, {"$ref": "#/$defs/dog"}]},
                "cat": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/node"}}}, "required": ["meow"]},
                "dog": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/node"}}}, "required": ["woof"]}
            }
        }));
        let mut doc = json!({});
        for _ in 0..60 {
            doc = json!({"kids": [doc], "meow": true});
        }
        assert_eq!(failures(&schema, &doc).len(), 1);
        // Where every alternative is checked, jsonschema's memoized
        // `is_valid` keeps validity itself cheap.
        for combinator in ["allOf", "oneOf"] {
            let schema = compile(&json!({"type": "array", "items": {combinator: [{"$ref": "#"}, {"$ref": "#"}]}}));
            assert!(schema.shape.fanout.is_none());
            let valid = combinator == "allOf";
            assert_eq!(failures(&schema, &nested_arrays(127, json!([]))).is_empty(), valid, "{combinator}");
        }
    }

    #[test]
    fn nested_rechecks_are_not_itemized() {
        // Each `anyOf` checks everything beneath it with `is_valid` before
        // collecting; 60 of them per level of a 127-deep document made
        // listing the failures take seconds.
        let schema = compile(&chain(
            60,
            |r| json!({"anyOf": [r, {"type": "null"}]}),
            json!({"type": "array", "items": {"$ref": "#/$defs/a0"}}),
        ));
        let found = failures(&schema, &nested_arrays(127, json!("x")));
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("not listed"), "{found:?}");
        assert!(failures(&schema, &nested_arrays(127, json!(null))).is_empty());
        // A shallow document gets its failures listed.
        let found = failures(&schema, &json!(["x"]));
        assert!(!found.is_empty() && !found[0].message.contains("not listed"), "{found:?}");
    }

    #[test]
    fn optional_recursion_is_itemized() {
        // What pydantic generates for `class Node: name: str; child: Node | None`.
        let schema = compile(&json!({
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "child": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}}
            }}
        }));
        // Per level: the `child` subschema, its two alternatives, `Node`,
        // and `name`.
        assert_eq!(schema.shape.fanout, Some(5));
        let mut doc = json!({"name": 1});
        for _ in 0..60 {
            doc = json!({"name": "n", "child": doc});
        }
        let found = failures(&schema, &doc);
        assert_eq!(found.len(), 1);
        // jsonschema reports a failing `anyOf` where it is, not the failures
        // of its alternatives.
        assert_eq!(paths(&found), [("/child", "/$defs/Node/properties/child/anyOf")]);
        assert!(found[0].message.contains("anyOf"), "{found:?}");
    }

    #[test]
    fn long_ref_chains_validate_on_a_helper_thread_or_are_refused() {
        // The longest chain allowed.
        let schema = chain(MAX_HOPS as usize - 2, |r| r, json!({"type": "integer"}));
        let compiled = compile(&schema);
        assert_eq!(compiled.shape.hops, MAX_HOPS);
        let (good, bad) = on_small_stack(|| (failures(&compiled, &json!(1)), failures(&compiled, &json!("x"))));
        assert!(good.is_empty());
        assert_eq!(bad.len(), 1);
        // Dropping it does not recurse along the chain.
        on_small_stack(move || drop(compiled));
        let e = refused(&chain(MAX_HOPS as usize, |r| r, json!({"type": "integer"})));
        assert!(e.contains("nests too deeply"), "{e}");
    }

    #[test]
    fn inline_validation_fits_in_512_kib() {
        // The worst schemas validated on the caller's stack: chains of each
        // in-place keyword up to INLINE_HOPS, the deepest schema, and a
        // recursive schema with in-place chains between levels.
        let integer = json!({"type": "integer"});
        type Wrap = fn(Value) -> Value;
        let wraps: [(Wrap, usize); 7] = [
            (|r| r, 1),
            (|r| json!({"allOf": [r]}), 2),
            (|r| json!({"anyOf": [r, {"type": "null"}]}), 2),
            (|r| json!({"oneOf": [r, false]}), 2),
            (|r| json!({"not": {"not": r}}), 3),
            (|r| json!({"if": true, "then": r}), 2),
            (|r| json!({"dependentSchemas": {"k": r}}), 2),
        ];
        let mut cases = Vec::new();
        for (wrap, edges) in wraps {
            // Root -> a0 -> ... -> a{n} -> `properties/k`: n * edges + 2.
            let n = (INLINE_HOPS as usize - 3) / edges;
            let leaf = json!({"properties": {"k": integer}, "type": ["integer", "object"]});
            cases.push((chain(n, wrap, leaf), json!({"k": 1}), json!({"k": "x"})));
        }
        let deepest = (0..127).fold(integer.clone(), |inner, _| json!({"items": inner}));
        cases.push((deepest, nested_arrays(127, json!(1)), nested_arrays(127, json!("x"))));
        let recursive = chain(2, |r| json!({"allOf": [r]}), json!({"type": "array", "items": {"$ref": "#/$defs/a0"}}));
        cases.push((recursive, nested_arrays(127, json!([])), nested_arrays(127, json!("x"))));
        for (case, (schema, good, bad)) in cases.into_iter().enumerate() {
            let compiled = compile(&schema);
            assert!(
                compiled.shape.hops <= INLINE_HOPS && compiled.shape.hops > 100,
                "case {case}: {:?}",
                compiled.shape
            );
            let (good, bad) = on_small_stack(|| (failures(&compiled, &good), failures(&compiled, &bad)));
            assert!(good.is_empty(), "case {case}: {good:?}");
            assert!(!bad.is_empty(), "case {case}");
        }
    }

    #[test]
    fn catastrophic_patterns_run_in_linear_time() {
        let schema = compile(&json!({"pattern": "^(a+)+$", "patternProperties": {"^(a|aa)+$": {"type": "integer"}}}));
        let evil = "a".repeat(100_000) + "!";
        assert_eq!(paths(&failures(&schema, &json!(evil))), [("", "/pattern")]);
        assert!(failures(&schema, &json!("a".repeat(100_000))).is_empty());
        let mut object = serde_json::Map::new();
        object.insert(evil, json!("not checked"));
        assert!(failures(&schema, &Value::Object(object)).is_empty());
        let e = refused(&json!({"pattern": "(?=a)b"}));
        assert!(e.contains("/pattern") && e.contains("look-around"), "{e}");
    }

    #[test]
    fn references_outside_the_schema_are_refused_without_fetching() {
        for reference in
            ["https://example.com/s.json", "https://example.com/s.json#/a", "file:///etc/passwd", "other.json", "/abs"]
        {
            let e = refused(&json!({"$ref": reference}));
            assert!(e.contains("never fetches") && e.contains(reference), "{e}");
            let e = refused(&json!({"properties": {"a": {"$ref": reference}}}));
            assert!(e.contains("never fetches"), "{e}");
        }
        // Unreachable from the root: jsonschema's offline retriever refuses it.
        let e = refused(&json!({"$defs": {"x": {"$ref": "https://example.com/s.json"}}}));
        assert!(e.contains("https://example.com/s.json"), "{e}");
    }

    #[test]
    fn local_references_resolve() {
        for schema in [
            json!({"$id": "https://x.test/s.json", "$ref": "https://x.test/s.json#/$defs/a", "$defs": {"a": {"type": "integer"}}}),
            json!({"$ref": "#num", "$defs": {"a": {"$anchor": "num", "type": "integer"}}}),
            json!({"$ref": "#/$defs/a%20b~1c", "$defs": {"a b/c": {"type": "integer"}}}),
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "#/definitions/a", "definitions": {"a": {"type": "integer"}}}),
            json!({"$schema": "http://json-schema.org/draft-04/schema#", "id": "http://x.test/s#", "allOf": [{"$ref": "http://x.test/s#/definitions/a"}], "definitions": {"a": {"type": "integer"}}}),
        ] {
            let compiled = compile(&schema);
            assert!(failures(&compiled, &json!(1)).is_empty(), "{schema}");
            assert_eq!(failures(&compiled, &json!("x")).len(), 1, "{schema}");
        }
    }

    #[test]
    fn unsupported_references_are_refused() {
        let e = refused(&json!({"$dynamicRef": "#meta"}));
        assert!(e.contains("`$dynamicRef`"), "{e}");
        let e = refused(
            &json!({"$schema": "https://json-schema.org/draft/2019-09/schema", "items": {"$recursiveRef": "#"}}),
        );
        assert!(e.contains("`$recursiveRef`"), "{e}");
        let e = refused(&json!({"$defs": {"a": {"$id": "https://x.test/a.json"}}}));
        assert!(e.contains("own `$id`"), "{e}");
    }

    #[test]
    fn hostile_schema_text_is_refused() {
        let e = refused(&json!({"type": "strin"}));
        assert!(e.starts_with("invalid schema at /type:"), "{e}");
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let e = CompiledSchema::compile(deep.as_bytes()).expect_err("too deep");
        assert!(e.contains("nested more than 128"), "{e}");
        let deep = "{\"items\":".repeat(100_000) + "{}" + &"}".repeat(100_000);
        assert!(CompiledSchema::compile(deep.as_bytes()).is_err());
        let e = CompiledSchema::compile(&vec![b' '; json::MAX_DOCUMENT_BYTES + 1]).expect_err("too large");
        assert!(e.contains("64 MiB"), "{e}");
        let e = CompiledSchema::compile(b"{\"type\": \"\xff\"}").expect_err("not UTF-8");
        assert!(e.contains("UTF-8") && e.contains("column 11"), "{e}");
        let e = CompiledSchema::compile(b"{\"minimum\": 1e400}").expect_err("out of range");
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn the_cache_shares_compiled_schemas_and_keeps_the_most_recently_used() {
        let cache = SchemaCache::new(2);
        let a = cache.compile(b"{\"type\": \"integer\"}").expect("compiles");
        assert!(Arc::ptr_eq(&a, &cache.compile(b"{\"type\": \"integer\"}").expect("cached")));
        let b = cache.compile(b"{\"type\": \"string\"}").expect("compiles");
        cache.compile(b"{\"type\": \"integer\"}").expect("cached");
        cache.compile(b"{\"type\": \"null\"}").expect("compiles");
        assert_eq!(cache.len(), 2);
        assert!(Arc::ptr_eq(&a, &cache.compile(b"{\"type\": \"integer\"}").expect("cached")));
        assert!(!Arc::ptr_eq(&b, &cache.compile(b"{\"type\": \"string\"}").expect("recompiled")));
        let e = cache.compile(b"{\"type\": 1}").expect_err("invalid");
        assert_eq!(cache.compile(b"{\"type\": 1}").expect_err("cached failure"), e);
    }
}
