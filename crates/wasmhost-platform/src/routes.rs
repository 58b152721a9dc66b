//! An app's route table, for validating request bodies before the app runs,
//! and the `application/problem+json` responses for bodies that fail.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use serde::Serialize;

use crate::json::{self, ErrorKind};
use crate::schema::{CompiledSchema, SchemaCache, Violation};

pub use crate::bindings::exports::wasmhost::platform::manifest::Route;

/// An app's routes, compiled: the first route whose method and path pattern
/// match a request is the one that serves it.
///
/// Paths are compared as they arrive, without the query string and without
/// percent-decoding: a pattern's literal segment `a%20b` matches the request
/// path segment `a%20b`, not `a b`, and `%2F` is not a separator.
#[derive(Debug)]
pub struct DeclaredRoutes {
    routes: Vec<CompiledRoute>,
}

#[derive(Debug)]
struct CompiledRoute {
    /// `None` for `*`.
    method: Option<String>,
    segments: Vec<Segment>,
    /// Whether the pattern ends with `{name:path}`.
    rest: bool,
    schema: Option<Arc<CompiledSchema>>,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param,
}

impl DeclaredRoutes {
    /// Compiles `routes` (an app's `manifest.routes()`), compiling body
    /// schemas through `cache`. The error names the route that is wrong and
    /// why. Compiling schemas blocks; call it off the async runtime.
    pub fn new(routes: Vec<Route>, cache: &SchemaCache) -> anyhow::Result<Self> {
        let routes = routes
            .into_iter()
            .enumerate()
            .map(|(index, route)| {
                CompiledRoute::new(&route, cache).with_context(|| {
                    format!("route {index} (`{} {}`) in the app's manifest is invalid", route.method, route.path)
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { routes })
    }

    /// The body schema of the route that serves `method` and `path` (a
    /// request target; the query string is ignored), or `None` when that
    /// route has none or no route matches.
    pub fn body_schema(&self, method: &str, path: &str) -> Option<&Arc<CompiledSchema>> {
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        self.routes.iter().find(|route| route.matches(method, path))?.schema.as_ref()
    }

    /// Routes in the table.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the app declared no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

impl CompiledRoute {
    fn new(route: &Route, cache: &SchemaCache) -> anyhow::Result<Self> {
        let method = match route.method.as_str() {
            "*" => None,
            m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_') => {
                Some(m.to_owned())
            }
            m => {
                bail!("method {m:?} must be an upper-case HTTP method (`GET`, `POST`, ...) or `*`")
            }
        };
        let Some(pattern) = route.path.strip_prefix('/') else {
            bail!("path pattern {:?} must start with `/`", route.path);
        };
        let raw: Vec<&str> = pattern.split('/').collect();
        let mut segments = Vec::with_capacity(raw.len());
        let mut names: Vec<&str> = Vec::new();
        let mut rest = false;
        for (i, segment) in raw.iter().enumerate() {
            let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                if segment.contains(['{', '}']) {
                    bail!("segment {segment:?} of {:?}: a `{{name}}` parameter must be a whole segment", route.path);
                }
                segments.push(Segment::Literal((*segment).to_owned()));
                continue;
            };
            let (name, kind) = param.split_once(':').unwrap_or((param, ""));
            let valid_name = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                bail!("parameter {segment:?} of {:?} needs a name of letters, digits and `_`", route.path);
            }
            if names.contains(&name) {
                bail!("parameter `{name}` appears twice in {:?}", route.path);
            }
            names.push(name);
            match kind {
                "" => segments.push(Segment::Param),
                "path" if i + 1 == raw.len() => rest = true,
                "path" => bail!("`{{{name}:path}}` must be the last segment of {:?}", route.path),
                other => bail!("parameter {segment:?} has unknown type `{other}`; the only type is `path`"),
            }
        }
        let schema = match &route.body_schema {
            Some(schema) => Some(
                cache
                    .compile(schema.as_bytes())
                    .map_err(anyhow::Error::msg)
                    .context("its body schema cannot be compiled")?,
            ),
            None => None,
        };
        Ok(Self { method, segments, rest, schema })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        let Some(mut remaining) = path.strip_prefix('/') else {
            return false;
        };
        for (i, segment) in self.segments.iter().enumerate() {
            let last = i + 1 == self.segments.len() && !self.rest;
            let (current, after) = if last {
                (remaining, None)
            } else {
                match remaining.split_once('/') {
                    Some((current, after)) => (current, Some(after)),
                    None => return false,
                }
            };
            let ok = match segment {
                Segment::Literal(literal) => current == literal,
                Segment::Param => !current.is_empty() && !current.contains('/'),
            };
            if !ok {
                return false;
            }
            match after {
                Some(after) => remaining = after,
                None => return true,
            }
        }
        // Only a `{name:path}` pattern gets here: the rest is one or more
        // characters.
        !remaining.is_empty()
    }
}

/// Checks a request body against a route's schema before the app runs.
/// `content_type` is the request's `Content-Type`; when present it must be
/// JSON (`application/json` or any `type/subtype+json`, parameters ignored,
/// case-insensitive), else `415`. An empty or malformed body gets `400`
/// (`413` when larger than 64 MiB), a body that fails the schema `422`.
pub fn check_body(schema: &CompiledSchema, content_type: Option<&str>, body: &[u8]) -> Result<(), Problem> {
    if let Some(content_type) = content_type {
        if !is_json_media_type(content_type) {
            return Err(Problem::new(
                415,
                format!("the request body must be JSON (`application/json`), not `{content_type}`"),
            ));
        }
    }
    if body.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        return Err(Problem::new(400, "the request body is empty; this endpoint expects a JSON document".to_owned()));
    }
    let document = json::parse_value(body).map_err(|e| {
        let status = if e.kind == ErrorKind::TooLarge { 413 } else { 400 };
        Problem::new(status, format!("the request body is not valid JSON: {}", e.describe()))
    })?;
    let violations = schema
        .validate_value(&document)
        .map_err(|e| Problem::new(500, format!("the host could not validate the request body: {e:#}")))?;
    if violations.is_empty() {
        return Ok(());
    }
    let count = violations.len();
    let mut problem = Problem::new(
        422,
        format!(
            "the request body does not match the endpoint's JSON Schema ({count} problem{})",
            if count == 1 { "" } else { "s" }
        ),
    );
    problem.errors = violations;
    Err(problem)
}

