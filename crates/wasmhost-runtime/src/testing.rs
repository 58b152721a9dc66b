//! A tiny test guest for the runtime's own tests: a component assembled at
//! test time from `testing/fixture.wat` (a few hundred bytes of core wasm,
//! see the WAT for its routes) and the repository's WIT, so that the pool,
//! the app and the guest call are tested in milliseconds, without a 19 MB
//! Python component or componentize-py.

use anyhow::Context as _;
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

/// The fixture's world: the `exchange` import and the HTTP handler export
/// (with the monotonic clock for `/spin/N`).
const WORLD: &str = "
    package wasmhost:fixture;

    world fixture {
        import wasi:clocks/monotonic-clock@0.2.12;
        import wasmhost:platform/exchange@0.1.0;
        export wasi:http/incoming-handler@0.2.12;
    }
";

/// The fixture component's bytes.
pub(crate) fn component() -> anyhow::Result<Vec<u8>> {
    let mut resolve = Resolve::default();
    resolve.push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit")).context("cannot read wit/")?;
    let package = resolve.push_str("fixture.wit", WORLD)?;
    let world = resolve.select_world(&[package], Some("fixture"))?;
    let mut module = wat::parse_str(include_str!("testing/fixture.wat"))?;
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)?;
    ComponentEncoder::default().module(&module)?.validate(true).encode()
}

/// An engine sized for a few fixture instances.
pub(crate) fn engine() -> wasmtime::Engine {
    let options = crate::EngineOptions {
        max_instances: 16,
        max_memory_bytes: 256 << 20,
        keep_resident_bytes: 0,
        cache_dir: None,
    };
    crate::engine::build_engine(&options).expect("a test engine")
}

/// The fixture loaded as app `fixture` under `limits`, in a runtime of its own.
pub(crate) async fn app(engine: &wasmtime::Engine, limits: wasmhost_spec::Limits) -> crate::AppVersion {
    let runtime = crate::Runtime::new(engine.clone(), crate::CompileCache::disabled()).expect("a runtime");
    load(&runtime, "fixture", limits).await
}

/// The fixture loaded into `runtime` as app `name` under `limits`.
pub(crate) async fn load(runtime: &crate::Runtime, name: &str, limits: wasmhost_spec::Limits) -> crate::AppVersion {
    let spec = wasmhost_spec::AppSpec {
        name: name.into(),
        module: "fixture.wasm".into(),
        limits,
        env: wasmhost_spec::GuestEnv::default(),
    };
    let bytes = component().expect("the fixture component");
    crate::AppVersion::load(runtime, &spec, bytes, None).await.expect("the fixture loads")
}

/// `GET path` served by `app`: the status and the body.
pub(crate) async fn get(app: &crate::AppVersion, path: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let request = http::Request::get(path)
        .header("host", "fixture.test")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("a request");
    let response = app.handle(request, "test").await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fixture_serves_and_fails_on_demand() {
        let bytes = component().expect("the fixture component");
        assert!(bytes.starts_with(b"\0asm") && bytes.len() < 64 << 10, "{} bytes", bytes.len());
        let engine = engine();
        let _ticker = crate::EpochTicker::start(&engine).unwrap();
        let limits = wasmhost_spec::Limits {
            max_instances: 1,
            min_instances: 1,
            request_timeout: std::time::Duration::from_millis(300),
            ..Default::default()
        };
        let app = app(&engine, limits).await;
        assert_eq!(get(&app, "/").await, (200, "1".into()));
        assert_eq!(get(&app, "/x?y").await, (200, "2".into()), "the same instance serves again");
        assert_eq!(get(&app, "/trap").await.0, 500);
        assert_eq!(get(&app, "/").await, (200, "1".into()), "a new instance after the trap");
        assert_eq!(get(&app, "/loop").await.0, 504);
        assert_eq!(get(&app, "/noresponse").await.0, 500);
        assert_eq!(get(&app, "/spin/20").await, (200, "2".into()), "/noresponse kept its instance");
    }
}
