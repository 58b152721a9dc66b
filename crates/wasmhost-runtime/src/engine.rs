//! The process-wide wasmtime engine, its epoch ticker, and the [`Runtime`]
//! that app versions are loaded into: the engine, the one linker of every
//! host capability, and the compile cache.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::cache::{module_digest, CompileCache, Compiled};
use crate::store::StoreData;

/// What app versions are loaded into: the engine, the linker of every host
/// capability (built once, see [`crate::capability`]) and the compile
/// cache. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<StoreData>>,
    cache: CompileCache,
    /// The components loaded in this process, by digest: one slot per
    /// module, locked while it loads so that apps loading the same module at
    /// once compile it once, and holding it only while app versions use it.
    loaded: Arc<Mutex<HashMap<String, LoadSlot>>>,
}

type LoadSlot = Arc<tokio::sync::Mutex<Weak<LoadedComponent>>>;

/// A component compiled and linked once per process, shared by every app
/// version whose module has the same bytes: tenants serving one component,
/// a reload of an unchanged file, a renewed app. Its compiled code is in
/// memory once, however many apps use it.
pub struct LoadedComponent {
    /// Hex SHA-256 of the module bytes.
    pub digest: String,
    /// The component, linked against the runtime's linker.
    pub pre: ProxyPre<StoreData>,
}

/// Where [`Runtime::load`] got a component from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadSource {
    /// Another app version already had it loaded.
    Shared,
    /// The compile cache on disk.
    CompileCache,
    /// Cranelift.
    Compiled,
}

impl LoadSource {
    /// The source as a log field.
    pub fn label(self) -> &'static str {
        match self {
            LoadSource::Shared => "shared",
            LoadSource::CompileCache => "cache",
            LoadSource::Compiled => "compiled",
        }
    }
}

impl Runtime {
    /// A runtime on `engine` with the compile cache `cache`.
    pub fn new(engine: Engine, cache: CompileCache) -> Result<Self> {
        let mut linker = Linker::new(&engine);
        crate::capability::add_to_linker(&mut linker)?;
        Ok(Self { engine, linker: Arc::new(linker), cache, loaded: Arc::default() })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with every host capability's imports.
    pub fn linker(&self) -> &Linker<StoreData> {
        &self.linker
    }

    /// The component in `bytes` (read from `path`), linked and ready to
    /// instantiate: the one already loaded from the same bytes if an app
    /// version still uses it, else compiled (or read from the compile cache)
    /// on a blocking thread and checked against the `wasi:http/proxy` world.
    pub async fn load(&self, bytes: Vec<u8>, path: &Path) -> Result<(Arc<LoadedComponent>, LoadSource)> {
        let (digest, bytes) = tokio::task::spawn_blocking(move || (module_digest(&bytes), bytes))
            .await
            .context("the digest thread panicked")?;
        let slot = {
            let mut slots = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget the components no version uses and no load waits for.
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1 || slot.try_lock().is_ok_and(|loaded| loaded.strong_count() > 0)
            });
            slots.entry(digest.clone()).or_default().clone()
        };
        let mut shared = slot.lock().await;
        if let Some(loaded) = shared.upgrade() {
            return Ok((loaded, LoadSource::Shared));
        }
        let compiled =
            self.compile(bytes, digest).await.with_context(|| format!("cannot compile {}", path.display()))?;
        let source = if compiled.cache_hit { LoadSource::CompileCache } else { LoadSource::Compiled };
        let pre = self.linker.instantiate_pre(&compiled.component).map_err(anyhow::Error::from).with_context(|| {
            format!(
                "{} needs imports wasmhost does not provide; build it for the wasi:http/proxy world",
                path.display()
            )
        })?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not export wasi:http/incoming-handler", path.display()))?;
        let loaded = Arc::new(LoadedComponent { digest: compiled.digest, pre });
        *shared = Arc::downgrade(&loaded);
        Ok((loaded, source))
    }

    /// Compiles the component in `bytes`, whose digest is `digest` (or
    /// loads it from the compile cache), on a blocking thread.
    async fn compile(&self, bytes: Vec<u8>, digest: String) -> Result<Compiled> {
        let (engine, cache) = (self.engine.clone(), self.cache.clone());
        tokio::task::spawn_blocking(move || cache.load(&engine, &bytes, digest))
            .await
            .context("the compiler thread panicked")?
    }

    /// How many distinct components are loaded (tests).
    #[cfg(test)]
    pub(crate) fn loaded_components(&self) -> usize {
        let slots = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        slots.values().filter(|slot| slot.try_lock().is_ok_and(|loaded| loaded.strong_count() > 0)).count()
    }
}

