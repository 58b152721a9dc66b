//! The host side of the `wasmhost:platform@0.1.0` WIT package
//! (`wit/platform.wit`): native JSON and JSON Schema validation for guests,
//! and the route manifest and command that apps export.
//!
//! * [`add_to_linker`] adds the `json` and `validation` imports to a
//!   component [`Linker`]. Their host state is a [`PlatformView`]: the
//!   store's [`ResourceTable`] (shared with WASI) and a [`PlatformCtx`]
//!   that holds the app's [`SchemaCache`].
//! * [`ManifestExport`] finds an app's `manifest` export and calls
//!   `routes()`; [`CommandExport`] finds its `command` export and calls
//!   `run(args)` (`wasmhost run`).
//! * [`DeclaredRoutes`] and [`check_body`] validate request bodies against the
//!   routes' schemas before the app runs, answering with an RFC 9457
//!   [`Problem`].
//!
//! The functions in [`json`] and [`CompiledSchema`] are what the imports
//! run; they are usable on their own. All inputs are bounded (64 MiB, 128
//! levels of nesting) and checked without recursion before anything
//! recursive sees them; see the [`json`] and [`schema`] modules for what
//! each hostile input does. What compiled schemas hold in the host's heap
//! is bounded per schema and per app ([`schema`]), measured by the
//! counting global allocator of [`heap`].

use std::sync::{Arc, LazyLock};

use prometheus::{register_histogram_vec, HistogramVec};

use anyhow::Context as _;
use wasmtime::component::{HasData, Instance, InstancePre, Linker, Resource, ResourceTable};
use wasmtime::AsContextMut;

pub mod heap;
pub mod json;
mod routes;
pub mod schema;

pub use json::{ErrorKind, JsonError};
pub use routes::{check_body, DeclaredRoutes, Problem, Route};
pub use schema::{CompiledSchema, SchemaCache, Violation};

// `bindgen!` also generates instantiation helpers for the whole world,
// which the host does not use: it instantiates apps through its own
// `wasi:http/proxy` bindings and only needs these imports and the
// `manifest` export.
#[allow(dead_code)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        inline: "
            package wasmhost:host;

            world platform-host {
                import wasmhost:platform/json@0.1.0;
                import wasmhost:platform/validation@0.1.0;
                export wasmhost:platform/manifest@0.1.0;
                export wasmhost:platform/command@0.1.0;
            }
        ",
        world: "wasmhost:host/platform-host",
        imports: {
            // Only a host failure (no thread for a deeply recursive schema,
            // a panicking validator, a stale handle) traps.
            "wasmhost:platform/validation.[method]schema.validate": trappable,
        },
        exports: { default: async },
        with: {
            "wasmhost:platform/validation.schema": crate::SchemaHandle,
        },
    });
}

use bindings::exports::wasmhost::platform::command::GuestIndices as CommandIndices;
use bindings::exports::wasmhost::platform::manifest::GuestIndices as ManifestIndices;
use bindings::wasmhost::platform::{json as json_bindings, validation as validation_bindings};

/// Durations of the platform's host calls, by app and call; its count is
/// the number of calls.
static HOST_CALLS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "wasmhost_host_call_duration_seconds",
        "Time spent in wasmhost:platform host calls (JSON and validation), by app and call.",
        &["app", "call"],
        vec![0.000_001, 0.000_005, 0.000_025, 0.0001, 0.0005, 0.0025, 0.01, 0.05, 0.25, 1.0]
    )
    // Registered once, by this static.
    .expect("metric registered once")
});

/// The name of the interface apps export to declare their routes.
pub const MANIFEST_INTERFACE: &str = "wasmhost:platform/manifest@0.1.0";

/// The name of the interface apps export to run Python in their sandbox
/// (`wasmhost run`).
pub const COMMAND_INTERFACE: &str = "wasmhost:platform/command@0.1.0";

/// Platform state shared by the instances of one app: its name (for
/// metrics) and its cache of compiled schemas. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct PlatformCtx {
    app: Arc<str>,
    schemas: Arc<SchemaCache>,
}

