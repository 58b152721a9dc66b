//! The Python dev loop behind `wasmhost dev app.py`: edit a source file, and
//! the next request runs the new code, in about a second instead of a
//! componentize-py build (~20 s) plus a compile (~4–8 s).
//!
//! The trick is to build once, not per edit. [`build_loader`] builds (and
//! caches) a *loader* component: CPython with nearly the whole standard
//! library imported, and a handler that imports the user's module at run
//! time from the source directory, which the host shows the guest read-only
//! as `/app`. [`watch_sources`] then reacts to an edit by starting a new
//! version of the same compiled component (new instances import the new
//! code), probing it, and swapping it in only if the app imported cleanly.
//! Syntax and import errors are logged with file and line, and the last good
//! version keeps serving.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use sha2::{Digest, Sha256};
use wasmhost_reload::{AppSlot, RecursiveMode};
use wasmhost_runtime::App;

/// Where the guest sees the app's source directory.
pub const GUEST_APP_DIR: &str = "/app";
/// Environment variable naming the user's module for the loader.
pub const MODULE_VAR: &str = "WASMHOST_DEV_MODULE";
/// Request header that makes the loader only import the app.
const PROBE_HEADER: &str = "x-wasmhost-dev-probe";
/// Quiet time after the last source event before a restart.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// componentize-py version the loader is built and tested with.
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The loader's inputs, embedded in the binary: the WIT worlds, the loader
/// and the `wasmhost_http` helper.
const LOADER_FILES: &[(&str, &str)] = &[
    ("wit/world.wit", include_str!("../../../wit/world.wit")),
    ("wit/deps/cli.wit", include_str!("../../../wit/deps/cli.wit")),
    ("wit/deps/clocks.wit", include_str!("../../../wit/deps/clocks.wit")),
    ("wit/deps/filesystem.wit", include_str!("../../../wit/deps/filesystem.wit")),
    ("wit/deps/http.wit", include_str!("../../../wit/deps/http.wit")),
    ("wit/deps/io.wit", include_str!("../../../wit/deps/io.wit")),
    ("wit/deps/random.wit", include_str!("../../../wit/deps/random.wit")),
    ("wit/deps/sockets.wit", include_str!("../../../wit/deps/sockets.wit")),
    ("python/wasmhost_dev.py", include_str!("../../../guests/python-dev/wasmhost_dev.py")),
    ("python/wasmhost_http.py", include_str!("../../../guests/python-http/wasmhost_http.py")),
];

/// Finds componentize-py: `$COMPONENTIZE_PY`, `./.venv/bin/componentize-py`,
/// or `PATH`.
fn componentize_py() -> Result<PathBuf> {
    let candidates = std::env::var_os("COMPONENTIZE_PY")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(".venv/bin/componentize-py")])
        .chain(std::env::var_os("PATH").into_iter().flat_map(|path| {
            std::env::split_paths(&path).map(|dir| dir.join("componentize-py")).collect::<Vec<_>>()
        }));
    for candidate in candidates {
        if candidate.is_file() {
            return std::path::absolute(&candidate).context("cannot resolve the componentize-py path");
        }
    }
    bail!(
        "componentize-py not found; install it with \
         `python3 -m venv .venv && .venv/bin/pip install componentize-py=={COMPONENTIZE_PY_VERSION}` \
         (or point COMPONENTIZE_PY at it)"
    )
}

