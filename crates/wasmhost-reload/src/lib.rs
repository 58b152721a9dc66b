//! Hot reload: swap an app's module in place, under load, without dropping a
//! request, and refuse a bad module while the old one keeps serving.
//!
//! An [`AppSlot`] holds the live version of one app. [`AppSlot::reload`]
//! reads the module file (size-capped), compiles it off the async runtime,
//! checks it against the `wasi:http/proxy` world, instantiates it (the new
//! pool's first instance is the smoke test), and only then swaps it in
//! atomically. Requests hold the version they started on, so they finish on
//! it; the old version's idle instances are dropped at once and its busy ones
//! when their requests end. Any failure leaves the old version in place, is
//! logged once and counted.
//!
//! [`watch`] triggers reloads when the module file changes. It watches the
//! file's directory, not the file, so the write-then-rename saves of editors
//! and build tools are seen, debounces bursts of events, and waits until the
//! file has stopped changing.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
pub use notify::RecursiveMode;
use notify::Watcher;
use wasmhost_runtime::app::read_module;
use wasmhost_runtime::metrics::METRICS;
use wasmhost_runtime::{AppVersion, Runtime};
use wasmhost_spec::AppSpec;

/// Quiet time after the last file event before a reload starts.
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// Interval between the two looks that decide a file stopped changing.
const STABLE_CHECK: Duration = Duration::from_millis(150);
/// Longest wait for a file that keeps changing before trying anyway.
const STABLE_MAX_WAIT: Duration = Duration::from_secs(10);

/// How a reload ended, when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// A new version is live; its module digest.
    Swapped(String),
    /// The module is byte-for-byte the one already serving.
    Unchanged,
}

/// Reload counters of one app.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads that swapped a new version in.
    pub swapped: AtomicU64,
    /// Reloads that found the module unchanged.
    pub unchanged: AtomicU64,
    /// Reloads refused; the old version kept serving.
    pub failed: AtomicU64,
}

/// The live version of one app and what is needed to build the next one.
pub struct AppSlot {
    spec: AppSpec,
    runtime: Runtime,
    current: ArcSwap<AppVersion>,
    /// One reload at a time per app.
    reloading: tokio::sync::Mutex<()>,
    last_error: Mutex<Option<String>>,
    stats: ReloadStats,
}

impl AppSlot {
    /// Loads the first version of the app described by `spec`; the app
    /// state of `previous` (an app it replaces, on a config reload) carries
    /// over where the capabilities allow (see `Capability::app`).
    pub async fn load(runtime: &Runtime, spec: AppSpec, previous: Option<&AppSlot>) -> Result<Arc<Self>> {
        let (bytes, _) = read_off_thread(&spec.module).await?;
        let previous = previous.map(AppSlot::current);
        let app = AppVersion::load(runtime, &spec, bytes, previous.as_deref()).await?;
        Ok(Arc::new(Self {
            spec,
            runtime: runtime.clone(),
            current: ArcSwap::from_pointee(app),
            reloading: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
            stats: ReloadStats::default(),
        }))
    }

    /// The version serving now. Hold it for the whole request.
    pub fn current(&self) -> Arc<AppVersion> {
        self.current.load_full()
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The module file the app is loaded from.
    pub fn path(&self) -> &Path {
        &self.spec.module
    }

    /// Reload counters.
    pub fn stats(&self) -> &ReloadStats {
        &self.stats
    }

    /// Builds the next version from the module file and swaps it in, or
    /// leaves the current one serving and returns why not. `trigger` says
    /// what asked for the reload, for the log.
    pub async fn reload(&self, trigger: &str) -> Result<Reloaded> {
        let _one_at_a_time = self.reloading.lock().await;
        let result = self.build_and_swap().await;
        let label = match &result {
            Ok(Reloaded::Swapped(_)) => "swapped",
            Ok(Reloaded::Unchanged) => "unchanged",
            Err(_) => "refused",
        };
        METRICS.reloads.with_label_values(&[self.name(), label]).inc();
        match &result {
            Ok(Reloaded::Swapped(digest)) => {
                self.set_last_error(None);
                tracing::info!(app = %self.spec.name, trigger, digest = %&digest[..16], "reloaded: new version serving");
            }
            Ok(Reloaded::Unchanged) => {
                self.stats.unchanged.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(app = %self.spec.name, trigger, "reload skipped: module unchanged");
            }
            Err(err) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let message = format!("{err:#}");
                // One line per distinct failure, not one per file event.
                if self.set_last_error(Some(message.clone())) {
                    tracing::warn!(app = %self.spec.name, trigger, "reload refused, previous version keeps serving: {message}");
                }
            }
        }
        result
    }

