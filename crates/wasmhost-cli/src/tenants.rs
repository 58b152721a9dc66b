//! The apps a process serves (its tenants) and how the set changes: started
//! once from a plan, then (for `serve --config`) brought in step with the
//! config file whenever it is reloaded.
//!
//! A config reload is planned by `wasmhost_config::reload::ReloadPlan`: an
//! app whose spec is unchanged keeps its slot (and its warm instances), even
//! when its mount moved; an added or changed app is loaded next to the old
//! version (a changed one carrying over what its capabilities keep, such as
//! its outbound connection budget); a removed app stops receiving requests
//! and its instances go once its last request ends. If anything in the new
//! file fails (a parse error, a build error, a bad module, two apps on one
//! mount, more instances than the engine was sized for) nothing changes and
//! the old apps keep serving.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;
use tokio::sync::Mutex;
use wasmhost_config::reload::{ReloadPlan, Step};
use wasmhost_reload::AppSlot;
use wasmhost_runtime::Runtime;
use wasmhost_server::Router;
use wasmhost_spec::{AppSpec, Mount};

/// An app ready to be loaded: its spec (a Python app already built), its
/// mount, and how it is kept current.
pub struct AppPlan {
    /// What the app is.
    pub spec: AppSpec,
    /// Which requests it serves.
    pub mount: Mount,
    /// What reloads it.
    pub mode: Mode,
}

/// How an app is kept current.
pub enum Mode {
    /// Reload on SIGHUP and POST /admin/reload only.
    Serve,
    /// Also reload when the module file changes.
    ServeWatched,
    /// `wasmhost dev`: the module is the dev loader; restart on changes in
    /// the app's source directory, reinstall `deps` when its
    /// `requirements.txt` changes.
    Dev { src_dir: PathBuf, deps: wasmhost_dev::Deps },
}

impl Mode {
    /// Whether something watches the app's files and reloads it.
    fn watched(&self) -> bool {
        !matches!(self, Mode::Serve)
    }
}

/// What the engine was sized for: a config reload that needs more is
/// refused (a restart applies it).
#[derive(Clone, Copy, Debug)]
pub struct Capacity {
    /// Component instances, over all apps.
    pub instances: u32,
    /// Largest per-app memory limit.
    pub memory_bytes: usize,
}

impl Capacity {
    /// What `apps` need: for each, its busy and ready instances and one
    /// spare, twice over (during a reload the old and new versions overlap).
    pub fn needed(apps: &[AppPlan]) -> Result<Self> {
        let instances: usize =
            apps.iter().map(|app| 2 * (app.spec.limits.max_instances + app.spec.limits.min_instances + 1)).sum();
        Ok(Self {
            instances: u32::try_from(instances).context("too many instances in all")?,
            memory_bytes: apps.iter().map(|app| app.spec.limits.memory_limit).max().unwrap_or(0),
        })
    }

    /// Room for a config reload to add apps or raise limits: twice the
    /// instances, and at least the default memory limit.
    pub fn with_headroom(self) -> Self {
        Self {
            instances: self.instances.saturating_mul(2),
            memory_bytes: self.memory_bytes.max(wasmhost_spec::Limits::default().memory_limit),
        }
    }

    fn check(self, needed: Self) -> Result<()> {
        anyhow::ensure!(
            needed.instances <= self.instances,
            "the apps need {} instance slots, but this process was started with room for {}; restart wasmhost \
             to apply this config",
            needed.instances,
            self.instances
        );
        anyhow::ensure!(
            needed.memory_bytes <= self.memory_bytes,
            "a memory_limit of {} bytes is more than the {} this process was started with; restart wasmhost to \
             apply this config",
            needed.memory_bytes,
            self.memory_bytes
        );
        Ok(())
    }
}

/// The live apps of a process, and the router over them.
pub struct Tenants {
    runtime: Runtime,
    capacity: Capacity,
    router: Arc<Router>,
    /// Held across a whole reload, so reloads apply one at a time.
    live: Mutex<Vec<Tenant>>,
}

