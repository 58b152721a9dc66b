//! Measures what compiling pattern-heavy JSON Schemas costs the host: the
//! review's attack (issue 11, finding 4) without a guest. Compiles
//! `--schemas` distinct schemas of `--patterns` distinct `pattern`s each
//! through one app's [`SchemaCache`], keeping the compiled ones as a guest
//! keeps its `schema` handles, and prints the time and the process's RSS
//! after each, its peak, and its RSS once everything is dropped.
//!
//! ```sh
//! cargo run --release --locked -p wasmhost-platform --example schema_memory -- --patterns 4000 --schemas 1
//! ```
//!
//! Each pattern is `^<i>\S{100}$`, about 30 bytes of schema text whose
//! automaton is ~230 KB; `--atom '[a-z]'` replaces the `\S` and
//! `--repeat N` the `{100}`.

use std::time::Instant;

use wasmhost_platform::SchemaCache;

/// The schema of `patterns` distinct patterns; `seed` makes it distinct
/// from the other schemas of the run.
fn pattern_heavy_schema(seed: usize, patterns: usize, atom: &str, repeat: usize) -> String {
    let atom = serde_json::Value::from(atom).to_string();
    let atom = &atom[1..atom.len() - 1];
    let properties: Vec<String> =
        (0..patterns).map(|i| format!(r#""p{i}":{{"pattern":"^{seed}x{i}{atom}{{{repeat}}}$"}}"#)).collect();
    format!(r#"{{"type":"object","properties":{{{}}}}}"#, properties.join(","))
}

/// A line of `/proc/self/status` (`VmRSS`, `VmHWM`), in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number, not {v:?}")))
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (patterns, schemas, repeat) =
        (flag(&args, "--patterns", 4000), flag(&args, "--schemas", 1), flag(&args, "--repeat", 100));
    let atom = args.iter().position(|a| a == "--atom").and_then(|i| args.get(i + 1)).map_or(r"\S", String::as_str);
    let cache = SchemaCache::default();
    let mut kept = Vec::new();
    println!("RSS at start: {:.0} MiB", status_mib("VmRSS"));
    let started = Instant::now();
    for seed in 0..schemas {
        let text = pattern_heavy_schema(seed, patterns, atom, repeat);
        let t = Instant::now();
        let result = cache.compile(text.as_bytes());
        let elapsed = t.elapsed();
        let outcome = match result {
            Ok(schema) => {
                let bytes = schema.heap_bytes();
                kept.push(schema);
                format!("compiled, {:.1} MiB measured", bytes as f64 / f64::from(1 << 20))
            }
            Err(e) => format!("refused: {}", e.chars().take(200).collect::<String>()),
        };
        println!(
            "schema {seed}: {} KB, {patterns} patterns, {:.2} s, {outcome}; RSS {:.0} MiB",
            text.len() / 1000,
            elapsed.as_secs_f64(),
            status_mib("VmRSS")
        );
    }
    println!(
        "all {schemas} in {:.2} s; peak RSS {:.0} MiB, RSS after {:.0} MiB",
        started.elapsed().as_secs_f64(),
        status_mib("VmHWM"),
        status_mib("VmRSS")
    );
    drop(kept);
    drop(cache);
    println!("RSS once the schemas and the cache are dropped: {:.0} MiB", status_mib("VmRSS"));
}