/// How often the epoch ticker advances the engine's epoch. A running guest
/// yields to the async runtime once per tick and is interrupted at the first
/// tick past its deadline, so this is also the granularity of timeouts.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core wasm instances a componentize-py component needs per component
/// instance (libc, libpython, the app, adapters, shims), with headroom.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
/// Linear memories per component instance, with headroom.
const MEMORIES_PER_COMPONENT: u32 = 4;
/// Tables per component instance, with headroom.
const TABLES_PER_COMPONENT: u32 = 8;
/// wasmtime's default fiber stack size, kept resident between uses.
const ASYNC_STACK_SIZE: usize = 2 << 20;

/// Settings that shape the engine; they must be the same for every app of a
/// process because they are baked into compiled artifacts and pool slots.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Component instances the pooling allocator can hold at once, over all
    /// apps (busy, idle and pre-instantiated).
    pub max_instances: u32,
    /// Largest size one linear memory may reach, in bytes (the largest
    /// per-app memory limit).
    pub max_memory_bytes: usize,
    /// Bytes of each linear memory kept resident when a pool slot is reused,
    /// so a fresh instance does not page-fault its heap in again.
    pub keep_resident_bytes: usize,
    /// The compile cache directory; Cranelift's incremental compilation
    /// cache is kept inside it. `None` disables both.
    pub cache_dir: Option<std::path::PathBuf>,
}

/// Builds the engine: Cranelift at full optimisation, epoch interruption for
/// CPU limits, and a pooling allocator sized for Python guests.
pub fn build_engine(options: &EngineOptions) -> Result<Engine> {
    let mut pooling = PoolingAllocationConfig::new();
    let instances = options.max_instances.max(1);
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(instances * MEMORIES_PER_COMPONENT)
        .total_tables(instances * TABLES_PER_COMPONENT)
        .total_stacks(instances)
        .total_gc_heaps(instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT * 4)
        .max_memories_per_component(MEMORIES_PER_COMPONENT * 4)
        .max_tables_per_component(TABLES_PER_COMPONENT * 4)
        .max_memories_per_module(2)
        .max_tables_per_module(2)
        .table_elements(100_000)
        .max_component_instance_size(10 << 20)
        .max_core_instance_size(10 << 20)
        .max_memory_size(options.max_memory_bytes)
        .linear_memory_keep_resident(options.keep_resident_bytes)
        .table_keep_resident(1 << 20)
        .async_stack_keep_resident(ASYNC_STACK_SIZE)
        // Measured on a 2-core VM (docs/performance.md): resetting a kept-
        // resident slot by copying the image beats PAGEMAP_SCAN, whose
        // partial reset leaves read-only image pages that fault (with a TLB
        // shootdown) on the next write: 3.3 vs 7.9 ms of CPU per fresh
        // Python instance.
        .pagemap_scan(wasmtime::Enabled::No);

    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    if let Some(dir) = &options.cache_dir {
        let store = std::sync::Arc::new(crate::cache::IncrementalCache::new(dir));
        config.enable_incremental_compilation(store).map_err(anyhow::Error::from)?;
    }
    Engine::new(&config).map_err(anyhow::Error::from).context(
        "failed to create the wasmtime engine; if the pooling allocator cannot reserve \
         address space, lower --max-instances or --memory-limit",
    )
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a dedicated OS thread,
/// so a guest spinning on a runtime worker can never stop the clock.
///
/// The thread holds only a weak reference and ends when the engine is gone.
pub struct EpochTicker {
    _thread: std::thread::JoinHandle<()>,
}

impl EpochTicker {
    /// Starts the ticker for `engine`.
    pub fn start(engine: &Engine) -> Result<Self> {
        let weak = engine.weak();
        let thread = std::thread::Builder::new()
            .name("wasmhost-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            })
            .context("failed to start the epoch ticker thread")?;
        Ok(Self { _thread: thread })
    }
}
