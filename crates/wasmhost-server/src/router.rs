//! Chooses the app that serves a request: by `Host` header, then by the
//! longest matching path prefix of the apps' [`Mount`]s.

use std::sync::Arc;

use arc_swap::ArcSwap;
use http::Request;
use wasmhost_reload::AppSlot;
use wasmhost_runtime::AppVersion;
use wasmhost_spec::Mount;

/// Maps requests to apps.
///
/// Apps mounted on the request's host are the candidates; when none is,
/// the apps mounted on no host are. Among the candidates the longest
/// matching path prefix wins.
///
/// The mount table can be replaced while requests are being routed (a
/// config reload); each request sees either the old table or the new one.
pub struct Router {
    mounts: ArcSwap<Vec<(Mount, Arc<AppSlot>)>>,
}

/// The app chosen for a request.
pub struct Chosen {
    /// The version of the app serving the request; held for the whole
    /// request, so a reload never switches versions under it.
    pub app: Arc<AppVersion>,
    /// Bytes of the request's path its mount strips before the app sees it
    /// (0 when the mount keeps the path).
    pub strip: usize,
}

impl Router {
    /// A router sending everything to the app in `slot`.
    pub fn single(slot: Arc<AppSlot>) -> Self {
        Self { mounts: ArcSwap::from_pointee(vec![(Mount::default(), slot)]) }
    }

    /// A router over `mounts`; fails when two apps claim the same host and
    /// prefix, since one of them could never be reached.
    pub fn new(mounts: Vec<(Mount, Arc<AppSlot>)>) -> anyhow::Result<Self> {
        check_mounts(&mounts)?;
        Ok(Self { mounts: ArcSwap::from_pointee(mounts) })
    }

    /// Routes by `mounts` from now on, or fails as [`Router::new`] does and
    /// keeps routing as before.
    pub fn replace(&self, mounts: Vec<(Mount, Arc<AppSlot>)>) -> anyhow::Result<()> {
        check_mounts(&mounts)?;
        self.mounts.store(Arc::new(mounts));
        Ok(())
    }

    /// The app serving `request` now, or `None` when no app serves it.
    pub fn choose<B>(&self, request: &Request<B>) -> Option<Chosen> {
        let mounts = self.mounts.load();
        let (slot, strip) = if let [(mount, slot)] = mounts.as_slice() {
            if mount.hosts.is_empty() && mount.prefix == "/" {
                (slot, 0)
            } else {
                select(&mounts, &request_host(request).unwrap_or_default(), request.uri().path())?
            }
        } else {
            select(&mounts, &request_host(request).unwrap_or_default(), request.uri().path())?
        };
        Some(Chosen { app: slot.current(), strip })
    }

    /// Every app slot, for reloads and introspection.
    pub fn slots(&self) -> Vec<Arc<AppSlot>> {
        self.mounts.load().iter().map(|(_, slot)| slot.clone()).collect()
    }
}

/// The app of `mounts` serving `host` (lower case, no port) and `path`, and
/// how much of the path its mount strips.
fn select<'a, T>(mounts: &'a [(Mount, T)], host: &str, path: &str) -> Option<(&'a T, usize)> {
    let named = mounts.iter().any(|(mount, _)| mount.names_host(host));
    let (len, mount, app) = mounts
        .iter()
        .filter(|(mount, _)| if named { mount.names_host(host) } else { mount.hosts.is_empty() })
        .filter_map(|(mount, app)| mount.prefix_match(path).map(|len| (len, mount, app)))
        .max_by_key(|(len, _, _)| *len)?;
    Some((app, if mount.strip_prefix { len } else { 0 }))
}

/// Fails when two of `mounts` claim the same host and prefix.
fn check_mounts(mounts: &[(Mount, Arc<AppSlot>)]) -> anyhow::Result<()> {
    for (i, (mount, slot)) in mounts.iter().enumerate() {
        for (other, other_slot) in &mounts[..i] {
            if overlap(mount, other) {
                anyhow::bail!(
                    "apps `{}` and `{}` both serve prefix {} on the same host; give one of them another \
                     `prefix` or `hosts`",
                    other_slot.name(),
                    slot.name(),
                    mount.prefix
                );
            }
        }
    }
    Ok(())
}

/// Whether `a` and `b` claim the same host and prefix.
fn overlap(a: &Mount, b: &Mount) -> bool {
    let same_hosts = {
        let (mut x, mut y) = (a.hosts.clone(), b.hosts.clone());
        x.sort();
        y.sort();
        x == y || x.iter().any(|host| y.contains(host))
    };
    same_hosts && a.prefix.trim_end_matches('/') == b.prefix.trim_end_matches('/')
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

    fn mount(hosts: &[&str], prefix: &str, strip_prefix: bool) -> Mount {
        Mount { hosts: hosts.iter().map(|h| h.to_string()).collect(), prefix: prefix.to_owned(), strip_prefix }
    }

    #[test]
    fn hosts_first_then_the_longest_prefix() {
        let mounts = [
            (mount(&[], "/", false), "root"),
            (mount(&[], "/api", true), "api"),
            (mount(&[], "/api/v2", false), "v2"),
            (mount(&["shop.test"], "/", false), "shop"),
            (mount(&["shop.test"], "/admin", false), "shop-admin"),
        ];
        let pick = |host, path| select(&mounts, host, path).map(|(app, strip)| (*app, strip));
        assert_eq!(pick("other.test", "/x"), Some(("root", 0)));
        assert_eq!(pick("other.test", "/api/orders"), Some(("api", 4)), "a stripping mount strips its prefix");
        assert_eq!(pick("other.test", "/api/v2/orders"), Some(("v2", 0)));
        assert_eq!(pick("other.test", "/apix"), Some(("root", 0)), "prefixes match whole segments");
        assert_eq!(pick("shop.test", "/api/orders"), Some(("shop", 0)), "a named host sees only its own apps");
        assert_eq!(pick("shop.test", "/admin/users"), Some(("shop-admin", 0)));
        let hosted = [(mount(&["a.test"], "/", false), "a")];
        assert_eq!(select(&hosted, "b.test", "/").map(|(app, _)| *app), None, "no app for an unnamed host");
    }

    #[test]
    fn two_apps_on_one_host_and_prefix_overlap() {
        assert!(overlap(&mount(&[], "/api/", false), &mount(&[], "/api", true)));
        assert!(overlap(&mount(&["a", "b"], "/", false), &mount(&["b"], "/", false)));
        assert!(!overlap(&mount(&["a"], "/", false), &mount(&["b"], "/", false)));
        assert!(!overlap(&mount(&[], "/", false), &mount(&["b"], "/", false)));
        assert!(!overlap(&mount(&[], "/api", false), &mount(&[], "/", false)));
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
