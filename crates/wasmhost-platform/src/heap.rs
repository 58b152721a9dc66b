//! Counting the heap memory a piece of work leaves allocated, so the host
//! can measure what a compiled schema holds instead of guessing it.
//!
//! [`CountingAllocator`] wraps the system allocator and keeps, per thread,
//! the bytes that thread allocated minus the bytes it freed. [`retained_by`]
//! runs some work and reports how much of what it allocated on the calling
//! thread it did not free: for a schema compiled on a helper thread, the
//! size of the validator it returns.
//!
//! This crate installs it as the process's global allocator, so the count
//! is there in every binary and test that links the platform (a binary that
//! sets another global allocator fails to link rather than silently
//! measuring nothing). It costs a thread-local add per allocation and per
//! free; docs/reliability.md has the measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the bytes each thread allocates and
/// frees.
pub struct CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

thread_local! {
    /// Bytes this thread allocated minus bytes it freed, wrapping: a thread
    /// that frees memory another thread allocated goes "below zero".
    /// `const` and without a destructor, so reading it never allocates and
    /// works while a thread is being torn down.
    static NET_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// Adds `delta` (wrapping, so a subtraction is the two's complement) to
/// this thread's count.
fn count(delta: usize) {
    // `try_with` cannot fail for a `const` thread-local without a
    // destructor; ignoring the error keeps the allocator panic-free anyway.
    let _ = NET_BYTES.try_with(|net| net.set(net.get().wrapping_add(delta)));
}

// SAFETY: every method forwards to `System` with the same arguments and
// returns what it returned; counting touches only a thread-local `Cell`.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator)
        // with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        count(layout.size().wrapping_neg());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is valid for `layout`'s
        // alignment, as the caller guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size.wrapping_sub(layout.size()));
        }
        new
    }
}

/// This thread's allocated-minus-freed byte count (wrapping).
fn net_bytes() -> usize {
    NET_BYTES.try_with(Cell::get).unwrap_or(0)
}

/// Runs `work` and returns its result with the bytes it allocated on this
/// thread and did not free (0 if it freed more than it allocated). What
/// other threads allocate meanwhile is not counted.
pub fn retained_by<R>(work: impl FnOnce() -> R) -> (R, usize) {
    let before = net_bytes();
    let result = work();
    let retained = net_bytes().wrapping_sub(before);
    // A "negative" difference: `work` freed memory allocated before it.
    (result, if retained > usize::MAX / 2 { 0 } else { retained })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_work_keeps_and_not_what_it_frees() {
        let (kept, bytes) = retained_by(|| {
            let scratch = vec![0u8; 1 << 20];
            drop(std::hint::black_box(scratch));
            let mut grown = Vec::<u8>::with_capacity(16);
            grown.extend_from_slice(&[1; 1000]);
            (vec![7u8; 3000], grown)
        });
        assert_eq!(bytes, kept.0.capacity() + kept.1.capacity());
        let (_, freed) = retained_by(move || drop(kept));
        assert_eq!(freed, 0, "freeing is never a negative size");
        let (zeroed, bytes) = retained_by(|| vec![0u64; 512]);
        assert_eq!(bytes, zeroed.capacity() * 8);
    }

    #[test]
    fn other_threads_are_not_counted() {
        let (_, bytes) = retained_by(|| std::thread::spawn(|| vec![0u8; 1 << 20]).join());
        assert!(bytes < 1 << 20, "{bytes}");
    }
}
