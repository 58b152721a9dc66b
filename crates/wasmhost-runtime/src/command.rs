//! `wasmhost run`: Python run in an app's sandbox instead of serving it (a
//! migration, a management command, a script), through the app's
//! `wasmhost:platform/command` export.
//!
//! The command gets an instance of its own, made exactly as a serving
//! instance is (the same capabilities from the same [`AppSpec`]: databases,
//! buckets, config, environment, directories, outbound policy, memory
//! limit), except that its stdin, stdout and stderr are this process's and
//! its time is not limited: it runs until it returns or the process is
//! stopped.

use std::time::Duration;

use anyhow::{Context as _, Result};
use wasmhost_platform::CommandExport;
use wasmhost_spec::AppSpec;

use crate::app::read_module;
use crate::capability::Apps;
use crate::engine::Runtime;
use crate::store::StoreData;

/// Guest time a command may use: as good as unlimited.
const COMMAND_TIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Runs `args` (as for `python`) in a new instance of the app `spec`
/// describes, on this process's terminal; the command's exit status.
pub async fn run_command(runtime: &Runtime, spec: &AppSpec, args: &[String]) -> Result<u8> {
    let bytes = read_module(&spec.module)?;
    let (component, _) = runtime.load(bytes, &spec.module).await?;
    let command = CommandExport::new(component.pre.instance_pre())?;
    let mut apps = Apps::new(spec, None)?;
    apps.wasi.use_terminal();
    let mut store = StoreData::new_store(runtime.engine(), &apps, spec.limits.memory_limit, COMMAND_TIME)?;
    let instance = component
        .pre
        .instance_pre()
        .instantiate_async(&mut store)
        .await
        .map_err(anyhow::Error::from)
        .context("the component failed to instantiate")?;
    let status = command.run(&mut store, &instance, args).await;
    if store.data().limiter.exhausted() {
        return status.context(format!(
            "the command ran out of memory (memory_limit {} MiB); raise --memory-limit",
            spec.limits.memory_limit >> 20
        ));
    }
    status
}
