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
//!
//! Compiled schemas live in the host's heap, outside any guest's memory
//! limit, so what they may hold is bounded twice:
//!
//! * per schema, before compiling: at most [`MAX_SCHEMA_VALUES`] JSON
//!   values (each costs `jsonschema` up to ~300 bytes) and
//!   [`MAX_SCHEMA_PATTERNS`] distinct patterns, which share
//!   [`PATTERN_BUDGET_BYTES`] of compiled automata, each getting an equal
//!   share (at most 2 MiB) as its size limit;
//! * per app, after compiling: the compile measures the heap bytes the
//!   validator holds (with the counting allocator of [`crate::heap`]), and
//!   a [`SchemaCache`] keeps the app's schemas — cached, held by guests as
//!   `schema` handles, or validating its routes — under
//!   [`APP_SCHEMA_BYTES`], evicting unused cached schemas first and
//!   refusing a compile that would go over.
//!
//! Every refusal is an error value that names the limit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use anyhow::{anyhow, Context as _};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::heap;
use crate::json::{self, JsonError};

pub use crate::bindings::wasmhost::platform::validation::ValidationError as Violation;

/// Most failures [`CompiledSchema::validate`] lists.
pub const MAX_VIOLATIONS: usize = 100;

/// Compiled schemas (and failed compiles) a [`SchemaCache`] keeps by
/// default.
pub const DEFAULT_CACHE_ENTRIES: usize = 256;

/// Most JSON values (objects, arrays and scalars: subschemas, keywords,
/// `enum` items...) one schema may have. Each costs `jsonschema` up to ~300
/// bytes, so this bounds one compile at ~30 MB; the Kubernetes `Deployment`
/// schema bundled with all 700 API definitions has 22 000.
pub const MAX_SCHEMA_VALUES: u64 = 100_000;

/// Most distinct patterns one schema may have. Each compiled pattern costs
/// ~8 KB besides its automaton, which its size limit does not cover.
pub const MAX_SCHEMA_PATTERNS: u64 = 1_000;

/// Compiled size (NFA bytes) that all of a schema's distinct patterns
/// share: each gets an equal part of it, at most 2 MiB, as its size limit
/// and its lazy DFA's cache capacity.
pub const PATTERN_BUDGET_BYTES: usize = 8 << 20;

/// Heap bytes the compiled schemas of one app may hold at once: cached,
/// held by guests as `schema` handles, and validating its routes.
pub const APP_SCHEMA_BYTES: usize = 64 << 20;

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

/// Largest compiled size of any one pattern, in bytes.
const REGEX_SIZE_LIMIT: usize = 2 << 20;

/// What compiling one schema may cost, checked before `jsonschema` runs.
#[derive(Clone, Copy, Debug)]
struct CompileBudget {
    /// Most JSON values in the schema.
    values: u64,
    /// Most distinct patterns.
    patterns: u64,
    /// Compiled size all distinct patterns share.
    pattern_bytes: usize,
}

impl CompileBudget {
    /// The host's budget.
    const DEFAULT: Self =
        Self { values: MAX_SCHEMA_VALUES, patterns: MAX_SCHEMA_PATTERNS, pattern_bytes: PATTERN_BUDGET_BYTES };

    /// The size limit of each of `patterns` distinct patterns.
    fn pattern_share(&self, patterns: u64) -> usize {
        let patterns = usize::try_from(patterns.max(1)).unwrap_or(usize::MAX);
        (self.pattern_bytes / patterns).min(REGEX_SIZE_LIMIT)
    }
}

/// A JSON Schema compiled for validation, with the bounds the host derived
/// from its shape and the heap bytes it holds.
pub struct CompiledSchema {
    validator: jsonschema::Validator,
    shape: Shape,
    heap_bytes: usize,
    /// Its part of its app's [`SchemaCache`] total, while it lives.
    _charge: Option<Charge>,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema")
            .field("shape", &self.shape)
            .field("heap_bytes", &self.heap_bytes)
            .finish_non_exhaustive()
    }
}

impl CompiledSchema {
    /// Compiles `schema` (JSON text) within the host's per-schema budget
    /// ([`MAX_SCHEMA_VALUES`], [`MAX_SCHEMA_PATTERNS`],
    /// [`PATTERN_BUDGET_BYTES`]). The error says what is wrong with it, or
    /// which limit it exceeds. Runs on a helper thread; blocks until it is
    /// done.
    pub fn compile(schema: &[u8]) -> Result<Self, String> {
        Self::compile_within(schema, &CompileBudget::DEFAULT)
    }

