//! The apps a process serves and how the set changes: started once from a
//! plan, then (for `serve --config`) brought in step with the config file
//! whenever it is reloaded.
//!
//! A config reload diffs the new apps against the live ones by name. An app
//! whose module, limits and guest environment are unchanged keeps its slot
//! (and its warm instances), even when its route moved; an added or changed
//! app is loaded next to the old version (a changed one sharing its outbound
//! connection budget unless `max_outbound_connections` changed); a removed
//! app stops receiving
//! requests and its instances go once its last request ends. If anything in
//! the new file fails (a parse error, a build error, a bad module, two apps
//! on one route, more instances than the engine was sized for) nothing
//! changes and the old apps keep serving.

use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;
use tokio::sync::Mutex;
use wasmhost_reload::AppSlot;
use wasmhost_runtime::{AppSpec, CompileCache, ConnectionBudget};
use wasmhost_server::{Route, Router};
use wasmtime::Engine;

use crate::{Mode, PlannedApp};

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
    pub fn needed(apps: &[PlannedApp]) -> Result<Self> {
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
            memory_bytes: self.memory_bytes.max(wasmhost_runtime::Limits::default().memory_limit),
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
    engine: Engine,
    cache: CompileCache,
    capacity: Capacity,
    router: Arc<Router>,
    /// Held across a whole reload, so reloads apply one at a time.
    live: Mutex<Vec<LiveApp>>,
}

/// An app being served.
struct LiveApp {
    spec: AppSpec,
    watched: bool,
    route: Route,
    slot: Arc<AppSlot>,
    /// Keeps the app current while it lives (file or source watching).
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Tenants {
    /// Loads every app of `apps` (all or nothing) and routes to them.
    pub async fn start(engine: Engine, cache: CompileCache, capacity: Capacity, apps: Vec<PlannedApp>) -> Result<Self> {
        let mut live = Vec::new();
        for app in apps {
            let connections = connections_for(&app);
            live.push(start_app(&engine, &cache, app, connections).await?);
        }
        let router = Arc::new(Router::new(routes(&live))?);
        Ok(Self { engine, cache, capacity, router, live: Mutex::new(live) })
    }

    /// The router over the live apps.
    pub fn router(&self) -> Arc<Router> {
        self.router.clone()
    }

    /// Makes `apps` the live set, loading only what was added or changed;
    /// on any error nothing changes. Returns the names added, changed,
    /// removed and kept.
    pub async fn apply(&self, apps: Vec<PlannedApp>) -> Result<serde_json::Value> {
        self.capacity.check(Capacity::needed(&apps)?)?;
        let mut live = self.live.lock().await;

        // Decide and load, leaving the live set untouched until all is well.
        let mut next = Vec::new();
        let mut taken = vec![false; live.len()];
        for app in apps {
            let same = (0..live.len())
                .find(|&i| !taken[i] && live[i].spec == app.spec && live[i].watched == app.mode.watched());
            match same {
                Some(i) => {
                    taken[i] = true;
                    next.push(Next::Keep(i, app.route));
                }
                None => {
                    // A changed app keeps counting the connections its old
                    // version still holds, unless its bound changed.
                    let connections = live
                        .iter()
                        .find(|old| {
                            old.spec.name == app.spec.name
                                && old.spec.limits.max_outbound_connections == app.spec.limits.max_outbound_connections
                        })
                        .map_or_else(|| connections_for(&app), |old| old.slot.connections());
                    next.push(Next::Load(Box::new(start_app(&self.engine, &self.cache, app, connections).await?)));
                }
            }
        }
        let routes = next
            .iter()
            .map(|entry| match entry {
                Next::Keep(i, route) => (route.clone(), live[*i].slot.clone()),
                Next::Load(app) => (app.route.clone(), app.slot.clone()),
            })
            .collect();
        self.router.replace(routes)?;

        // Commit.
        let mut old: Vec<Option<LiveApp>> = std::mem::take(&mut *live).into_iter().map(Some).collect();
        let (mut added, mut changed, mut kept) = (Vec::new(), Vec::new(), Vec::new());
        for entry in next {
            match entry {
                Next::Keep(i, route) => {
                    if let Some(mut app) = old[i].take() {
                        app.route = route;
                        kept.push(app.spec.name.clone());
                        live.push(app);
                    }
                }
                Next::Load(app) => {
                    let name = app.spec.name.clone();
                    if old.iter().flatten().any(|old| old.spec.name == name) {
                        changed.push(name);
                    } else {
                        added.push(name);
                    }
                    live.push(*app);
                }
            }
        }
        let removed: Vec<String> =
            old.into_iter().flatten().map(|app| app.spec.name).filter(|name| !changed.contains(name)).collect();
        Ok(json!({ "added": added, "changed": changed, "removed": removed, "kept": kept }))
    }
}

/// What a config reload does with one app of the new file.
enum Next {
    /// Keeps the live app at this index, on this route.
    Keep(usize, Route),
    /// Serves a newly loaded app (boxed: a `LiveApp` is large).
    Load(Box<LiveApp>),
}

/// The routes of `apps`, in order.
fn routes(apps: &[LiveApp]) -> Vec<(Route, Arc<AppSlot>)> {
    apps.iter().map(|app| (app.route.clone(), app.slot.clone())).collect()
}

/// A new outbound connection budget for `app`, per its limits.
fn connections_for(app: &PlannedApp) -> ConnectionBudget {
    ConnectionBudget::new(Arc::from(app.spec.name.as_str()), app.spec.limits.max_outbound_connections)
}

/// Loads `app`, its versions taking their outbound connections from
/// `connections`, and starts what keeps it current (per its mode).
async fn start_app(
    engine: &Engine,
    cache: &CompileCache,
    app: PlannedApp,
    connections: ConnectionBudget,
) -> Result<LiveApp> {
    let (name, module) = (app.spec.name.clone(), app.spec.module.clone());
    let watched = app.mode.watched();
    let slot = AppSlot::load(engine, cache, app.spec.clone(), connections)
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
    Ok(LiveApp { spec: app.spec, watched, route: app.route, slot, _watcher: watcher })
}
