//! The limits an app runs under, their defaults, and how they are set.

use std::time::Duration;

use bytesize::ByteSize;

/// How instances are shared between requests (`--isolation`, `isolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// A warm pool of instances, each serving many requests in turn. Module
    /// state (globals, caches) carries over between requests of one app.
    Reuse,
    /// Every request gets a never-used instance, prepared in the background.
    Fresh,
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Isolation::Reuse => "reuse",
            Isolation::Fresh => "fresh",
        })
    }
}

/// Every limit an app runs under. [`Limits::default`] holds the documented
/// defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Instance sharing mode.
    pub isolation: Isolation,
    /// Most instances busy at once (the app's concurrency). The default is
    /// twice the CPU count: an instance is busy only while its guest runs
    /// (small request bodies are read and small responses buffered without
    /// holding up the guest), and more instances than that only add cache
    /// pressure (docs/performance.md).
    pub max_instances: usize,
    /// Instances kept ready ahead of demand: warm idle instances in `reuse`
    /// mode, never-used ones in `fresh` mode.
    pub min_instances: usize,
    /// Ready instances beyond `min_instances` that served nothing for this
    /// long are dropped, giving their memory back; with `min_instances = 0`
    /// an idle app holds no instance until its next request.
    pub idle_timeout: Duration,
    /// Most requests waiting for an instance; beyond it requests get `503`.
    pub max_queue: usize,
    /// Longest a request waits for an instance before getting `503`.
    pub queue_timeout: Duration,
    /// Longest a guest may run for one request, CPU or wall time.
    pub request_timeout: Duration,
    /// Most bytes of linear memory an instance may hold, over all memories.
    pub memory_limit: usize,
    /// An instance whose memory grew past this many bytes is retired after
    /// its request.
    pub recycle_memory: usize,
    /// An instance is retired after about this many requests (±10%).
    pub max_requests_per_instance: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_size: u64,
    /// Bytes per second the app's instances may write to stdout and stderr
    /// together (bursts of twice that); the rest is dropped and counted.
    pub guest_log_rate: u64,
    /// Most outbound connections the app's guests hold open at once, over
    /// all its instances (and its old and new versions during a reload).
    /// The default, 64, is ample for an app whose requests call a few
    /// services each (16 instances each fanning out to 4), and bounds what
    /// one tenant can take of the file descriptors all tenants share: 16
    /// apps at 64 use 1,024.
    pub max_outbound_connections: usize,
    /// Most outbound connections one instance holds open at once: one
    /// request fanning out to 16 services in parallel fits, and a guest
    /// stuck in a loop of requests it never waits for cannot take the whole
    /// app's budget from the instances serving other requests.
    pub max_outbound_connections_per_instance: usize,
    /// Longest key-value key, in bytes.
    pub kv_max_key_size: usize,
    /// Largest key-value value, in bytes.
    pub kv_max_value_size: usize,
    /// Most keys the app keeps, over all its embedded buckets.
    pub kv_max_keys: u64,
    /// Largest file of each of the app's SQL databases, in bytes.
    pub sql_max_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            isolation: Isolation::Reuse,
            max_instances: 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            min_instances: 2,
            idle_timeout: Duration::from_secs(300),
            max_queue: 256,
            queue_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            memory_limit: 256 << 20,
            recycle_memory: 128 << 20,
            max_requests_per_instance: 10_000,
            max_body_size: 10 << 20,
            guest_log_rate: 1 << 20,
            max_outbound_connections: 64,
            max_outbound_connections_per_instance: 16,
            kv_max_key_size: 1 << 10,
            kv_max_value_size: 1 << 20,
            kv_max_keys: 100_000,
            sql_max_size: 1 << 30,
        }
    }
}

