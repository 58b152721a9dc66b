//! Builds Python apps into wasmhost components.
//!
//! [`build`] runs componentize-py with what ships inside the wasmhost binary
//! (the `wasmhost:platform` WIT and the `wasmhost` Python SDK), the app's
//! directory and its pure-Python dependencies from `requirements.txt`, and
//! caches the component under a digest of all of those inputs: an unchanged
//! app builds nothing. [`build_dev_loader`] builds the one component behind
//! `wasmhost dev`, which imports the app's sources at run time instead.
//!
//! In the guest, the app's directory is `/0` and its dependencies `/1`
//! (componentize-py numbers the Python path that way); the host shows both
//! read-only under those paths at run time ([`Build::guest_dirs`]), so
//! package files such as Flask's `templates/` and `static/` can be read.

mod requirements;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use wasmhost_spec::Interface;

use crate::requirements::Requirements;

/// componentize-py version wasmhost is built and tested with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// Where the guest sees the app's directory.
pub const GUEST_APP_DIR: &str = "/0";
/// Where the guest sees the app's dependencies.
pub const GUEST_DEPS_DIR: &str = "/1";
/// The package index requirements are installed from, unless the operator
/// names another in [`INDEX_URL_VAR`].
pub const DEFAULT_INDEX_URL: &str = "https://pypi.org/simple";
/// The environment variable (of the wasmhost process, never of an app) that
/// names the package index requirements are installed from.
pub const INDEX_URL_VAR: &str = "WASMHOST_INDEX_URL";
/// The WIT world apps are built for.
const WORLD: &str = "app";

/// The platform WIT (`wit/`), shipped inside the binary.
static WIT: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../wit");
/// The Python SDK (`guests/python/wasmhost`), shipped inside the binary.
static SDK: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../guests/python/wasmhost");

/// What to build: an app directory and the object in it to serve.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// The app's directory; its `requirements.txt`, if any, lists the
    /// dependencies.
    pub app_dir: PathBuf,
    /// `module` or `module:attribute` (attribute `app` by default), with
    /// `module` importable from `app_dir`.
    pub target: String,
    /// How the target is served.
    pub interface: Interface,
    /// Where builds and installed dependencies are cached.
    pub cache_dir: PathBuf,
}

/// A built app.
#[derive(Clone, Debug)]
pub struct Build {
    /// The component.
    pub component: PathBuf,
    /// The app's directory (absolute).
    pub app_dir: PathBuf,
    /// The installed dependencies (empty without `requirements.txt`).
    pub deps_dir: PathBuf,
    /// Whether the component came from the cache.
    pub cached: bool,
}

impl Build {
    /// The directories the guest must see at run time, as `(host, guest)`.
    pub fn guest_dirs(&self) -> Vec<(PathBuf, String)> {
        vec![(self.app_dir.clone(), GUEST_APP_DIR.to_owned()), (self.deps_dir.clone(), GUEST_DEPS_DIR.to_owned())]
    }
}

