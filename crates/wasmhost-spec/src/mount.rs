//! Which requests an app serves.

/// Where an app is mounted: the hosts and path prefix whose requests it
/// serves (`hosts`, `prefix`, `strip_prefix` in wasmhost.toml).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Host names (without port, lower case) the app serves; empty for any
    /// host not claimed by another app.
    pub hosts: Vec<String>,
    /// Path prefix, matched on segment boundaries: `/api` serves `/api` and
    /// `/api/x`, not `/apix`. `/` serves every path.
    pub prefix: String,
    /// Remove the prefix from the path the app sees (`/api/x` → `/x`), for
    /// apps written to be served at the root.
    pub strip_prefix: bool,
}

impl Default for Mount {
    fn default() -> Self {
        Self { hosts: Vec::new(), prefix: "/".to_owned(), strip_prefix: false }
    }
}

impl Mount {
    /// Whether this mount names `host` (lower case, no port) explicitly.
    pub fn names_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|name| name == host)
    }

    /// How well `path` matches the prefix: its length when it matches.
    pub fn prefix_match(&self, path: &str) -> Option<usize> {
        let prefix = self.prefix.trim_end_matches('/');
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        let api = Mount { prefix: "/api".into(), ..Mount::default() };
        assert_eq!(api.prefix_match("/api"), Some(4));
        assert_eq!(api.prefix_match("/api/orders"), Some(4));
        assert_eq!(api.prefix_match("/apix"), None);
        assert_eq!(api.prefix_match("/"), None);
        assert_eq!(Mount::default().prefix_match("/anything"), Some(0));
        assert_eq!(Mount { prefix: "/api/".into(), ..Mount::default() }.prefix_match("/api/x"), Some(4));
    }
}