impl PlatformCtx {
    /// State for the app named `app` that compiles schemas through
    /// `schemas`, normally one cache per app (shared with its
    /// [`DeclaredRoutes`]).
    pub fn new(app: Arc<str>, schemas: Arc<SchemaCache>) -> Self {
        Self { app, schemas }
    }

    /// Runs host call `call` for the guest, timing it in
    /// `wasmhost_host_call_duration_seconds`.
    fn timed<R>(&self, call: &str, run: impl FnOnce() -> R) -> R {
        let timer = HOST_CALLS.with_label_values(&[&*self.app, call]).start_timer();
        let result = run();
        timer.observe_duration();
        result
    }

    /// The app's schema cache.
    pub fn schemas(&self) -> &Arc<SchemaCache> {
        &self.schemas
    }
}

/// What the platform imports see of a store: its resource table (where
/// `schema` handles live) and the app's [`PlatformCtx`]. Built by the
/// getter passed to [`add_to_linker`] from disjoint fields of the store's
/// data.
pub struct PlatformView<'a> {
    /// The store's resource table, shared with WASI.
    pub table: &'a mut ResourceTable,
    /// The app's platform state.
    pub ctx: &'a PlatformCtx,
}

/// A `schema` resource as held in a store's [`ResourceTable`].
pub struct SchemaHandle(Arc<CompiledSchema>);

/// Marks [`PlatformView`] as the host state of the generated bindings.
struct Platform;

impl HasData for Platform {
    type Data<'a> = PlatformView<'a>;
}

/// Adds the `wasmhost:platform/json` and `wasmhost:platform/validation`
/// imports to `linker`; `get` projects the store's data to a
/// [`PlatformView`], e.g.
/// `|s| PlatformView { table: &mut s.table, ctx: &s.platform }`.
///
/// The host functions are synchronous: they run on the calling guest's
/// stack (or, for deeply recursive schemas, a helper thread) and work on
/// async stores and linkers too.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> PlatformView<'_>,
) -> anyhow::Result<()> {
    json_bindings::add_to_linker::<T, Platform>(linker, get)
        .map_err(anyhow::Error::from)
        .context("cannot add wasmhost:platform/json to the linker; is it already defined?")?;
    validation_bindings::add_to_linker::<T, Platform>(linker, get)
        .map_err(anyhow::Error::from)
        .context("cannot add wasmhost:platform/validation to the linker; is it already defined?")?;
    Ok(())
}

impl json_bindings::Host for PlatformView<'_> {
    fn check(&mut self, document: Vec<u8>) -> Result<(), JsonError> {
        self.ctx.timed("json.check", || json::check(&document))
    }

    fn minify(&mut self, document: Vec<u8>, sort_keys: bool) -> Result<Vec<u8>, JsonError> {
        self.ctx.timed("json.minify", || json::minify(&document, sort_keys))
    }

    fn extract(&mut self, document: Vec<u8>, pointers: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, JsonError> {
        self.ctx.timed("json.extract", || json::extract(&document, &pointers))
    }
}

impl validation_bindings::Host for PlatformView<'_> {}

impl validation_bindings::HostSchema for PlatformView<'_> {
    fn compile(&mut self, schema: Vec<u8>) -> Result<Resource<SchemaHandle>, String> {
        let compiled = self.ctx.timed("schema.compile", || self.ctx.schemas.compile(&schema))?;
        self.table
            .push(SchemaHandle(compiled))
            .map_err(|e| format!("cannot keep another schema ({e}); drop schemas that are no longer needed"))
    }

    fn validate(
        &mut self,
        schema: Resource<SchemaHandle>,
        document: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<Violation>, JsonError>> {
        let compiled = Arc::clone(&self.table.get(&schema)?.0);
        self.ctx.timed("schema.validate", || compiled.validate(&document)).map_err(wasmtime::Error::from_anyhow)
    }

    fn drop(&mut self, schema: Resource<SchemaHandle>) -> wasmtime::Result<()> {
        self.table.delete(schema)?;
        Ok(())
    }
}

/// An app component's `wasmhost:platform/manifest` export, looked up once
/// per component and usable with any of its instances.
#[derive(Clone)]
pub struct ManifestExport {
    indices: ManifestIndices,
}

