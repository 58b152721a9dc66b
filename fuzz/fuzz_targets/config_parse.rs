//! Fuzzes `Config::parse`, the `wasmhost.toml` parser, on arbitrary text
//! (the longest valid UTF-8 prefix of the input).
//!
//! Asserts that it returns `Ok` or `Err` and never panics, that its error
//! formats, and that an accepted config holds what `Config::parse`
//! promises: at least one app, unique names, prefixes starting with `/`,
//! and at least one instance and connection allowed.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmhost_config::Config;

fuzz_target!(|text: &str| {
    // `dirs` entries are checked with a stat: "/" lets some exist.
    let config = match Config::parse(text, Path::new("/")) {
        Ok(config) => config,
        Err(e) => {
            assert!(!format!("{e:#}").is_empty());
            return;
        }
    };
    assert!(!config.apps.is_empty());
    assert!(config.server.options.max_connections >= 1);
    let mut names = HashSet::new();
    for app in &config.apps {
        assert!(
            names.insert(app.name.as_str()),
            "duplicate app {:?}",
            app.name
        );
        assert!(app.route.prefix.starts_with('/'), "{:?}", app.route.prefix);
        assert!(app.limits.max_instances >= 1);
    }
});