    fn compile_within(schema: &[u8], budget: &CompileBudget) -> Result<Self, String> {
        let value = json::parse_value(schema).map_err(|e| format!("the schema is not valid JSON: {}", e.describe()))?;
        let (values, _) = measure(&value);
        if values > budget.values {
            return Err(format!(
                "the schema has {values} JSON values (subschemas, keywords, `enum` items, ...), more than \
                 the host's limit of {} values per schema; split it into smaller schemas",
                budget.values
            ));
        }
        let shape = Shape::of(&value)?;
        if shape.patterns > budget.patterns {
            return Err(format!(
                "the schema has {} distinct patterns (`pattern` and `patternProperties`), more than the \
                 host's limit of {} patterns per schema; use fewer patterns, e.g. `enum` or `const` for \
                 fixed values",
                shape.patterns, budget.patterns
            ));
        }
        let share = budget.pattern_share(shape.patterns);
        let (validator, heap_bytes) = on_helper_thread(|| {
            let patterns = jsonschema::PatternOptions::regex().size_limit(share).dfa_size_limit(share);
            let (built, heap_bytes) =
                heap::retained_by(|| jsonschema::options().offline().with_pattern_options(patterns).build(&value));
            built.map(|validator| (validator, heap_bytes)).map_err(|e| describe_schema_error(&e, &shape, budget))
        })
        .map_err(|e| format!("{e:#}"))??;
        Ok(Self { validator, shape, heap_bytes, _charge: None })
    }