impl ManifestExport {
    /// The manifest export of the component behind `pre`, or `None` when
    /// it has none (a plain `wasi:http/proxy` app).
    pub fn new<T>(pre: &InstancePre<T>) -> anyhow::Result<Option<Self>> {
        if pre.component().get_export_index(None, MANIFEST_INTERFACE).is_none() {
            return Ok(None);
        }
        let indices = ManifestIndices::new(pre).map_err(anyhow::Error::from).with_context(|| {
            format!("the component exports {MANIFEST_INTERFACE} without `routes`; rebuild it with the wasmhost SDK")
        })?;
        Ok(Some(Self { indices }))
    }

    /// Calls the app's `routes()` on `instance` (created from the same
    /// component). Needs an async store, like any guest call in wasmhost.
    pub async fn routes<S>(&self, mut store: S, instance: &Instance) -> anyhow::Result<Vec<Route>>
    where
        S: AsContextMut,
        S::Data: Send,
    {
        let guest = self.indices.load(&mut store, instance).map_err(anyhow::Error::from).with_context(|| {
            format!("the component's {MANIFEST_INTERFACE} export has the wrong type; rebuild it with the wasmhost SDK")
        })?;
        guest.call_routes(&mut store).await.map_err(anyhow::Error::from).context("the app's manifest `routes()` failed")
    }
}

/// An app component's `wasmhost:platform/command` export (`wasmhost run`).
#[derive(Clone)]
pub struct CommandExport {
    indices: CommandIndices,
}