/// Splits `app.py`, `shop:app` or `pkg.mod:attr` into the app directory
/// (for a file path) and the `module:attr` target.
pub fn parse_target(spec: &str, cwd: &Path) -> Result<(PathBuf, String)> {
    let path = Path::new(spec);
    if path.extension().is_some_and(|ext| ext == "py") {
        let file = cwd.join(path);
        anyhow::ensure!(file.is_file(), "{} does not exist", file.display());
        let module = file
            .file_stem()
            .and_then(|stem| stem.to_str())
            .with_context(|| format!("{} is not a valid module name", file.display()))?;
        let dir = file.parent().context("the app file has no directory")?;
        return Ok((std::path::absolute(dir)?, module.to_owned()));
    }
    let (module, attr) = spec.split_once(':').unwrap_or((spec, "app"));
    let valid = |name: &str| {
        !name.is_empty()
            && name.split('.').all(|part| {
                part.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                    && part.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    anyhow::ensure!(
        valid(module) && valid(attr) && !attr.contains('.'),
        "{spec:?} is not an app: pass a Python file (app.py) or module:attribute (shop:app)"
    );
    Ok((std::path::absolute(cwd)?, format!("{module}:{attr}")))
}

/// Builds the app, or returns the component built earlier from the same
/// inputs.
pub fn build(request: &BuildRequest) -> Result<Build> {
    let tool = Componentizer::find()?;
    let cache = std::path::absolute(&request.cache_dir).context("cannot resolve the cache directory")?;
    let app_dir = std::path::absolute(&request.app_dir).context("cannot resolve the app directory")?;
    anyhow::ensure!(app_dir.is_dir(), "{} is not a directory", app_dir.display());
    let deps_dir = install_requirements(&tool, &app_dir.join("requirements.txt"), &cache)?;

    let mut digest = InputDigest::new(&tool.version);
    digest.text("target", &request.target);
    digest.text("interface", request.interface.as_str());
    digest.tree(&app_dir)?;
    digest.tree(&deps_dir)?;
    let key = digest.finish();
    let module = request.target.split(':').next().unwrap_or("app").replace('.', "-");
    let component = cache.join("builds").join(format!("{module}-{key}.wasm"));
    let built =
        Build { component: component.clone(), app_dir: app_dir.clone(), deps_dir: deps_dir.clone(), cached: true };
    if component.is_file() {
        return Ok(built);
    }

    let main = format!(
        "from wasmhost._entry import load\n\
         IncomingHandler, Manifest, Command = load({:?}, interface={:?})\n",
        request.target,
        request.interface.as_str()
    );
    tracing::info!(target = %request.target, interface = %request.interface, "building with componentize-py");
    tool.componentize(&cache, &main, &[&app_dir, &deps_dir], &component)?;
    Ok(Build { cached: false, ..built })
}

/// Builds the `wasmhost dev` loader: the SDK with (nearly) the whole
/// standard library imported, which imports the app named by
/// `$WASMHOST_DEV_TARGET` (interface `$WASMHOST_DEV_INTERFACE`) at run time
/// from `/app`, and its dependencies from `/deps`. Built once per wasmhost
/// and componentize-py version.
pub fn build_dev_loader(cache_dir: &Path) -> Result<PathBuf> {
    let tool = Componentizer::find()?;
    let cache = std::path::absolute(cache_dir).context("cannot resolve the cache directory")?;
    let main = "from wasmhost._entry import load_dev\n\
                IncomingHandler, Manifest, Command = load_dev()\n";
    let mut digest = InputDigest::new(&tool.version);
    digest.text("main", main);
    let component = cache.join("dev-loader").join(format!("loader-{}.wasm", digest.finish()));
    if !component.is_file() {
        tracing::info!("building the dev loader with componentize-py (once per wasmhost version, ~20 s)");
        tool.componentize(&cache, main, &[], &component)?;
    }
    Ok(component)
}

/// Installs the pure-Python packages `requirements` lists into a directory
/// under `cache_dir` keyed by the parsed requirements and the package index,
/// and returns it (an empty directory when there is no such file or it lists
/// nothing). The file may name packages only (paths, URLs, pip options...
/// are refused with the line); pip installs them and their dependencies as
/// CPython 3.14 wheels from the package index (`$WASMHOST_INDEX_URL`, else
/// [`DEFAULT_INDEX_URL`]) and never builds anything. Native extension files
/// are removed: they cannot run in a wasm guest, and packages with a
/// pure-Python fallback (MarkupSafe, for one) then use it. The packages that
/// had any are listed in `native.txt` there, for build errors.
pub fn install_requirements_for(requirements: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let tool = Componentizer::find()?;
    let cache = std::path::absolute(cache_dir).context("cannot resolve the cache directory")?;
    install_requirements(&tool, requirements, &cache)
}

fn install_requirements(tool: &Componentizer, requirements: &Path, cache: &Path) -> Result<PathBuf> {
    let root = cache.join("deps");
    let parsed = Requirements::read(requirements)?;
    if parsed.entries.is_empty() {
        let empty = root.join("none");
        std::fs::create_dir_all(&empty).with_context(|| format!("cannot create {}", empty.display()))?;
        return Ok(empty);
    }
    let index = package_index()?;
    let pip_file = parsed.to_pip_file();
    let mut digest = InputDigest::new(&tool.version);
    digest.text("index", &index);
    digest.text("requirements", &pip_file);
    let dir = root.join(digest.finish());
    if dir.is_dir() {
        return Ok(dir);
    }
    static INSTALLS: AtomicU64 = AtomicU64::new(0);
    let work = root.join(format!("install-{}-{}", std::process::id(), INSTALLS.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&work);
    tracing::info!(requirements = %requirements.display(), "installing dependencies for the guest (CPython 3.14, wheels only)");
    let result =
        install_in(tool, &work, &parsed, &index, cache, requirements).and_then(|packages| publish(&packages, &dir));
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| dir)
}

/// The package index requirements come from: `$WASMHOST_INDEX_URL` (the
/// operator's choice, never the app's), else [`DEFAULT_INDEX_URL`].
fn package_index() -> Result<String> {
    let Some(value) = std::env::var_os(INDEX_URL_VAR) else { return Ok(DEFAULT_INDEX_URL.to_owned()) };
    let index = value.into_string().map_err(|_| anyhow::anyhow!("${INDEX_URL_VAR} is not UTF-8"))?;
    anyhow::ensure!(
        !index.is_empty() && !index.contains(char::is_whitespace),
        "${INDEX_URL_VAR} must be the URL of a package index (such as {DEFAULT_INDEX_URL}), without spaces"
    );
    Ok(index)
}

/// Runs pip in `work` on `parsed` (written there in normalized form), and
/// returns the directory the packages went to. pip is confined to wheels
/// from `index`: `--isolated` and a `-I` interpreter ignore pip's and
/// Python's configuration files and environment variables (which are removed
/// as well), `--only-binary :all:` refuses every sdist (a dependency with no
/// wheel fails the install instead of running its `setup.py`), `--no-input`
/// never waits for a prompt, and `work`, not the app's directory, is the
/// working directory.
fn install_in(
    tool: &Componentizer,
    work: &Path,
    parsed: &Requirements,
    index: &str,
    cache: &Path,
    requirements: &Path,
) -> Result<PathBuf> {
    let file = work.join("requirements.txt");
    let packages = work.join("packages");
    write_file(&file, parsed.to_pip_file().as_bytes())?;
    let mut command = tool.pip()?;
    for (name, _) in std::env::vars_os() {
        let upper = name.to_string_lossy().to_ascii_uppercase();
        if upper.starts_with("PIP_") || upper.starts_with("PYTHON") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(work)
        .args(["install", "--isolated", "--no-input", "--disable-pip-version-check"])
        .args(["--quiet", "--no-compile", "--progress-bar", "off", "--index-url", index])
        .args(["--only-binary", ":all:", "--python-version", "3.14", "--cache-dir"])
        .arg(cache.join("pip"))
        .arg("--target")
        .arg(&packages);
    if parsed.has_hashes() {
        command.arg("--require-hashes");
    }
    let output = command
        .arg("-r")
        .arg(&file)
        .output()
        .with_context(|| format!("cannot run {} -m pip", tool.python.display()))?;
    if !output.status.success() {
        bail!(
            "cannot install the requirements of {} for the guest (pip, CPython 3.14, wheels only, from the \
             package index):\n{}\
             Every requirement and each of its dependencies must have a wheel for CPython 3.14 on the index \
             (${INDEX_URL_VAR}, default {DEFAULT_INDEX_URL}): nothing is built from source. Packages with \
             native code run in a wasm guest only if they fall back to pure Python.",
            requirements.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(packages)
}

/// Drops the native code from freshly installed `packages` and moves them
/// to `dir`, their place in the cache.
fn publish(packages: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(packages).with_context(|| format!("cannot create {}", packages.display()))?;
    let native = strip_native_code(packages)?;
    let listing: String = native.iter().map(|(package, file)| format!("{package}\t{file}\n")).collect();
    std::fs::write(packages.join("native.txt"), listing)?;
    for (package, file) in &native {
        tracing::info!(package, file, "native extension dropped; the package must fall back to pure Python");
    }
    match std::fs::rename(packages, dir) {
        Ok(()) => Ok(()),
        // Another build installed the same requirements meanwhile.
        Err(_) if dir.is_dir() => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot create {}", dir.display())),
    }
}

/// Removes native extension modules under `dir`; returns each as
/// `(distribution, file)`.
fn strip_native_code(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut owners = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(dist) = name.strip_suffix(".dist-info") else { continue };
        let package = dist.rsplit_once('-').map_or(dist, |(package, _)| package).to_owned();
        let record = std::fs::read_to_string(entry.path().join("RECORD")).unwrap_or_default();
        for line in record.lines() {
            if let Some(file) = line.split(',').next() {
                owners.push((file.to_owned(), package.clone()));
            }
        }
    }
    let mut native = Vec::new();
    for file in walk(dir)? {
        let is_native = file.extension().is_some_and(|ext| ext == "so" || ext == "pyd" || ext == "dylib");
        if !is_native {
            continue;
        }
        let relative = file.strip_prefix(dir).unwrap_or(&file).to_string_lossy().into_owned();
        let package = owners
            .iter()
            .find(|(path, _)| *path == relative)
            .map_or_else(|| relative.split('/').next().unwrap_or_default().to_owned(), |(_, p)| p.clone());
        std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
        native.push((package, relative));
    }
    Ok(native)
}

/// A located componentize-py and the Python beside it.
struct Componentizer {
    tool: PathBuf,
    python: PathBuf,
    version: String,
}

impl Componentizer {
    /// Finds componentize-py: beside the running `wasmhost` (where
    /// installing wasmhost's wheel puts both), `$COMPONENTIZE_PY`,
    /// `./.venv/bin/componentize-py`, or `PATH`.
    fn find() -> Result<Self> {
        let beside_exe = std::env::current_exe().ok().map(|exe| exe.with_file_name("componentize-py"));
        let candidates = beside_exe
            .into_iter()
            .chain(std::env::var_os("COMPONENTIZE_PY").map(PathBuf::from))
            .chain([PathBuf::from(".venv/bin/componentize-py")])
            .chain(std::env::var_os("PATH").into_iter().flat_map(|path| {
                std::env::split_paths(&path).map(|dir| dir.join("componentize-py")).collect::<Vec<_>>()
            }));
        let Some(tool) = candidates.into_iter().find(|candidate| candidate.is_file()) else {
            bail!(
                "componentize-py not found (looked beside the wasmhost executable, in $COMPONENTIZE_PY, \
                 ./.venv/bin and PATH); install it with \
                 `python3 -m venv .venv && .venv/bin/pip install componentize-py=={COMPONENTIZE_PY_VERSION}` \
                 (or point COMPONENTIZE_PY at it), or install wasmhost's wheel, which brings it"
            )
        };
        let tool = std::path::absolute(&tool).context("cannot resolve the componentize-py path")?;
        let output =
            Command::new(&tool).arg("--version").output().with_context(|| format!("cannot run {}", tool.display()))?;
        let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        // The venv's Python, for pip; else the one on PATH.
        let python = ["python3", "python"]
            .iter()
            .map(|name| tool.with_file_name(name))
            .find(|path| path.is_file())
            .unwrap_or_else(|| PathBuf::from("python3"));
        Ok(Self { tool, python, version })
    }

    /// `python -m pip` with the Python beside componentize-py, once that
    /// Python is known to have pip (a venv made by `uv venv` has none).
    fn pip(&self) -> Result<Command> {
        let probe = Command::new(&self.python)
            .args(["-I", "-c", "import pip"])
            .output()
            .with_context(|| format!("cannot run {}", self.python.display()))?;
        if !probe.status.success() {
            let python = self.python.display();
            bail!(
                "cannot install the app's requirements.txt: {python} has no pip (wasmhost runs pip with the \
                 Python beside componentize-py, {}, else python3 from PATH); install pip there with \
                 `{python} -m ensurepip`, or for a venv made by uv `uv pip install --python {python} pip` \
                 (`uv venv --seed` makes one with pip)",
                self.tool.display()
            );
        }
        // `-I`: no user site, no PYTHON* variables, no current directory on the path.
        let mut command = Command::new(&self.python);
        command.args(["-I", "-m", "pip"]);
        Ok(command)
    }

    /// Runs componentize-py on `main` (the entry module's source) with
    /// `paths` first on the guest's Python path (as `/0`, `/1`, ...), then
    /// the SDK, writing the component to `output`.
    fn componentize(&self, cache: &Path, main: &str, paths: &[&Path], output: &Path) -> Result<()> {
        let work = cache.join("work").join(format!("build-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let result = self.componentize_in(&work, main, paths, output);
        let _ = std::fs::remove_dir_all(&work);
        result
    }

    fn componentize_in(&self, work: &Path, main: &str, paths: &[&Path], output: &Path) -> Result<()> {
        let wit = work.join("wit");
        let sdk = work.join("sdk");
        let entry = work.join("main");
        write_tree(&WIT, &wit)?;
        write_tree(&SDK, &sdk.join("wasmhost"))?;
        write_file(&entry.join("wasmhost_main.py"), main.as_bytes())?;
        // componentize-py adds $VIRTUAL_ENV's site-packages to the guest's
        // path; an empty one keeps the host's packages out of the guest.
        let venv = work.join("venv");
        std::fs::create_dir_all(venv.join("lib/python3.14/site-packages"))?;
        let tmp = work.join("app.wasm");

        let mut command = Command::new(&self.tool);
        command
            .current_dir(work)
            .env("VIRTUAL_ENV", &venv)
            .env("RUST_BACKTRACE", "0")
            .args(["-q", "-d"])
            .arg(&wit)
            .args(["-w", WORLD, "componentize", "wasmhost_main"]);
        let mut guest_paths = Vec::new();
        for path in paths.iter().copied().chain([sdk.as_path(), entry.as_path()]) {
            command.arg("-p").arg(path);
            guest_paths.push(path.to_path_buf());
        }
        let result =
            command.arg("-o").arg(&tmp).output().with_context(|| format!("cannot run {}", self.tool.display()))?;
        if !result.status.success() {
            let text = String::from_utf8_lossy(&result.stderr);
            bail!("{}", explain_failure(&text, &guest_paths));
        }
        let dir = output.parent().context("the output has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::rename(&tmp, output).with_context(|| format!("cannot write {}", output.display()))
    }
}

/// Turns componentize-py's failure output into the Python error it carries,
/// with guest paths (`/0/app.py`) shown as host paths, and a note about
/// packages whose native code was dropped when the error is an import error.
fn explain_failure(stderr: &str, guest_paths: &[PathBuf]) -> String {
    // componentize-py wraps the guest's traceback in an AssertionError and
    // then prints its own (Rust) causes and backtrace.
    let python = stderr.split_once("AssertionError: ").map(|(_, rest)| rest).unwrap_or(stderr);
    let python = python.split("\nCaused by:").next().unwrap_or(python);
    let python = python.split("\nStack backtrace:").next().unwrap_or(python);
    let mut text = python.trim().to_owned();
    for (index, path) in guest_paths.iter().enumerate() {
        text = text.replace(&format!("\"/{index}/"), &format!("\"{}/", path.display()));
    }
    let mut message = format!("the app failed to build:\n{text}");
    let import_error = text.contains("ModuleNotFoundError") || text.contains("ImportError");
    if import_error {
        let native: Vec<String> = guest_paths
            .iter()
            .filter_map(|dir| std::fs::read_to_string(dir.join("native.txt")).ok())
            .flat_map(|listing| listing.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        if !native.is_empty() {
            message.push_str(
                "\nThese packages ship native code, which cannot run in a wasm guest and was left out; \
                 if the import above is one of theirs, that package has no pure-Python fallback and \
                 must be replaced by a pure-Python one:\n",
            );
            for line in native {
                let (package, file) = line.split_once('\t').unwrap_or((&line, ""));
                message.push_str(&format!("  {package} ({file})\n"));
            }
        }
    }
    message
}

/// SHA-256 over named inputs; the first 16 hex digits name a build.
struct InputDigest(Sha256);

impl InputDigest {
    fn new(tool_version: &str) -> Self {
        let mut digest = Self(Sha256::new());
        digest.text("componentize-py", tool_version);
        digest.text("wasmhost", env!("CARGO_PKG_VERSION"));
        for (name, dir) in [("wit", &WIT), ("sdk", &SDK)] {
            for file in embedded_files(dir) {
                digest.bytes(&format!("{name}/{}", file.path().display()), file.contents());
            }
        }
        digest
    }

    fn bytes(&mut self, name: &str, bytes: &[u8]) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn text(&mut self, name: &str, text: &str) {
        self.bytes(name, text.as_bytes());
    }

    /// Every file under `dir`, by relative path and contents.
    fn tree(&mut self, dir: &Path) -> Result<()> {
        for file in walk(dir)? {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let relative = file.strip_prefix(dir).unwrap_or(&file);
            self.bytes(&relative.to_string_lossy(), &bytes);
        }
        Ok(())
    }

    fn finish(self) -> String {
        hex::encode(self.0.finalize())[..16].to_owned()
    }
}

/// Whether a directory entry is build output or tooling, not app input.
fn skipped(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "__pycache__" | "target" | "node_modules" | "venv")
}

/// The files under `dir`, sorted, skipping [`skipped`] entries.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).with_context(|| format!("cannot list {}", current.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", current.display()))?;
            if skipped(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The files of an embedded directory, without Python caches.
fn embedded_files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut files = Vec::new();
    let mut pending = vec![dir];
    while let Some(current) = pending.pop() {
        for entry in current.entries() {
            if entry.path().components().any(|part| skipped(&part.as_os_str().to_string_lossy())) {
                continue;
            }
            match entry {
                include_dir::DirEntry::Dir(dir) => pending.push(dir),
                include_dir::DirEntry::File(file) => files.push(file),
            }
        }
    }
    files.sort_by(|a, b| a.path().cmp(b.path()));
    files
}

fn write_tree(dir: &Dir<'_>, to: &Path) -> Result<()> {
    for file in embedded_files(dir) {
        write_file(&to.join(file.path()), file.contents())?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a file without a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_files_or_module_attributes() {
        let cwd = std::env::temp_dir();
        assert_eq!(parse_target("shop:app", &cwd).unwrap().1, "shop:app");
        assert_eq!(parse_target("shop", &cwd).unwrap().1, "shop:app");
        assert_eq!(parse_target("pkg.web:create", &cwd).unwrap().1, "pkg.web:create");
        assert!(parse_target("shop:app.x", &cwd).is_err());
        assert!(parse_target("1shop:app", &cwd).is_err());
        assert!(parse_target("missing.py", &cwd).is_err());
    }

    #[test]
    fn failures_show_the_python_error_with_host_paths() {
        let stderr = "warning: x\nTraceback (most recent call last):\n  File \"/x/componentize-py\", line 8\n\
                      AssertionError: Traceback (most recent call last):\n  File \"/0/app.py\", line 3\n    def f(:\n\
                      SyntaxError: invalid syntax\n\nCaused by:\n    SyntaxError\nStack backtrace:\n  0: foo";
        let message = explain_failure(stderr, &[PathBuf::from("/src/shop")]);
        assert!(message.contains("File \"/src/shop/app.py\", line 3"), "{message}");
        assert!(message.contains("SyntaxError: invalid syntax"), "{message}");
        assert!(!message.contains("Caused by") && !message.contains("componentize-py\""), "{message}");
    }

    #[test]
    fn the_sdk_and_wit_are_embedded() {
        assert!(WIT.get_file("platform.wit").is_some());
        assert!(SDK.get_file("_entry.py").is_some());
    }
}
