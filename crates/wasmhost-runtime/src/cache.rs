//! An on-disk cache of compiled components.
//!
//! Cranelift needs ~9 s to compile a Python component; loading the compiled
//! artifact takes milliseconds. Artifacts are keyed by the SHA-256 of the
//! module bytes and the engine's compatibility hash (wasmtime version, target
//! and every setting that changes code generation), so a stale artifact is
//! never loaded. Each artifact carries the SHA-256 of its own contents,
//! checked before it is deserialized, and is read into memory (never mapped),
//! so a truncated or rewritten file can only cause a recompile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Cranelift's incremental compilation cache on disk, one file per compiled
/// function, under `<cache dir>/incremental`. A rebuilt Python component
/// differs from the previous build mostly in data (the interpreter's code is
/// the same), so recompiling it reuses most functions.
#[derive(Debug)]
pub struct IncrementalCache {
    dir: PathBuf,
}

impl IncrementalCache {
    /// The incremental cache that belongs with the artifact cache in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.join("incremental") }
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        let name = hex::encode(Sha256::digest(key));
        self.dir.join(&name[..2]).join(&name[2..])
    }
}

impl wasmtime::CacheStore for IncrementalCache {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        std::fs::read(self.path(key)).ok().map(std::borrow::Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let path = self.path(key);
        let Some(dir) = path.parent() else { return false };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::create_dir_all(dir).is_ok()
            && std::fs::write(&tmp, value).is_ok()
            && std::fs::rename(&tmp, &path).is_ok()
    }
}

/// Length of the integrity trailer appended to each artifact.
const TRAILER_LEN: usize = 32;

/// A directory of compiled components.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// A compiled component and how it was obtained.
pub struct Compiled {
    /// The component, ready to link.
    pub component: Component,
    /// Hex SHA-256 of the module bytes it was compiled from.
    pub digest: String,
    /// Whether it came from the cache rather than from Cranelift.
    pub cache_hit: bool,
}

impl CompileCache {
    /// A cache in `dir`, created on first write.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir: Some(dir) }
    }

    /// The directory artifacts are stored in, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A cache that never stores anything: every load compiles.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// The default cache directory: `$WASMHOST_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/wasmhost`, else `~/.cache/wasmhost`.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("WASMHOST_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(dir).join("wasmhost");
        }
        match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cache").join("wasmhost"),
            None => std::env::temp_dir().join("wasmhost-cache"),
        }
    }

    /// Compiles `bytes` (a component binary whose [`module_digest`] is
    /// `digest`), or loads the artifact compiled earlier from the same bytes
    /// by an identical engine.
    ///
    /// This is CPU-heavy: call it from a blocking thread.
    pub fn load(&self, engine: &Engine, bytes: &[u8], digest: String) -> Result<Compiled> {
        let path = self.dir.as_ref().map(|dir| artifact_path(dir, engine, &digest));
        if let Some(path) = &path {
            if let Some(component) = read_artifact(engine, path) {
                return Ok(Compiled { component, digest, cache_hit: true });
            }
        }
        let component = Component::new(engine, bytes)
            .map_err(anyhow::Error::from)
            .context("the module is not a valid WebAssembly component")?;
        if let Some(path) = &path {
            if let Err(err) = write_artifact(&component, path) {
                tracing::warn!(path = %path.display(), "could not write the compile cache: {err:#}");
            }
        }
        Ok(Compiled { component, digest, cache_hit: false })
    }
}

/// Hex SHA-256 of a module's bytes: the identity of a version of an app.
pub fn module_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `<dir>/<module digest>-<engine hash>.cwasm`.
fn artifact_path(dir: &Path, engine: &Engine, digest: &str) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
}

/// Reads and checks an artifact; any problem is a miss.
fn read_artifact(engine: &Engine, path: &Path) -> Option<Component> {
    let data = std::fs::read(path).ok()?;
    if data.len() < TRAILER_LEN {
        return None;
    }
    let (artifact, trailer) = data.split_at(data.len() - TRAILER_LEN);
    if Sha256::digest(artifact).as_slice() != trailer {
        tracing::warn!(path = %path.display(), "compile cache entry is corrupt; recompiling");
        return None;
    }
    // SAFETY: the bytes were produced by `Component::serialize` of this
    // process's engine configuration (the file name carries the engine's
    // compatibility hash) and their integrity was checked just above; they
    // live in memory owned by wasmtime from here on, so later changes to the
    // file cannot affect the loaded code.
    match unsafe { Component::deserialize(engine, artifact) } {
        Ok(component) => Some(component),
        Err(err) => {
            tracing::warn!(path = %path.display(), "compile cache entry unusable ({err}); recompiling");
            None
        }
    }
}

/// Writes an artifact atomically: temporary file, then rename.
fn write_artifact(component: &Component, path: &Path) -> Result<()> {
    let dir = path.parent().context("cache path has no parent directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create cache directory {}", dir.display()))?;
    let mut data = component.serialize().map_err(anyhow::Error::from)?;
    let trailer = Sha256::digest(&data);
    data.extend_from_slice(&trailer);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &data).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny valid component, in text form.
    const COMPONENT: &str = "(component (core module (func (export \"f\"))))";

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wasmhost-cache-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn artifacts(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir).map_or(Vec::new(), |entries| entries.map(|e| e.unwrap().path()).collect())
    }

    #[test]
    fn second_load_is_a_hit_and_a_corrupt_artifact_is_recompiled() {
        let engine = Engine::default();
        let dir = temp_dir("hit");
        let cache = CompileCache::new(dir.clone());
        let bytes = COMPONENT.as_bytes();

        let first = cache.load(&engine, bytes, module_digest(bytes)).unwrap();
        assert!(!first.cache_hit);
        assert_eq!(artifacts(&dir).len(), 1);
        assert!(cache.load(&engine, bytes, module_digest(bytes)).unwrap().cache_hit);

        let path = &artifacts(&dir)[0];
        let mut data = std::fs::read(path).unwrap();
        data[10] ^= 0xff;
        std::fs::write(path, &data).unwrap();
        assert!(!cache.load(&engine, bytes, module_digest(bytes)).unwrap().cache_hit, "corrupt entry must not load");
        assert!(cache.load(&engine, bytes, module_digest(bytes)).unwrap().cache_hit, "and is rewritten");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_module_is_an_error_and_disabled_cache_stores_nothing() {
        let engine = Engine::default();
        let cache = CompileCache::disabled();
        let err = cache.load(&engine, b"not wasm", module_digest(b"not wasm")).err().expect("garbage must not compile");
        assert!(format!("{err:#}").contains("not a valid WebAssembly component"));
        let bytes = COMPONENT.as_bytes();
        assert!(!cache.load(&engine, bytes, module_digest(bytes)).unwrap().cache_hit);
        assert!(!cache.load(&engine, bytes, module_digest(bytes)).unwrap().cache_hit);
    }
}
