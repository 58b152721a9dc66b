//! Rebuilds the crate when the embedded WIT or SDK files change (including
//! files added or removed, which `include_dir!` alone does not notice).
fn main() {
    println!("cargo:rerun-if-changed=../../wit");
    println!("cargo:rerun-if-changed=../../guests/python/wasmhost");
}
