//! The memory limiter that enforces an app's limits in a store.

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
