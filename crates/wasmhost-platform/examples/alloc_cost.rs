//! What counting costs: the time of an allocation and its free through
//! the system allocator and through [`CountingAllocator`] (the process's
//! global allocator, see `wasmhost_platform::heap`), in a tight loop of
//! small and medium sizes: the best of 25 rounds of each, alternating, so
//! that other load on the machine hits both alike.
//!
//! ```sh
//! cargo run --release --locked -p wasmhost-platform --example alloc_cost
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Instant;

use wasmhost_platform::heap::CountingAllocator;

/// Nanoseconds per allocate-and-free pair of `size` bytes through
/// `allocator`, over `pairs` pairs.
fn ns_per_pair(allocator: &dyn GlobalAlloc, size: usize, pairs: u32) -> f64 {
    let layout = Layout::from_size_align(size, 8).expect("a valid layout");
    let started = Instant::now();
    for _ in 0..pairs {
        // SAFETY: `layout` has a non-zero size; the pointer is freed with
        // the same layout and allocator, and only if not null.
        unsafe {
            let ptr = black_box(allocator.alloc(layout));
            if !ptr.is_null() {
                allocator.dealloc(ptr, layout);
            }
        }
    }
    started.elapsed().as_nanos() as f64 / f64::from(pairs)
}

fn main() {
    let pairs = 1_000_000;
    for size in [16, 64, 256, 4096] {
        let (mut system, mut counting) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..25 {
            system = system.min(ns_per_pair(&System, size, pairs));
            counting = counting.min(ns_per_pair(&CountingAllocator, size, pairs));
        }
        println!(
            "{size:>5} bytes: system {system:.2} ns, counting {counting:.2} ns per alloc+free (+{:.2} ns)",
            counting - system
        );
    }
}