    /// The heap bytes the compiled schema holds, measured while compiling
    /// it. (The regex engine's per-thread match caches, each at most its
    /// pattern's share, come on top once it validates.)
    pub fn heap_bytes(&self) -> usize {
        self.heap_bytes
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
    Violation {
        instance_path: error.instance_path().to_string(),
        schema_path: error.schema_path().to_string(),
        message: bounded_message(error),
    }
}

/// `error`'s message, at most [`MAX_MESSAGE_BYTES`] long: without the
/// value it quotes when that makes it too long, then cut.
fn bounded_message(error: &jsonschema::ValidationError<'_>) -> String {
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
    message
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
/// schema; for a pattern, whether it broke the pattern budget or what
/// patterns may be.
fn describe_schema_error(error: &jsonschema::ValidationError<'_>, shape: &Shape, budget: &CompileBudget) -> String {
    let mut message = bounded_message(error);
    if message.ends_with("is not a \"regex\"") {
        let share = budget.pattern_share(shape.patterns);
        let pattern = error.instance().as_str().unwrap_or_default();
        if share < REGEX_SIZE_LIMIT && compiles_alone(pattern) {
            message = format!(
                "pattern {} needs more than the {} it may compile to: the schema's {} distinct patterns \
                 share the host's budget of {} for one schema's patterns; use fewer or simpler patterns",
                serde_json::Value::from(pattern),
                format_bytes(share),
                shape.patterns,
                format_bytes(budget.pattern_bytes)
            );
        } else {
            message.push_str(
                " (patterns use the Rust `regex` syntax, which runs in linear time: no look-around or \
                 backreferences, and a compiled size limit of 2 MiB)",
            );
        }
    }
    let at = error.instance_path().to_string();
    if at.is_empty() {
        format!("invalid schema: {message}")
    } else {
        format!("invalid schema at {at}: {message}")
    }
}

/// Whether `pattern` compiles as a schema's only pattern: refused in a
/// schema with others, it was refused for its share of the budget.
fn compiles_alone(pattern: &str) -> bool {
    let alone = jsonschema::PatternOptions::regex().size_limit(REGEX_SIZE_LIMIT);
    jsonschema::options()
        .offline()
        .with_pattern_options(alone)
        .build(&serde_json::json!({ "pattern": pattern }))
        .is_ok()
}

/// `bytes` for people: `512 bytes`, `4 KiB`, `1.5 MiB`.
fn format_bytes(bytes: usize) -> String {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    match bytes {
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b >= MIB => format!("{:.1} MiB", b as f64 / MIB as f64),
        b if b >= KIB => format!("{} KiB", b / KIB),
        b => format!("{b} bytes"),
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
    /// Distinct regular expressions (`pattern` values and
    /// `patternProperties` names) in the schema.
    patterns: u64,
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

/// Where `$ref`s can point: the root, its `$id`, and its anchors; and the
/// patterns of all its subschemas.
struct Resource<'a> {
    root: &'a Value,
    id: Option<&'a str>,
    anchors: HashMap<&'a str, &'a Value>,
    patterns: HashSet<&'a str>,
}

impl<'a> Resource<'a> {
    /// Walks every subschema (definitions included) once: collects anchors
    /// and patterns, and refuses what the host does not resolve.
    fn new(root: &'a Value) -> Result<Self, String> {
        let draft4 = root.get("$schema").and_then(Value::as_str).is_some_and(|s| s.contains("draft-04"));
        let id_keyword = if draft4 { "id" } else { "$id" };
        let id = root.get(id_keyword).and_then(Value::as_str).map(|id| id.trim_end_matches('#'));
        let mut anchors = HashMap::new();
        let mut patterns = HashSet::new();
        let mut stack = vec![root];
        while let Some(schema) = stack.pop() {
            let Value::Object(members) = schema else {
                continue;
            };
            patterns.extend(members.get("pattern").and_then(Value::as_str));
            if let Some(Value::Object(named)) = members.get("patternProperties") {
                patterns.extend(named.keys().map(String::as_str));
            }
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
        Ok(Self { root, id, anchors, patterns })
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
        Ok(Self { hops, fanout, rechecks, patterns: resource.patterns.len() as u64 })
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
/// shared by all its instances and requests, and the account of the heap
/// bytes they hold.
///
/// Every schema compiled through it counts against its byte limit
/// ([`APP_SCHEMA_BYTES`] by default) for as long as it lives, wherever it
/// is held: in the cache, in a guest's `schema` handle, or in a route
/// table. While it lives, compiling the same text again returns it, even
/// after the cache dropped it. The cache keeps at most a fixed number of
/// entries (failed compiles included), dropping the least recently used,
/// and drops unused schemas, least recently used first, when a new one
/// needs their bytes; a compile that would still take the app over its
/// limit is refused.
pub struct SchemaCache {
    capacity: usize,
    max_bytes: usize,
    /// Heap bytes of the app's live compiled schemas.
    held: Arc<AtomicUsize>,
    entries: Mutex<Entries>,
}

type Key = [u8; 32];

#[derive(Default)]
struct Entries {
    /// Recently compiled schemas and failures, kept for reuse.
    cached: HashMap<Key, Entry>,
    /// Every schema compiled here that is still alive, cached or not.
    live: HashMap<Key, Weak<CompiledSchema>>,
    clock: u64,
}

struct Entry {
    result: Result<Arc<CompiledSchema>, Arc<str>>,
    used: u64,
}

/// A compiled schema's bytes in its app's total, given back when it is
/// dropped.
struct Charge {
    held: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Default for SchemaCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_ENTRIES, APP_SCHEMA_BYTES)
    }
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .field("max_bytes", &self.max_bytes)
            .field("held_bytes", &self.held_bytes())
            .finish()
    }
}

impl SchemaCache {
    /// An empty cache that keeps at most `capacity` entries (at least one)
    /// and lets the schemas compiled through it hold at most `max_bytes`.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self { capacity: capacity.max(1), max_bytes, held: Arc::default(), entries: Mutex::new(Entries::default()) }
    }

    /// Schemas (and failed compiles) cached.
    pub fn len(&self) -> usize {
        self.lock().cached.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held by the live schemas compiled through this cache.
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The compiled form of `schema` (JSON text), compiling it unless it is
    /// cached or still alive. The error says what is wrong with the schema,
    /// or which limit compiling it would exceed.
    pub fn compile(&self, schema: &[u8]) -> Result<Arc<CompiledSchema>, String> {
        let key: Key = Sha256::digest(schema).into();
        if let Some(found) = self.lock().find(key, self.capacity) {
            return found.map_err(|e| e.to_string());
        }
        // Compile without holding the lock; two callers racing on the same
        // schema both compile it, and the second result replaces the first.
        let compiled = CompiledSchema::compile(schema);
        let mut entries = self.lock();
        let result = match compiled {
            Ok(compiled) => Ok(self.admit(&mut entries, key, compiled)?),
            Err(e) => Err(Arc::from(e)),
        };
        entries.insert(key, result.clone(), self.capacity);
        result.map_err(|e| e.to_string())
    }

    /// Charges `compiled` to the app, after dropping unused cached schemas
    /// if it needs their room; refuses it (not cached: it depends on what
    /// else is alive) when the app would still go over its limit.
    fn admit(
        &self,
        entries: &mut Entries,
        key: Key,
        mut compiled: CompiledSchema,
    ) -> Result<Arc<CompiledSchema>, String> {
        let bytes = compiled.heap_bytes;
        while self.held_bytes().saturating_add(bytes) > self.max_bytes && entries.drop_unused() {}
        let held = self.held_bytes();
        if held.saturating_add(bytes) > self.max_bytes {
            return Err(format!(
                "the compiled schema would take {} of host memory, and the app's schemas in use already \
                 hold {} of the host's limit of {} of compiled schemas per app; drop schemas that are no \
                 longer needed (a `Schema` object is dropped when nothing refers to it) or use smaller ones",
                format_bytes(bytes),
                format_bytes(held),
                format_bytes(self.max_bytes)
            ));
        }
        self.held.fetch_add(bytes, Ordering::Relaxed);
        compiled._charge = Some(Charge { held: self.held.clone(), bytes });
        let compiled = Arc::new(compiled);
        entries.live.retain(|_, schema| schema.strong_count() > 0);
        entries.live.insert(key, Arc::downgrade(&compiled));
        Ok(compiled)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entries {
    /// The cached result for `key`, or the live schema (cached again),
    /// or `None`.
    fn find(&mut self, key: Key, capacity: usize) -> Option<Result<Arc<CompiledSchema>, Arc<str>>> {
        self.clock += 1;
        let now = self.clock;
        if let Some(entry) = self.cached.get_mut(&key) {
            entry.used = now;
            return Some(entry.result.clone());
        }
        let alive = self.live.get(&key)?.upgrade()?;
        self.insert(key, Ok(alive.clone()), capacity);
        Some(Ok(alive))
    }

    /// Caches `result`, dropping the least recently used entry when full.
    fn insert(&mut self, key: Key, result: Result<Arc<CompiledSchema>, Arc<str>>, capacity: usize) {
        if self.cached.len() >= capacity && !self.cached.contains_key(&key) {
            let oldest = self.cached.iter().min_by_key(|(_, entry)| entry.used).map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.cached.remove(&oldest);
            }
        }
        self.clock += 1;
        self.cached.insert(key, Entry { result, used: self.clock });
    }

    /// Drops the least recently used cached schema that nothing else holds,
    /// which gives its bytes back; `false` when there is none.
    fn drop_unused(&mut self) -> bool {
        let unused = self
            .cached
            .iter()
            .filter(|(_, entry)| entry.result.as_ref().is_ok_and(|schema| Arc::strong_count(schema) == 1))
            .min_by_key(|(_, entry)| entry.used)
            .map(|(key, _)| *key);
        unused.is_some_and(|key| self.cached.remove(&key).is_some())
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
        let cache = SchemaCache::new(2, APP_SCHEMA_BYTES);
        let a = cache.compile(b"{\"type\": \"integer\"}").expect("compiles");
        assert!(Arc::ptr_eq(&a, &cache.compile(b"{\"type\": \"integer\"}").expect("cached")));
        let b = Arc::downgrade(&cache.compile(b"{\"type\": \"string\"}").expect("compiles"));
        cache.compile(b"{\"type\": \"integer\"}").expect("cached");
        cache.compile(b"{\"type\": \"null\"}").expect("compiles");
        assert_eq!(cache.len(), 2);
        assert!(Arc::ptr_eq(&a, &cache.compile(b"{\"type\": \"integer\"}").expect("cached")));
        assert!(b.upgrade().is_none(), "dropped from the cache and used by nothing else");
        cache.compile(b"{\"type\": \"string\"}").expect("recompiled");
        let e = cache.compile(b"{\"type\": 1}").expect_err("invalid");
        assert_eq!(cache.compile(b"{\"type\": 1}").expect_err("cached failure"), e);
    }

    /// A schema of `n` properties, each with a `minimum`; `seed` makes its
    /// text (and so its cache key) distinct. ~150 KB compiled for 200.
    fn properties_schema(seed: usize, n: usize) -> Vec<u8> {
        let properties: serde_json::Map<String, Value> =
            (0..n).map(|i| (format!("s{seed}p{i}"), json!({"minimum": i}))).collect();
        json!({ "properties": properties }).to_string().into_bytes()
    }

    /// `n` distinct patterns `^<i>` + `atom`, as the values of properties.
    fn patterns_schema(n: usize, atom: &str) -> Value {
        let properties: serde_json::Map<String, Value> =
            (0..n).map(|i| (format!("p{i}"), json!({"pattern": format!("^{i}x{atom}$")}))).collect();
        json!({ "properties": properties })
    }

    #[test]
    fn schemas_with_too_many_values_are_refused() {
        // Object + array + items: exactly the limit.
        let items = MAX_SCHEMA_VALUES as usize - 2;
        let at_limit = json!({ "enum": (0..items).collect::<Vec<_>>() });
        compile(&at_limit);
        let over = json!({ "enum": (0..=items).collect::<Vec<_>>() });
        let e = refused(&over);
        assert!(e.contains("100001 JSON values") && e.contains("limit of 100000 values per schema"), "{e}");
        // Subschemas and keywords count the same way.
        let budget = CompileBudget { values: 301, ..CompileBudget::DEFAULT };
        let schema = |n: usize| properties_schema(0, n);
        // Root, `properties`, and per property its subschema and `minimum`.
        assert!(CompiledSchema::compile_within(&schema(149), &budget).is_ok());
        let e = CompiledSchema::compile_within(&schema(150), &budget).expect_err("over the limit");
        assert!(e.contains("302 JSON values"), "{e}");
    }

    #[test]
    fn schemas_with_too_many_patterns_are_refused() {
        let mut schema = patterns_schema(MAX_SCHEMA_PATTERNS as usize - 1, "[a-z]");
        // `patternProperties` names are patterns; repeated patterns count once.
        schema["patternProperties"] = json!({"^k[0-9]$": {"pattern": "^0x[a-z]$"}});
        let compiled = compile(&schema);
        assert_eq!(compiled.shape.patterns, MAX_SCHEMA_PATTERNS);
        schema["patternProperties"]["^k[0-9]{2}$"] = json!(true);
        let e = refused(&schema);
        assert!(e.contains("1001 distinct patterns") && e.contains("limit of 1000 patterns per schema"), "{e}");
    }

    #[test]
    fn patterns_share_the_pattern_budget() {
        // The review's attack: 4000 patterns of ~230 KB each compiled to
        // ~950 MB. Under the default budget 1000 of them get 8 KiB each.
        let e = refused(&patterns_schema(1000, r"\S{100}"));
        assert!(e.starts_with("invalid schema at /properties/p"), "{e}");
        assert!(e.contains("needs more than the 8 KiB it may compile to"), "{e}");
        assert!(e.contains("1000 distinct patterns share the host's budget of 8 MiB"), "{e}");
        // Alone, the same pattern gets 2 MiB.
        compile(&json!({"pattern": r"^\S{100}$"}));
        // Two patterns of ~90 KB: within a budget of 2 x 2 MiB, not within
        // one of 2 x 16 KiB.
        let two = patterns_schema(2, ".{60}").to_string();
        let roomy = CompileBudget { pattern_bytes: 4 << 20, ..CompileBudget::DEFAULT };
        assert!(CompiledSchema::compile_within(two.as_bytes(), &roomy).is_ok());
        let tight = CompileBudget { pattern_bytes: 32 << 10, ..CompileBudget::DEFAULT };
        let e = CompiledSchema::compile_within(two.as_bytes(), &tight).expect_err("over its share");
        assert!(e.contains("more than the 16 KiB") && e.contains("budget of 32 KiB"), "{e}");
        // A pattern that is not a regex says so, whatever the budget.
        let mut bad = patterns_schema(999, "[a-z]");
        bad["pattern"] = json!("(?=a)b");
        let e = refused(&bad);
        assert!(e.contains("look-around") && !e.contains("budget"), "{e}");
    }

    #[test]
    fn compiling_measures_the_heap_bytes_a_schema_holds() {
        compile(&json!({}));
        let small = compile(&json!({"type": "integer"}));
        assert!(small.heap_bytes() > 0 && small.heap_bytes() < 64 << 10, "{}", small.heap_bytes());
        // ~8 KB per compiled pattern.
        let patterns = compile(&patterns_schema(1000, "[a-z]{30}"));
        assert!((4 << 20..32 << 20).contains(&patterns.heap_bytes()), "{}", patterns.heap_bytes());
        // What jsonschema keeps of a large `enum`: ~100 bytes an item.
        let large = compile(&json!({ "enum": (0..50_000).collect::<Vec<_>>() }));
        assert!((2 << 20..16 << 20).contains(&large.heap_bytes()), "{}", large.heap_bytes());
    }

    #[test]
    fn the_cache_drops_unused_schemas_to_stay_within_its_bytes() {
        // Learn the sizes of four similar schemas.
        let sizes: Vec<usize> = (0..4)
            .map(|seed| CompiledSchema::compile(&properties_schema(seed, 200)).expect("compiles").heap_bytes())
            .collect();
        let room = sizes[..3].iter().sum::<usize>() + sizes.iter().min().unwrap_or(&0) / 2;
        let cache = SchemaCache::new(DEFAULT_CACHE_ENTRIES, room);
        let weak: Vec<_> =
            (0..3).map(|seed| Arc::downgrade(&cache.compile(&properties_schema(seed, 200)).expect("fits"))).collect();
        assert_eq!(cache.held_bytes(), sizes[..3].iter().sum::<usize>(), "measured once, held by the cache");
        cache.compile(&properties_schema(1, 200)).expect("cached");
        // The fourth needs room: the least recently used one (0) goes.
        let fourth = cache.compile(&properties_schema(3, 200)).expect("fits once 0 is dropped");
        assert!(weak[0].upgrade().is_none() && weak[1].upgrade().is_some() && weak[2].upgrade().is_some());
        assert_eq!(cache.held_bytes(), sizes[1] + sizes[2] + sizes[3]);
        assert!(cache.held_bytes() <= room);
        drop(fourth);
        drop(cache);
        assert!(weak.iter().all(|w| w.upgrade().is_none()));
    }

    #[test]
    fn schemas_in_use_count_until_dropped_and_compiles_over_the_limit_are_refused() {
        let sizes: Vec<usize> = (0..3)
            .map(|seed| CompiledSchema::compile(&properties_schema(seed, 200)).expect("compiles").heap_bytes())
            .collect();
        let room = sizes[0] + sizes[1] + sizes[2] / 2;
        let cache = SchemaCache::new(1, room);
        // Held by "guests": the cache cannot give their bytes back.
        let first = cache.compile(&properties_schema(0, 200)).expect("fits");
        let second = cache.compile(&properties_schema(1, 200)).expect("fits");
        assert_eq!(cache.len(), 1, "the first is no longer cached...");
        assert!(Arc::ptr_eq(&first, &cache.compile(&properties_schema(0, 200)).expect("alive")), "...but alive");
        let e = cache.compile(&properties_schema(2, 200)).expect_err("over the app's limit");
        assert!(
            e.contains("limit of") && e.contains("of compiled schemas per app") && e.contains("drop schemas"),
            "{e}"
        );
        assert_eq!(cache.held_bytes(), sizes[0] + sizes[1], "the refused one holds nothing");
        // Not cached: once a schema is dropped, it compiles.
        drop(first);
        cache.compile(&properties_schema(2, 200)).expect("fits now");
        drop(second);
        drop(cache);
    }

    #[test]
    fn bytes_are_given_back_when_the_last_user_drops_a_schema() {
        let cache = SchemaCache::default();
        let schema = cache.compile(&properties_schema(0, 10)).expect("compiles");
        assert_eq!(cache.held_bytes(), schema.heap_bytes());
        let kept = Arc::clone(&schema);
        drop(schema);
        let held = cache.held_bytes();
        drop(cache);
        // The app's cache is gone; its account stays right for what lives on.
        assert_eq!(held, kept.heap_bytes());
        let account = kept._charge.as_ref().map(|c| c.held.clone()).expect("charged");
        drop(kept);
        assert_eq!(account.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn schema_errors_do_not_quote_large_parts_of_the_schema() {
        let e = refused(&json!({"type": ["x".repeat(100_000)]}));
        assert!(e.len() < MAX_MESSAGE_BYTES + 100, "{}", e.len());
    }
}
