//! The Python dev loop behind `wasmhost dev app.py`: edit a source file, and
//! the next request runs the new code, in about a second instead of a
//! componentize-py build (~20 s) plus a compile (~4–8 s).
//!
//! The trick is to build once, not per edit. `wasmhost_build::build_dev_loader`
//! builds (and caches) a *loader* component: CPython with nearly the whole
//! standard library and the SDK imported, and an entry point that imports
//! the user's app at run time from the source directory, which the host
//! shows the guest read-only as `/app`, with its dependencies as `/deps`.
//! [`watch_sources`] then reacts to an edit by starting a new version of the
//! same compiled component (new instances import the new code), probing it,
//! and swapping it in only if the app imported cleanly. Syntax and import
//! errors are logged with file and line, and the last good version keeps
//! serving. A changed `requirements.txt` is installed first ([`Deps`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use sha2::{Digest, Sha256};
use wasmhost_reload::{AppSlot, RecursiveMode};
use wasmhost_runtime::AppVersion;

/// Where the guest sees the app's source directory.
pub const GUEST_APP_DIR: &str = "/app";
/// Where the guest sees the app's installed dependencies.
pub const GUEST_DEPS_DIR: &str = "/deps";
/// Environment variable naming the app (`module:attr`) for the loader.
pub const TARGET_VAR: &str = "WASMHOST_DEV_TARGET";
/// Environment variable naming the app's interface (`auto`, `sdk`, `wsgi`).
pub const INTERFACE_VAR: &str = "WASMHOST_DEV_INTERFACE";
/// Request header that makes the loader only import the app.
const PROBE_HEADER: &str = "x-wasmhost-dev-probe";
/// Quiet time after the last source event before a restart.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// The app's dependencies as the guest sees them: a stable path (a symbolic
/// link) that points at the installed packages of the current
/// `requirements.txt`. New instances open it afresh, so switching the link
/// switches the packages of the next version.
pub struct Deps {
    requirements: PathBuf,
    cache_dir: PathBuf,
    link: PathBuf,
    installed: std::sync::Mutex<Option<Vec<u8>>>,
}

impl Deps {
    /// Installs `src_dir/requirements.txt` (if any) and points the link at
    /// the result. Blocks while pip runs.
    pub fn new(src_dir: &Path, cache_dir: &Path) -> Result<Self> {
        let key = hex::encode(&Sha256::digest(src_dir.as_os_str().as_encoded_bytes())[..8]);
        let link =
            std::path::absolute(cache_dir.join("dev-deps").join(key)).context("cannot resolve the cache directory")?;
        let deps = Self {
            requirements: src_dir.join("requirements.txt"),
            cache_dir: cache_dir.to_owned(),
            link,
            installed: std::sync::Mutex::new(None),
        };
        deps.refresh()?;
        Ok(deps)
    }

    /// The directory the guest sees as [`GUEST_DEPS_DIR`].
    pub fn dir(&self) -> &Path {
        &self.link
    }

    /// Installs `requirements.txt` again if it changed; returns whether it
    /// did. On failure the previous packages stay.
    pub fn refresh(&self) -> Result<bool> {
        let current = std::fs::read(&self.requirements).unwrap_or_default();
        let mut installed = self.installed.lock().map_err(|_| anyhow::anyhow!("dependency state poisoned"))?;
        if installed.as_deref() == Some(current.as_slice()) {
            return Ok(false);
        }
        let dir = wasmhost_build::install_requirements_for(&self.requirements, &self.cache_dir)?;
        let parent = self.link.parent().context("the dependency link has no directory")?;
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        let next = self.link.with_extension(format!("next-{}", std::process::id()));
        let _ = std::fs::remove_file(&next);
        std::os::unix::fs::symlink(&dir, &next).with_context(|| format!("cannot create {}", next.display()))?;
        std::fs::rename(&next, &self.link).with_context(|| format!("cannot replace {}", self.link.display()))?;
        *installed = Some(current);
        Ok(true)
    }
}

/// Asks a new version to import the app. On failure the error is the
/// guest's traceback, with guest paths turned back into `src_dir` paths.
pub async fn probe(app: &AppVersion, src_dir: &Path) -> Result<()> {
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
    let text =
        String::from_utf8_lossy(&body).replace(&format!("\"{GUEST_APP_DIR}/"), &format!("\"{}/", src_dir.display()));
    let text = text.trim_end();
    bail!("the app failed to import:\n{text}")
}

/// Watches `src_dir` for changes to Python sources and `requirements.txt`;
/// on each (debounced) change, renews the app and swaps it in if it
/// imports. Runs until the returned watcher is dropped.
pub fn watch_sources(slot: Arc<AppSlot>, src_dir: PathBuf, deps: Deps) -> Result<notify::RecommendedWatcher> {
    let dir = src_dir.clone();
    let deps = Arc::new(deps);
    wasmhost_reload::watch_changes(&dir, RecursiveMode::Recursive, DEBOUNCE, is_source, move || {
        let (slot, src_dir, deps) = (slot.clone(), src_dir.clone(), deps.clone());
        async move {
            let started = Instant::now();
            match restart(&slot, &src_dir, deps).await {
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

/// A new version of the app from the same loader (with its requirements
/// installed again if they changed), probed, then swapped in.
async fn restart(slot: &AppSlot, src_dir: &Path, deps: Arc<Deps>) -> Result<()> {
    let reinstalled = tokio::task::spawn_blocking(move || deps.refresh())
        .await
        .context("the dependency install thread panicked")?
        .context("requirements.txt changed but cannot be installed")?;
    if reinstalled {
        tracing::info!(app = %slot.name(), "requirements.txt installed");
    }
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