/// An app being served.
struct Tenant {
    spec: AppSpec,
    watched: bool,
    mount: Mount,
    slot: Arc<AppSlot>,
    /// Keeps the app current while it lives (file or source watching).
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Tenants {
    /// Loads every app of `apps` (all or nothing) and routes to them.
    pub async fn start(runtime: Runtime, capacity: Capacity, apps: Vec<AppPlan>) -> Result<Self> {
        let mut live = Vec::new();
        for app in apps {
            live.push(start(&runtime, app, None).await?);
        }
        let router = Arc::new(Router::new(mounts(&live))?);
        Ok(Self { runtime, capacity, router, live: Mutex::new(live) })
    }

    /// The router over the live apps.
    pub fn router(&self) -> Arc<Router> {
        self.router.clone()
    }

    /// Makes `apps` the live set, loading only what was added or changed;
    /// on any error nothing changes. Returns the names added, changed,
    /// removed and kept.
    pub async fn apply(&self, apps: Vec<AppPlan>) -> Result<serde_json::Value> {
        self.capacity.check(Capacity::needed(&apps)?)?;
        let mut live = self.live.lock().await;
        let plan = {
            let key = |spec: &AppSpec, watched: bool| (spec.clone(), watched);
            let now: Vec<_> = live.iter().map(|t| (t.spec.name.as_str(), key(&t.spec, t.watched))).collect();
            let next: Vec<_> = apps.iter().map(|a| (a.spec.name.as_str(), key(&a.spec, a.mode.watched()))).collect();
            ReloadPlan::new(&now, &next)
        };

        // Load, leaving the live set untouched until all is well.
        let mut next = Vec::new();
        for (app, step) in apps.into_iter().zip(&plan.steps) {
            next.push(match *step {
                Step::Keep(i) => Next::Keep(i, app.mount),
                Step::Load(replaces) => {
                    let previous = replaces.map(|i| live[i].slot.clone());
                    Next::Load(Box::new(start(&self.runtime, app, previous.as_deref()).await?))
                }
            });
        }
        let mounts = next
            .iter()
            .map(|entry| match entry {
                Next::Keep(i, mount) => (mount.clone(), live[*i].slot.clone()),
                Next::Load(tenant) => (tenant.mount.clone(), tenant.slot.clone()),
            })
            .collect();
        self.router.replace(mounts)?;

        // Commit.
        let mut old: Vec<Option<Tenant>> = std::mem::take(&mut *live).into_iter().map(Some).collect();
        for entry in next {
            match entry {
                Next::Keep(i, mount) => {
                    if let Some(mut tenant) = old[i].take() {
                        tenant.mount = mount;
                        live.push(tenant);
                    }
                }
                Next::Load(tenant) => live.push(*tenant),
            }
        }
        Ok(json!({ "added": plan.added, "changed": plan.changed, "removed": plan.removed, "kept": plan.kept }))
    }
}

/// What a config reload does with one app of the new file.
enum Next {
    /// Keeps the live app at this index, on this mount.
    Keep(usize, Mount),
    /// Serves a newly loaded app (boxed: a `Tenant` is large).
    Load(Box<Tenant>),
}

/// The mounts of `tenants`, in order.
fn mounts(tenants: &[Tenant]) -> Vec<(Mount, Arc<AppSlot>)> {
    tenants.iter().map(|tenant| (tenant.mount.clone(), tenant.slot.clone())).collect()
}

/// Loads `app` (carrying over what its capabilities keep from `previous`,
/// the app it replaces) and starts what keeps it current (per its mode).
async fn start(runtime: &Runtime, app: AppPlan, previous: Option<&AppSlot>) -> Result<Tenant> {
    let (name, module) = (app.spec.name.clone(), app.spec.module.clone());
    let watched = app.mode.watched();
    let slot = AppSlot::load(runtime, app.spec.clone(), previous)
        .await
        .with_context(|| format!("cannot serve {} (app `{name}`)", module.display()))?;
    let watcher = match app.mode {
        Mode::Serve => None,
        Mode::ServeWatched => Some(wasmhost_reload::watch(slot.clone())?),
        Mode::Dev { src_dir, deps } => {
            if let Err(err) = wasmhost_dev::probe(&slot.current(), &src_dir).await {
                tracing::warn!(app = %name, "{err:#}");
            }
            Some(wasmhost_dev::watch_sources(slot.clone(), src_dir, deps)?)
        }
    };
    Ok(Tenant { spec: app.spec, watched, mount: app.mount, slot, _watcher: watcher })
}