    async fn build_and_swap(&self) -> Result<Reloaded> {
        let (bytes, digest) = read_off_thread(&self.spec.module).await?;
        if digest == self.current.load().digest() {
            return Ok(Reloaded::Unchanged);
        }
        let current = self.current();
        let app = AppVersion::load(&self.runtime, &self.spec, bytes, Some(&current)).await?;
        let digest = app.digest().to_owned();
        self.install(app);
        Ok(Reloaded::Swapped(digest))
    }

    /// Makes `app` the live version, built and checked by the caller (the
    /// dev loop renews the same component after a source change).
    pub fn install(&self, app: AppVersion) {
        // Counted before the swap, so whoever sees the new version also
        // sees the count.
        self.stats.swapped.fetch_add(1, Ordering::Relaxed);
        let old = self.current.swap(Arc::new(app));
        old.retire_idle();
    }

    /// Records the latest failure; returns whether it differs from the last.
    fn set_last_error(&self, error: Option<String>) -> bool {
        match self.last_error.lock() {
            Ok(mut last) => {
                let changed = *last != error;
                *last = error;
                changed
            }
            Err(_) => true,
        }
    }
}

/// Reads a module file and its digest on a blocking thread: a 20 MB
/// Python component takes tens of milliseconds to read and hash, which on
/// an async worker would stall the requests queued behind it.
async fn read_off_thread(path: &Path) -> Result<(Vec<u8>, String)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let bytes = read_module(&path)?;
        let digest = wasmhost_runtime::cache::module_digest(&bytes);
        Ok((bytes, digest))
    })
    .await
    .context("the module reader thread panicked")?
}

/// Watches an app's module file and reloads the app when it changes, until
/// the returned watcher is dropped.
pub fn watch(slot: Arc<AppSlot>) -> Result<notify::RecommendedWatcher> {
    let path = std::path::absolute(slot.path()).context("cannot resolve the module path")?;
    let dir = path.parent().context("the module path has no directory")?.to_owned();
    let file_name = path.file_name().context("the module path has no file name")?.to_owned();
    watch_changes(
        &dir,
        RecursiveMode::NonRecursive,
        DEBOUNCE,
        move |changed| changed.file_name() == Some(file_name.as_os_str()),
        move || {
            let (slot, path) = (slot.clone(), path.clone());
            async move {
                wait_until_stable(&path).await;
                let _ = slot.reload("file change").await;
            }
        },
    )
}

/// Watches `dir` and runs `on_change` after each burst of changes to paths
/// that `relevant` accepts, once `debounce` has passed without another. One
/// `on_change` runs at a time; changes during it start another afterwards.
/// Runs until the returned watcher is dropped.
pub fn watch_changes<F, Fut>(
    dir: &Path,
    mode: RecursiveMode,
    debounce: Duration,
    relevant: impl Fn(&Path) -> bool + Send + 'static,
    mut on_change: F,
) -> Result<notify::RecommendedWatcher>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (events, mut changes) = tokio::sync::mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let wanted = match event {
            Ok(event) => is_change(&event) && event.paths.iter().any(|path| relevant(path)),
            Err(_) => true,
        };
        if wanted {
            // A full channel already holds a pending change: coalesce.
            let _ = events.try_send(());
        }
    })
    .context("cannot start the file watcher")?;
    watcher.watch(dir, mode).with_context(|| format!("cannot watch {}", dir.display()))?;
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            while tokio::time::timeout(debounce, changes.recv()).await.is_ok() {}
            on_change().await;
        }
    });
    Ok(watcher)
}

/// Whether a file event can mean new contents. Reads are not: reloading
/// reads the file, and taking that for a change would reload forever.
pub fn is_change(event: &notify::Event) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Waits until two looks at the file, [`STABLE_CHECK`] apart, see the same
/// size and modification time (or the file is gone), at most
/// [`STABLE_MAX_WAIT`].
async fn wait_until_stable(path: &Path) {
    fn look(path: &Path) -> Option<(u64, SystemTime)> {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    }
    let deadline = tokio::time::Instant::now() + STABLE_MAX_WAIT;
    let mut previous = look(path);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(STABLE_CHECK).await;
        let now = look(path);
        if now == previous {
            return;
        }
        previous = now;
    }
}

#[cfg(test)]
mod tests {
    use super::is_change;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, EventKind, MetadataKind, ModifyKind, RenameMode,
    };

    #[test]
    fn writes_and_renames_are_changes_reads_are_not() {
        let changes = [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ];
        let not_changes = [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
        ];
        for kind in changes {
            assert!(is_change(&notify::Event::new(kind)), "{kind:?} is a change");
        }
        for kind in not_changes {
            assert!(!is_change(&notify::Event::new(kind)), "{kind:?} is not a change");
        }
    }
}
