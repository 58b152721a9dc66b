//! Chooses the app that serves a request: by `Host` header, then by the
//! longest matching path prefix.

use std::sync::Arc;

use arc_swap::ArcSwap;

use http::Request;
use wasmhost_reload::AppSlot;
use wasmhost_runtime::AppVersion;

/// Which requests an app serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
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

impl Default for Route {
    fn default() -> Self {
        Self { hosts: Vec::new(), prefix: "/".to_owned(), strip_prefix: false }
    }
}

impl Route {
    /// Whether this route names `host` (lower case, no port) explicitly.
    fn names_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|name| name == host)
    }

    /// How well `path` matches the prefix: its length when it matches.
    fn prefix_match(&self, path: &str) -> Option<usize> {
        let prefix = self.prefix.trim_end_matches('/');
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len())
    }
}

/// Maps requests to apps.
///
/// Apps that list the request's host are the candidates; when none does,
/// the apps that list no host are. Among the candidates the longest
/// matching path prefix wins. The path reaches the app unchanged, unless
/// its route strips the prefix.
///
/// The route table can be replaced while requests are being routed (a
/// config reload); each request sees either the old table or the new one.
pub struct Router {
    routes: ArcSwap<Vec<(Route, Arc<AppSlot>)>>,
}

impl Router {
    /// A router sending everything to the app in `slot`.
    pub fn single(slot: Arc<AppSlot>) -> Self {
        Self { routes: ArcSwap::from_pointee(vec![(Route::default(), slot)]) }
    }

    /// A router over `routes`; fails when two apps claim the same host and
    /// prefix, since one of them could never be reached.
    pub fn new(routes: Vec<(Route, Arc<AppSlot>)>) -> anyhow::Result<Self> {
        check_routes(&routes)?;
        Ok(Self { routes: ArcSwap::from_pointee(routes) })
    }

    /// Routes by `routes` from now on, or fails as [`Router::new`] does and
    /// keeps routing as before.
    pub fn replace(&self, routes: Vec<(Route, Arc<AppSlot>)>) -> anyhow::Result<()> {
        check_routes(&routes)?;
        self.routes.store(Arc::new(routes));
        Ok(())
    }

    /// The version of the app serving `request` now, or `None` when no app
    /// serves it; strips the route's prefix from the request's path when the
    /// route says so. The caller holds the app for the whole request, so a
    /// reload never switches versions under a request.
    pub fn route<B>(&self, request: &mut Request<B>) -> Option<Arc<AppVersion>> {
        let routes = self.routes.load();
        if let [(route, slot)] = routes.as_slice() {
            if route.hosts.is_empty() && route.prefix == "/" {
                return Some(slot.current());
            }
        }
        let host = request_host(request).unwrap_or_default();
        let path = request.uri().path();
        let named = routes.iter().any(|(route, _)| route.names_host(&host));
        let (len, route, slot) = routes
            .iter()
            .filter(|(route, _)| if named { route.names_host(&host) } else { route.hosts.is_empty() })
            .filter_map(|(route, slot)| route.prefix_match(path).map(|len| (len, route, slot)))
            .max_by_key(|(len, _, _)| *len)?;
        if route.strip_prefix && len > 0 {
            strip_path(request, len);
        }
        Some(slot.current())
    }

    /// Every app slot, for reloads and introspection.
    pub fn slots(&self) -> Vec<Arc<AppSlot>> {
        self.routes.load().iter().map(|(_, slot)| slot.clone()).collect()
    }
}

/// Fails when two of `routes` claim the same host and prefix.
fn check_routes(routes: &[(Route, Arc<AppSlot>)]) -> anyhow::Result<()> {
    for (i, (route, slot)) in routes.iter().enumerate() {
        for (other, other_slot) in &routes[..i] {
            let same_hosts = {
                let (mut a, mut b) = (route.hosts.clone(), other.hosts.clone());
                a.sort();
                b.sort();
                a == b || a.iter().any(|host| b.contains(host))
            };
            let same_prefix = route.prefix.trim_end_matches('/') == other.prefix.trim_end_matches('/');
            anyhow::ensure!(
                !(same_hosts && same_prefix),
                "apps `{}` and `{}` both serve prefix {} on the same host; give one of them another \
                 `prefix` or `hosts`",
                other_slot.name(),
                slot.name(),
                route.prefix
            );
        }
    }
    Ok(())
}

/// Removes the first `len` bytes of the request's path (a matched prefix);
/// what is left starts with exactly one `/` (an emptied path becomes `/`).
fn strip_path<B>(request: &mut Request<B>, len: usize) {
    let uri = request.uri();
    // `/b//x` leaves `//x`, which a URL parser would read as host `x`.
    let rest = uri.path()[len..].trim_start_matches('/');
    let rest = format!("/{rest}");
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest,
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(value) = path_and_query.parse() {
        parts.path_and_query = Some(value);
        if let Ok(stripped) = http::Uri::from_parts(parts) {
            *request.uri_mut() = stripped;
        }
    }
}

/// The request's host, lower case and without port: from the URI (HTTP/2,
/// absolute-form) or the `Host` header.
fn request_host<B>(request: &Request<B>) -> Option<String> {
    let host = match request.uri().host() {
        Some(host) => host.to_owned(),
        None => {
            let value = request.headers().get(http::header::HOST)?.to_str().ok()?;
            let authority: http::uri::Authority = value.parse().ok()?;
            authority.host().to_owned()
        }
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(hosts: &[&str], prefix: &str) -> Route {
        Route { hosts: hosts.iter().map(|h| h.to_string()).collect(), prefix: prefix.to_owned(), strip_prefix: false }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        let api = route(&[], "/api");
        assert_eq!(api.prefix_match("/api"), Some(4));
        assert_eq!(api.prefix_match("/api/orders"), Some(4));
        assert_eq!(api.prefix_match("/apix"), None);
        assert_eq!(api.prefix_match("/"), None);
        let root = route(&[], "/");
        assert_eq!(root.prefix_match("/anything"), Some(0));
        assert_eq!(route(&[], "/api/").prefix_match("/api/x"), Some(4));
    }

    #[test]
    fn stripping_keeps_the_query() {
        let mut request = Request::builder().uri("/api/orders?x=1").body(()).unwrap();
        strip_path(&mut request, 4);
        assert_eq!(request.uri(), "/orders?x=1");
        let mut request = Request::builder().uri("/api?x=1").body(()).unwrap();
        strip_path(&mut request, 4);
        assert_eq!(request.uri(), "/?x=1");
        let mut request = Request::builder().uri("/api//evil.example/x").body(()).unwrap();
        strip_path(&mut request, 4);
        assert_eq!(request.uri(), "/evil.example/x", "never a leading `//`");
    }

    #[test]
    fn hosts_are_read_without_port_or_case() {
        let request = Request::builder().uri("/x").header("host", "Shop.Example:8080").body(()).unwrap();
        assert_eq!(request_host(&request).as_deref(), Some("shop.example"));
        let request = Request::builder().uri("http://api.example./x").body(()).unwrap();
        assert_eq!(request_host(&request).as_deref(), Some("api.example"));
        let request = Request::builder().uri("/x").header("host", "bad host").body(()).unwrap();
        assert_eq!(request_host(&request), None);
    }
}