/// Whether a `Content-Type` value names JSON.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.split_once('/') {
        Some((kind, subtype)) => {
            !kind.is_empty()
                && (essence == "application/json" || subtype.len() > "+json".len() && subtype.ends_with("+json"))
        }
        None => false,
    }
}

/// Why the host refused a request body: an RFC 9457 problem, served as
/// `application/problem+json`.
#[derive(Clone, Debug)]
pub struct Problem {
    status: u16,
    detail: String,
    /// The schema failures, only for `422`.
    errors: Vec<Violation>,
}

/// The JSON shape of a [`Problem`].
#[derive(Serialize)]
struct ProblemBody<'a> {
    r#type: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ProblemError<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProblemError<'a> {
    instance_path: &'a str,
    schema_path: &'a str,
    message: &'a str,
}

impl Problem {
    /// The media type of [`Problem::to_json_bytes`].
    pub const CONTENT_TYPE: &'static str = "application/problem+json";

    fn new(status: u16, detail: String) -> Self {
        Self { status, detail, errors: Vec::new() }
    }

    /// The HTTP status code to respond with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The standard reason phrase of [`Problem::status`], used as the title.
    pub fn title(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            413 => "Content Too Large",
            415 => "Unsupported Media Type",
            422 => "Unprocessable Content",
            _ => "Internal Server Error",
        }
    }

    /// What is wrong, in one sentence.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The schema failures (only for `422`; at most 100).
    pub fn errors(&self) -> &[Violation] {
        &self.errors
    }

    /// The response body: `{"type":"about:blank","title":...,"status":...,
    /// "detail":...,"errors":[{"instancePath":...,"schemaPath":...,
    /// "message":...}]}`, `errors` only for `422`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let body = ProblemBody {
            r#type: "about:blank",
            title: self.title(),
            status: self.status,
            detail: &self.detail,
            errors: self
                .errors
                .iter()
                .map(|e| ProblemError {
                    instance_path: &e.instance_path,
                    schema_path: &e.schema_path,
                    message: &e.message,
                })
                .collect(),
        };
        // Serializing strings and integers into a Vec cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title(), self.detail)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn route(method: &str, path: &str, schema: Option<&str>) -> Route {
        Route { method: method.to_owned(), path: path.to_owned(), body_schema: schema.map(str::to_owned) }
    }

    /// A table whose route `i` has the schema `{"const": i}`, so lookups
    /// can tell which route matched.
    fn table(routes: &[(&str, &str)]) -> DeclaredRoutes {
        let routes = routes
            .iter()
            .enumerate()
            .map(|(i, (method, path))| route(method, path, Some(&format!("{{\"const\": {i}}}"))))
            .collect();
        DeclaredRoutes::new(routes, &SchemaCache::default()).expect("valid routes")
    }

    /// Which route serves `method path`, by the schema it accepts.
    fn served_by(table: &DeclaredRoutes, method: &str, path: &str) -> Option<usize> {
        let schema = table.body_schema(method, path)?;
        (0..table.len()).find(|i| check_body(schema, None, i.to_string().as_bytes()).is_ok())
    }

    fn problem_json(problem: &Problem) -> Value {
        serde_json::from_slice(&problem.to_json_bytes()).expect("problem JSON")
    }

    #[test]
    fn first_matching_route_wins() {
        let t = table(&[
            ("GET", "/orders/new"),
            ("GET", "/orders/{id}"),
            ("*", "/orders/{id}"),
            ("POST", "/files/{rest:path}"),
            ("GET", "/"),
            ("GET", "/a%20b/{x}"),
        ]);
        assert_eq!(served_by(&t, "GET", "/orders/new"), Some(0), "literal before parameter");
        assert_eq!(served_by(&t, "GET", "/orders/42"), Some(1));
        assert_eq!(served_by(&t, "DELETE", "/orders/42"), Some(2), "`*` is any method");
        assert_eq!(served_by(&t, "POST", "/orders/new"), Some(2));
        assert_eq!(served_by(&t, "GET", "/orders/42?x=1/2"), Some(1), "the query is ignored");
        assert_eq!(served_by(&t, "GET", "/orders/"), None, "a parameter is never empty");
        assert_eq!(served_by(&t, "GET", "/orders/42/items"), None, "a parameter is one segment");
        assert_eq!(served_by(&t, "GET", "/orders"), None);
        assert_eq!(served_by(&t, "POST", "/files/a"), Some(3));
        assert_eq!(served_by(&t, "POST", "/files/a/b/"), Some(3), "the rest may contain `/`");
        assert_eq!(served_by(&t, "POST", "/files/"), None, "the rest is never empty");
        assert_eq!(served_by(&t, "POST", "/files"), None);
        assert_eq!(served_by(&t, "GET", "/"), Some(4));
        assert_eq!(served_by(&t, "GET", "/?q"), Some(4));
        assert_eq!(served_by(&t, "GET", "/a%20b/x"), Some(5), "percent-encoding is compared as-is");
        assert_eq!(served_by(&t, "GET", "/a b/x"), None);
        assert_eq!(served_by(&t, "get", "/orders/new"), Some(2), "methods are case-sensitive");
        assert_eq!(served_by(&t, "GET", "orders/new"), None);
    }

    #[test]
    fn routes_without_schema_shadow_later_ones() {
        let cache = SchemaCache::default();
        let t = DeclaredRoutes::new(vec![route("POST", "/x", None), route("POST", "/{p}", Some("{}"))], &cache)
            .expect("valid");
        assert!(t.body_schema("POST", "/x").is_none());
        assert!(t.body_schema("POST", "/y").is_some());
        assert!(DeclaredRoutes::new(Vec::new(), &cache).expect("valid").is_empty());
    }

    #[test]
    fn bad_routes_are_named() {
        let cache = SchemaCache::default();
        for (method, path, schema, why) in [
            ("get", "/x", None, "upper-case"),
            ("", "/x", None, "upper-case"),
            ("GET", "x", None, "must start with `/`"),
            ("GET", "/a{b}", None, "whole segment"),
            ("GET", "/{}", None, "needs a name"),
            ("GET", "/{a b}", None, "needs a name"),
            ("GET", "/{a}/{a}", None, "appears twice"),
            ("GET", "/{a:path}/b", None, "must be the last"),
            ("GET", "/{a:int}", None, "unknown type"),
            ("POST", "/x", Some("{\"type\": \"strin\"}"), "body schema cannot be compiled"),
            ("POST", "/x", Some("{\"$ref\": \"https://example.com/s.json\"}"), "never fetches"),
            ("POST", "/x", Some("not json"), "not valid JSON"),
        ] {
            let routes = vec![route("GET", "/ok", None), route(method, path, schema)];
            let e = format!("{:#}", DeclaredRoutes::new(routes, &cache).expect_err("invalid"));
            assert!(e.starts_with(&format!("route 1 (`{method} {path}`)")), "{e}");
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn route_schemas_count_against_the_app_limit() {
        let schema = |seed: usize| {
            let properties: serde_json::Map<_, _> =
                (0..200).map(|i| (format!("s{seed}p{i}"), json!({"minimum": i}))).collect();
            json!({ "properties": properties }).to_string()
        };
        let size = CompiledSchema::compile(schema(0).as_bytes()).expect("compiles").heap_bytes();
        let cache = SchemaCache::new(crate::schema::DEFAULT_CACHE_ENTRIES, size * 3 / 2);
        let table = DeclaredRoutes::new(vec![route("POST", "/a", Some(&schema(0)))], &cache).expect("fits");
        let routes = vec![route("POST", "/a", Some(&schema(0))), route("POST", "/b", Some(&schema(1)))];
        let e = format!("{:#}", DeclaredRoutes::new(routes, &cache).expect_err("over the app's limit"));
        assert!(e.starts_with("route 1 (`POST /b`)") && e.contains("compiled schemas per app"), "{e}");
        drop(table);
    }

    #[test]
    fn check_body_answers_with_problems() {
        let cache = SchemaCache::default();
        let schema = cache
            .compile(br#"{"type":"object","required":["qty"],"properties":{"qty":{"type":"integer","minimum":1}}}"#)
            .expect("compiles");
        assert!(check_body(&schema, Some("application/json"), br#"{"qty": 2}"#).is_ok());
        assert!(check_body(&schema, None, br#"{"qty": 2}"#).is_ok());
        for json in
            ["application/json; charset=utf-8", "Application/JSON", "application/problem+json", "text/vnd.x+JSON ;q=1"]
        {
            assert!(check_body(&schema, Some(json), br#"{"qty": 2}"#).is_ok(), "{json}");
        }
        for other in
            ["text/plain", "application/jsonx", "application/+json", "json", "", "multipart/form-data; boundary=json"]
        {
            let problem = check_body(&schema, Some(other), br#"{"qty": 2}"#).expect_err(other);
            assert_eq!(problem.status(), 415, "{other}");
        }

        let problem = check_body(&schema, None, b" \n").expect_err("empty");
        assert_eq!(problem.status(), 400);
        assert!(problem.detail().contains("empty"));

        let problem = check_body(&schema, Some("application/json"), b"{\n  \"qty\": 2,\n}").expect_err("malformed");
        assert_eq!(problem.status(), 400);
        assert!(problem.detail().contains("line 3, column 1"), "{}", problem.detail());
        let body = problem_json(&problem);
        assert_eq!(body.as_object().map(|o| o.len()), Some(4), "no `errors` for 400: {body}");
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Bad Request");
        assert_eq!(body["status"], 400);
        assert_eq!(body["detail"], problem.detail());

        let deep = "[".repeat(100_000);
        assert_eq!(check_body(&schema, None, deep.as_bytes()).map_err(|p| p.status()), Err(400));
        assert_eq!(check_body(&schema, None, b"\"\\ud800\"").map_err(|p| p.status()), Err(400));
        assert_eq!(check_body(&schema, None, b"{\"qty\": 1e400}").map_err(|p| p.status()), Err(400));
        let mut large = vec![b' '; crate::json::MAX_DOCUMENT_BYTES + 1];
        large[0] = b'1';
        assert_eq!(check_body(&schema, None, &large).map_err(|p| p.status()), Err(413));

        let problem = check_body(&schema, Some("application/json"), br#"{"qty": 0}"#).expect_err("violation");
        assert_eq!(problem.status(), 422);
        assert_eq!(
            problem_json(&problem),
            json!({
                "type": "about:blank",
                "title": "Unprocessable Content",
                "status": 422,
                "detail": "the request body does not match the endpoint's JSON Schema (1 problem)",
                "errors": [{"instancePath": "/qty", "schemaPath": "/properties/qty/minimum", "message": "0 is less than the minimum of 1"}]
            })
        );
        assert_eq!(
            problem.to_string(),
            "422 Unprocessable Content: the request body does not match the endpoint's JSON Schema (1 problem)"
        );
        let problem = check_body(&schema, None, b"[]").expect_err("violation");
        assert_eq!(problem.errors().len(), 1);
        assert_eq!(problem_json(&problem)["errors"][0]["instancePath"], "");
    }
}
