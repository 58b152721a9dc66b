//! Per-app limits and the memory limiter that enforces them in a store.

use std::time::Duration;

/// How instances are shared between requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// A warm pool of instances, each serving many requests in turn. Module
    /// state (globals, caches) carries over between requests of one app.
    Reuse,
    /// Every request gets a never-used instance, prepared in the background.
    Fresh,
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            isolation: Isolation::Reuse,
            max_instances: 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            min_instances: 2,
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
        }
    }
}

/// Caps the linear memory of a store, summed over all of its memories
/// (wasmtime's `StoreLimits` caps each memory on its own), and records
/// whether a growth was refused so a failure can be blamed on memory.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    used: usize,
    exhausted: bool,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes in total.
    pub fn new(limit: usize) -> Self {
        Self { limit, used: 0, exhausted: false }
    }

    /// Bytes of linear memory currently held by the store.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Whether a memory growth was refused since the last reset.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Forgets refused growths; called before each request.
    pub fn reset_exhausted(&mut self) {
        self.exhausted = false;
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.used - current.min(self.used) + desired;
        if total > self.limit {
            self.exhausted = true;
            return Ok(false);
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryLimiter;
    use wasmtime::ResourceLimiter;

    #[test]
    fn limit_applies_to_the_sum_of_all_memories() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap(), "first memory fits");
        assert!(!limiter.memory_growing(0, 60, None).unwrap(), "second memory would exceed the sum");
        assert!(limiter.exhausted());
        assert!(limiter.memory_growing(0, 40, None).unwrap(), "a smaller second memory fits");
        assert_eq!(limiter.used(), 100);
        assert!(!limiter.memory_growing(40, 41, None).unwrap(), "growing past the sum is refused");
    }

    #[test]
    fn reset_clears_only_the_exhausted_flag() {
        let mut limiter = MemoryLimiter::new(10);
        assert!(!limiter.memory_growing(0, 11, None).unwrap());
        limiter.reset_exhausted();
        assert!(!limiter.exhausted());
        assert!(limiter.memory_growing(0, 10, None).unwrap());
        assert_eq!(limiter.used(), 10);
    }
}