/// The limits as the command line or a config file sets them: each one given,
/// or left to its default. As command-line flags (`#[command(flatten)]`)
/// every one is given, with [`Limits::default`] as the default `--help`
/// shows; a config file gives those its `[[app]]` table lists.
/// [`LimitSettings::resolve`] turns them into [`Limits`].
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LimitSettings {
    /// `reuse`: warm instances serve many requests; `fresh`: one instance per request.
    #[arg(long, value_enum, default_value = Limits::default().isolation.to_string())]
    pub isolation: Option<Isolation>,
    /// Most instances busy at once (the app's concurrency).
    #[arg(long, default_value = Limits::default().max_instances.to_string())]
    pub max_instances: Option<usize>,
    /// Instances kept ready ahead of demand.
    #[arg(long, default_value = Limits::default().min_instances.to_string())]
    pub min_instances: Option<usize>,
    /// Drop ready instances beyond --min-instances after this long unused.
    #[arg(long, default_value = humantime::Duration::from(Limits::default().idle_timeout).to_string())]
    pub idle_timeout: Option<humantime::Duration>,
    /// Most requests waiting for an instance; beyond it requests get 503.
    #[arg(long, default_value = Limits::default().max_queue.to_string())]
    pub max_queue: Option<usize>,
    /// Longest a request waits for an instance before getting 503.
    #[arg(long, default_value = humantime::Duration::from(Limits::default().queue_timeout).to_string())]
    pub queue_timeout: Option<humantime::Duration>,
    /// Longest a guest may run for one request (CPU and wall time); then 504.
    #[arg(long, default_value = humantime::Duration::from(Limits::default().request_timeout).to_string())]
    pub request_timeout: Option<humantime::Duration>,
    /// Linear memory an instance may hold, summed over its memories.
    #[arg(long, default_value = ByteSize(Limits::default().memory_limit as u64).to_string())]
    pub memory_limit: Option<ByteSize>,
    /// Retire an instance whose memory grew past this after its request.
    #[arg(long, default_value = ByteSize(Limits::default().recycle_memory as u64).to_string())]
    pub recycle_memory: Option<ByteSize>,
    /// Retire an instance after about this many requests (±10%).
    #[arg(long, default_value = Limits::default().max_requests_per_instance.to_string())]
    pub max_requests_per_instance: Option<u64>,
    /// Largest request body; larger ones get 413.
    #[arg(long, default_value = ByteSize(Limits::default().max_body_size).to_string())]
    pub max_body_size: Option<ByteSize>,
    /// Bytes per second an app's instances may print to stdout/stderr
    /// (bursts of twice that); the excess is dropped and counted.
    #[arg(long, default_value = ByteSize(Limits::default().guest_log_rate).to_string())]
    pub guest_log_rate: Option<ByteSize>,
    /// Most outbound connections the app's guests hold open at once, all
    /// instances together; beyond it a request fails in the guest with
    /// connection-limit-reached.
    #[arg(long, default_value = Limits::default().max_outbound_connections.to_string())]
    pub max_outbound_connections: Option<usize>,
    /// Most outbound connections one instance holds open at once.
    #[arg(long, default_value = Limits::default().max_outbound_connections_per_instance.to_string())]
    pub max_outbound_connections_per_instance: Option<usize>,
    /// Longest key-value key; longer ones are refused with an error.
    #[arg(long, default_value = ByteSize(Limits::default().kv_max_key_size as u64).to_string())]
    pub kv_max_key_size: Option<ByteSize>,
    /// Largest key-value value; larger ones are refused with an error.
    #[arg(long, default_value = ByteSize(Limits::default().kv_max_value_size as u64).to_string())]
    pub kv_max_value_size: Option<ByteSize>,
    /// Most keys an app keeps over all its buckets (its quota); a write
    /// of a new key beyond it is refused with an error.
    #[arg(long, default_value = Limits::default().kv_max_keys.to_string())]
    pub kv_max_keys: Option<u64>,
    /// Largest file of each SQL database of an app; a write that would grow
    /// it beyond is refused with an error.
    #[arg(long, default_value = ByteSize(Limits::default().sql_max_size).to_string())]
    pub sql_max_size: Option<ByteSize>,
}

impl LimitSettings {
    /// The limits these settings give: each one set, or its default. Counts
    /// that must be positive are at least 1.
    pub fn resolve(&self) -> anyhow::Result<Limits> {
        let default = Limits::default();
        let size = |value: Option<ByteSize>, default: usize, key: &str| match value {
            None => Ok(default),
            Some(size) => usize::try_from(size.as_u64())
                .map_err(|_| anyhow::anyhow!("`{key}` of {size} is too large for this machine")),
        };
        let duration = |value: Option<humantime::Duration>, default: Duration| value.map_or(default, Into::into);
        Ok(Limits {
            isolation: self.isolation.unwrap_or(default.isolation),
            max_instances: self.max_instances.unwrap_or(default.max_instances).max(1),
            min_instances: self.min_instances.unwrap_or(default.min_instances),
            idle_timeout: duration(self.idle_timeout, default.idle_timeout),
            max_queue: self.max_queue.unwrap_or(default.max_queue),
            queue_timeout: duration(self.queue_timeout, default.queue_timeout),
            request_timeout: duration(self.request_timeout, default.request_timeout),
            memory_limit: size(self.memory_limit, default.memory_limit, "memory_limit")?,
            recycle_memory: size(self.recycle_memory, default.recycle_memory, "recycle_memory")?,
            max_requests_per_instance: self.max_requests_per_instance.unwrap_or(default.max_requests_per_instance),
            max_body_size: self.max_body_size.map_or(default.max_body_size, |size| size.as_u64()),
            guest_log_rate: self.guest_log_rate.map_or(default.guest_log_rate, |size| size.as_u64()),
            max_outbound_connections: self.max_outbound_connections.unwrap_or(default.max_outbound_connections).max(1),
            max_outbound_connections_per_instance: self
                .max_outbound_connections_per_instance
                .unwrap_or(default.max_outbound_connections_per_instance)
                .max(1),
            kv_max_key_size: size(self.kv_max_key_size, default.kv_max_key_size, "kv_max_key_size")?.max(1),
            kv_max_value_size: size(self.kv_max_value_size, default.kv_max_value_size, "kv_max_value_size")?,
            kv_max_keys: self.kv_max_keys.unwrap_or(default.kv_max_keys),
            sql_max_size: self.sql_max_size.map_or(default.sql_max_size, |size| size.as_u64()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        limits: LimitSettings,
    }

    #[test]
    fn no_settings_are_the_defaults_and_so_are_the_flags() {
        assert_eq!(LimitSettings::default().resolve().unwrap(), Limits::default());
        let flags = Flags::try_parse_from(["x"]).unwrap();
        assert_eq!(flags.limits.resolve().unwrap(), Limits::default(), "--help shows the real defaults");
    }

    #[test]
    fn flags_set_limits_and_counts_stay_positive() {
        let flags = Flags::try_parse_from([
            "x",
            "--max-instances",
            "0",
            "--memory-limit",
            "64MiB",
            "--request-timeout",
            "250ms",
            "--isolation",
            "fresh",
        ])
        .unwrap();
        let limits = flags.limits.resolve().unwrap();
        assert_eq!(limits.max_instances, 1);
        assert_eq!(limits.memory_limit, 64 << 20);
        assert_eq!(limits.request_timeout, Duration::from_millis(250));
        assert_eq!(limits.isolation, Isolation::Fresh);
    }
}