impl CommandExport {
    /// The command export of the component behind `pre`; an error saying
    /// how to get one when it has none.
    pub fn new<T>(pre: &InstancePre<T>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            pre.component().get_export_index(None, COMMAND_INTERFACE).is_some(),
            "the component does not export {COMMAND_INTERFACE}: `wasmhost run` needs a Python app (app.py or \
             module:attr), or a component built by this version's `wasmhost build`"
        );
        let indices = CommandIndices::new(pre).map_err(anyhow::Error::from).with_context(|| {
            format!("the component exports {COMMAND_INTERFACE} without `run`; rebuild it with the wasmhost SDK")
        })?;
        Ok(Self { indices })
    }

    /// Calls the app's `run(args)` on `instance`; the exit status.
    pub async fn run<S>(&self, mut store: S, instance: &Instance, args: &[String]) -> anyhow::Result<u8>
    where
        S: AsContextMut,
        S::Data: Send,
    {
        let guest = self.indices.load(&mut store, instance).map_err(anyhow::Error::from).with_context(|| {
            format!("the component's {COMMAND_INTERFACE} export has the wrong type; rebuild it with the wasmhost SDK")
        })?;
        guest.call_run(&mut store, args).await.map_err(anyhow::Error::from).context("the app's command trapped")
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::component::Component;
    use wasmtime::{Config, Engine, Store};

    use super::validation_bindings::HostSchema as _;
    use super::*;

    /// A store's data as the runtime has it: a table shared with WASI and
    /// the app's platform state.
    #[derive(Default)]
    struct State {
        table: ResourceTable,
        platform: PlatformCtx,
    }

    impl State {
        fn view(&mut self) -> PlatformView<'_> {
            PlatformView { table: &mut self.table, ctx: &self.platform }
        }
    }

    /// An engine configured like the runtime's (async calls, epoch
    /// interruption).
    fn engine() -> Engine {
        let mut config = Config::new();
        config.epoch_interruption(true);
        Engine::new(&config).expect("engine")
    }

    fn linker(engine: &Engine) -> Linker<State> {
        let mut linker = Linker::new(engine);
        add_to_linker(&mut linker, State::view).expect("adds the imports");
        linker
    }

    #[test]
    fn imports_can_be_added_once() {
        let engine = engine();
        let mut linker = linker(&engine);
        // As the runtime would write it.
        let e = add_to_linker(&mut linker, |s| PlatformView { table: &mut s.table, ctx: &s.platform })
            .expect_err("defined twice");
        assert!(format!("{e:#}").contains("wasmhost:platform/json"), "{e:#}");
    }

    #[test]
    fn schema_resources_live_in_the_table() {
        let mut state = State::default();
        let mut view = state.view();
        let schema = view.compile(br#"{"type": "integer"}"#.to_vec()).expect("compiles");
        let again = view.compile(br#"{"type": "integer"}"#.to_vec()).expect("compiles");
        assert_eq!(view.ctx.schemas().len(), 1, "compiled once");
        let found =
            view.validate(Resource::new_borrow(schema.rep()), b"\"x\"".to_vec()).expect("no trap").expect("JSON");
        assert_eq!(found.len(), 1);
        let e =
            view.validate(Resource::new_borrow(schema.rep()), b"[".to_vec()).expect("no trap").expect_err("not JSON");
        assert_eq!(e.kind, ErrorKind::Syntax);
        assert!(view.compile(b"{\"type\": 1}".to_vec()).expect_err("invalid").starts_with("invalid schema at /type"));
        view.drop(schema).expect("drops");
        view.drop(again).expect("drops");
        assert!(view.table.is_empty());
        let mut full = State::default();
        full.table.set_max_capacity(0);
        let e = full.view().compile(b"{}".to_vec()).expect_err("table full");
        assert!(e.contains("drop schemas"), "{e}");
    }

    #[test]
    fn schema_handles_count_against_the_app_limit() {
        let schema = |seed: usize| {
            let properties: serde_json::Map<_, _> =
                (0..200).map(|i| (format!("s{seed}p{i}"), serde_json::json!({"minimum": i}))).collect();
            serde_json::json!({ "properties": properties }).to_string().into_bytes()
        };
        let size = CompiledSchema::compile(&schema(0)).expect("compiles").heap_bytes();
        let cache = Arc::new(SchemaCache::new(schema::DEFAULT_CACHE_ENTRIES, size * 3 / 2));
        let mut state = State { platform: PlatformCtx::new(Arc::from("app"), cache.clone()), ..State::default() };
        let mut view = state.view();
        let first = view.compile(schema(0)).expect("fits");
        // An error value for the guest, not a trap.
        let e = view.compile(schema(1)).expect_err("over the app's limit");
        assert!(e.contains("compiled schemas per app"), "{e}");
        // Dropping the handle (and with it the last reference) gives the
        // bytes back.
        view.drop(first).expect("drops");
        let second = view.compile(schema(1)).expect("fits now");
        assert_eq!(view.ctx.schemas().held_bytes(), view.table.get(&second).expect("in the table").0.heap_bytes());
    }

    /// A component that imports `json.check` and exports the manifest;
    /// `routes()` checks its schema with the host before returning it.
    const APP: &str = r#"
    (component
      (import "wasmhost:platform/json@0.1.0" (instance $json
        (type $kind (enum "syntax" "too-large" "too-deep" "bad-pointer"))
        (export "error-kind" (type $error-kind (eq $kind)))
        (type $error (record (field "kind" $error-kind) (field "message" string) (field "line" u32) (field "column" u32)))
        (export "error" (type $error-type (eq $error)))
        (export "check" (func (param "document" (list u8)) (result (result (error $error-type)))))
      ))
      (alias export $json "check" (func $check))
      (core module $libc
        (memory (export "memory") 1)
        (global $next (mut i32) (i32.const 4096))
        (func (export "realloc") (param i32 i32 i32 i32) (result i32)
          (local $p i32)
          (local.set $p (global.get $next))
          (global.set $next (i32.add (global.get $next) (local.get 3)))
          (local.get $p)))
      (core instance $libc (instantiate $libc))
      (core func $check (canon lower (func $check) (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
      (core module $app
        (import "libc" "memory" (memory 1))
        (import "json" "check" (func $check (param i32 i32 i32)))
        (data (i32.const 16) "GET/orders/{id}POST/orders{\"required\":[\"qty\"]}[1,")
        (func (export "routes") (result i32)
          ;; The schema is JSON...
          (call $check (i32.const 42) (i32.const 20) (i32.const 1024))
          (if (i32.load8_u (i32.const 1024)) (then unreachable))
          ;; ...and "[1," is a syntax error at column 3.
          (call $check (i32.const 62) (i32.const 3) (i32.const 1024))
          (if (i32.ne (i32.load8_u (i32.const 1024)) (i32.const 1)) (then unreachable))
          (if (i32.load8_u (i32.const 1028)) (then unreachable))
          (if (i32.ne (i32.load (i32.const 1044)) (i32.const 3)) (then unreachable))
          ;; GET /orders/{id}, no schema.
          (i32.store (i32.const 512) (i32.const 16)) (i32.store (i32.const 516) (i32.const 3))
          (i32.store (i32.const 520) (i32.const 19)) (i32.store (i32.const 524) (i32.const 12))
          (i32.store8 (i32.const 528) (i32.const 0))
          ;; POST /orders with the schema.
          (i32.store (i32.const 540) (i32.const 31)) (i32.store (i32.const 544) (i32.const 4))
          (i32.store (i32.const 548) (i32.const 35)) (i32.store (i32.const 552) (i32.const 7))
          (i32.store8 (i32.const 556) (i32.const 1))
          (i32.store (i32.const 560) (i32.const 42)) (i32.store (i32.const 564) (i32.const 20))
          (i32.store (i32.const 256) (i32.const 512)) (i32.store (i32.const 260) (i32.const 2))
          (i32.const 256)))
      (core instance $app (instantiate $app
        (with "libc" (instance $libc))
        (with "json" (instance (export "check" (func $check))))))
      (type $route (record (field "method" string) (field "path" string) (field "body-schema" (option string))))
      (func $routes (result (list $route)) (canon lift (core func $app "routes") (memory (core memory $libc "memory"))))
      (component $manifest
        (type $route (record (field "method" string) (field "path" string) (field "body-schema" (option string))))
        (import "import-type-route" (type $imported (eq $route)))
        (import "routes" (func $routes (result (list $imported))))
        (type $fresh (record (field "method" string) (field "path" string) (field "body-schema" (option string))))
        (export $exported "route" (type $fresh))
        (export "routes" (func $routes) (func (result (list $exported)))))
      (instance $manifest (instantiate $manifest (with "import-type-route" (type $route)) (with "routes" (func $routes))))
      (export "wasmhost:platform/manifest@0.1.0" (instance $manifest)))
    "#;

    #[tokio::test]
    async fn an_app_declares_routes_that_check_bodies() {
        let engine = engine();
        let linker = linker(&engine);
        let component = Component::new(&engine, APP).expect("the test component is valid");
        let pre = linker.instantiate_pre(&component).expect("imports satisfied");
        let manifest = ManifestExport::new(&pre).expect("well-typed").expect("exported");
        let mut store = Store::new(&engine, State::default());
        store.set_epoch_deadline(1);
        let instance = pre.instantiate_async(&mut store).await.expect("instantiates");
        let routes = manifest.routes(&mut store, &instance).await.expect("routes() returns");
        let routes: Vec<_> = routes.into_iter().map(|r| (r.method, r.path, r.body_schema)).collect();
        let schema = r#"{"required":["qty"]}"#;
        assert_eq!(
            routes,
            [
                ("GET".to_owned(), "/orders/{id}".to_owned(), None),
                ("POST".to_owned(), "/orders".to_owned(), Some(schema.to_owned()))
            ]
        );
        let routes =
            routes.into_iter().map(|(method, path, body_schema)| Route { method, path, body_schema }).collect();
        let table = DeclaredRoutes::new(routes, store.data().platform.schemas()).expect("valid routes");
        assert!(table.body_schema("GET", "/orders/1").is_none());
        let schema = table.body_schema("POST", "/orders?x").expect("has a schema");
        assert_eq!(check_body(schema, Some("application/json"), b"{}").map_err(|p| p.status()), Err(422));
    }

    #[test]
    fn components_without_a_manifest_have_none() {
        let engine = engine();
        let component = Component::new(&engine, "(component)").expect("valid");
        let pre = linker(&engine).instantiate_pre(&component).expect("no imports");
        assert!(ManifestExport::new(&pre).expect("no error").is_none());
    }
}
