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

    /// Compiles `bytes` (a component binary), or loads the artifact compiled
    /// earlier from the same bytes by an identical engine.
    ///
    /// This is CPU-heavy: call it from a blocking thread.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<Compiled> {
        let digest = hex::encode(Sha256::digest(bytes));
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
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create cache directory {}", dir.display()))?;
    let mut data = component.serialize().map_err(anyhow::Error::from)?;
    let trailer = Sha256::digest(&data);
    data.extend_from_slice(&trailer);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &data).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(())
}