/// Builds the loader component into `<cache_dir>/dev-loader/`, or returns
/// the one built earlier from the same inputs and componentize-py version.
pub fn build_loader(cache_dir: &Path) -> Result<PathBuf> {
    let tool = componentize_py()?;
    let version = Command::new(&tool)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    let mut hasher = Sha256::new();
    hasher.update(&version.stdout);
    for (name, text) in LOADER_FILES {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    let key = &hex::encode(hasher.finalize())[..16];
    let root = std::path::absolute(cache_dir.join("dev-loader")).context("cannot resolve the cache directory")?;
    let output = root.join(format!("loader-{key}.wasm"));
    if output.is_file() {
        return Ok(output);
    }

    let work = root.join(format!("build-{key}-{}", std::process::id()));
    for (name, text) in LOADER_FILES {
        let path = work.join(name);
        std::fs::create_dir_all(path.parent().context("embedded file without a directory")?)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // componentize-py adds $VIRTUAL_ENV's site-packages to the guest path; an
    // empty one keeps the host's packages out of the loader.
    let venv = work.join("venv");
    std::fs::create_dir_all(venv.join("lib/python/site-packages"))?;
    let tmp = work.join("loader.wasm");
    tracing::info!("building the dev loader with componentize-py (once per wasmhost version, ~20 s)");
    let result = Command::new(&tool)
        .current_dir(&work)
        .env("VIRTUAL_ENV", &venv)
        .args(["-q", "-d", "wit", "-w", "http-app", "componentize", "wasmhost_dev", "-p", "python", "-o"])
        .arg(&tmp)
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !result.status.success() {
        bail!(
            "componentize-py failed to build the dev loader:\n{}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    std::fs::rename(&tmp, &output).with_context(|| format!("cannot write {}", output.display()))?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(output)
}

/// Asks a new version to import the app. On failure the error is the
/// guest's traceback, with guest paths turned back into `src_dir` paths.
pub async fn probe(app: &App, src_dir: &Path) -> Result<()> {
    let request = http::Request::builder()
        .uri("/")
        .header(http::header::HOST, "localhost")
        .header(PROBE_HEADER, "1")
        .body(Empty::<Bytes>::new())?;
    let response = app.handle(request, "dev-probe").await;
    let status = response.status();
    let body = response.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    if status == http::StatusCode::OK {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body)
        .replace(&format!("\"{GUEST_APP_DIR}/"), &format!("\"{}/", src_dir.display()));
    bail!("the app failed to import:\n{text}")
}

/// Watches `src_dir` for changes to Python sources and `requirements.txt`;
/// on each (debounced) change, renews the app and swaps it in if it
/// imports. Runs until the returned watcher is dropped.
pub fn watch_sources(slot: Arc<AppSlot>, src_dir: PathBuf) -> Result<notify::RecommendedWatcher> {
    let dir = src_dir.clone();
    wasmhost_reload::watch_changes(&dir, RecursiveMode::Recursive, DEBOUNCE, is_source, move || {
        let (slot, src_dir) = (slot.clone(), src_dir.clone());
        async move {
            let started = Instant::now();
            match restart(&slot, &src_dir).await {
                Ok(()) => tracing::info!(
                    app = %slot.name(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "source change: new version serving"
                ),
                Err(err) => tracing::warn!(
                    app = %slot.name(),
                    "source change refused, last good version keeps serving: {err:#}"
                ),
            }
        }
    })
}

/// A new version of the app from the same loader, probed, then swapped in.
async fn restart(slot: &AppSlot, src_dir: &Path) -> Result<()> {
    let app = slot.current().renew().await?;
    probe(&app, src_dir).await?;
    slot.install(app);
    Ok(())
}

/// Whether a changed path can change the app: Python sources and the
/// requirements file, outside `__pycache__`.
fn is_source(path: &Path) -> bool {
    let in_cache = path.components().any(|part| part.as_os_str() == "__pycache__");
    let relevant = path.extension().is_some_and(|ext| ext == "py")
        || path.file_name().is_some_and(|name| name == "requirements.txt");
    relevant && !in_cache
}

#[cfg(test)]
mod tests {
    use super::is_source;
    use std::path::Path;

    #[test]
    fn only_python_sources_and_requirements_trigger_restarts() {
        assert!(is_source(Path::new("/src/app.py")));
        assert!(is_source(Path::new("/src/pkg/views.py")));
        assert!(is_source(Path::new("/src/requirements.txt")));
        assert!(!is_source(Path::new("/src/__pycache__/app.cpython-314.pyc")));
        assert!(!is_source(Path::new("/src/__pycache__/x.py")));
        assert!(!is_source(Path::new("/src/notes.md")));
    }
}
