//! `wasi:keyvalue` (`store`, `atomics`, `batch`, 0.2.0-draft): the key-value
//! buckets an app declares (`key_value = ["default"]`, `--key-value NAME`),
//! persistent and shared by all its instances.
//!
//! The app state holds the declared buckets, the app's key-value limits and
//! the backends: the [`embedded`] SQLite file, and a [`redis`] connection
//! per Redis URL, each opened once per app and carried over to each new
//! version on a reload. A guest opens a bucket by
//! name; any name the app did not declare is `no-such-store`, so one app
//! never reaches another's data: each app has its own file, and a bucket
//! name is a value in it, never a path. Keys, values and the app's key count
//! are checked against `kv_max_key_size`, `kv_max_value_size` and
//! `kv_max_keys` before anything is written; a refusal is an `other` error
//! whose text starts with `limit:` and says which limit.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use bytesize::ByteSize;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::Capability;
use crate::metrics::METRICS;
use crate::store::StoreData;
use wasmhost_spec::{AppSpec, Backend, KeyValueSpec};

pub mod embedded;
pub mod redis;

use self::redis::RedisStore;
use embedded::{EmbeddedStore, WriteError};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        inline: "
            package wasmhost:keyvalue-host;

            world keyvalue-host {
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:keyvalue/atomics@0.2.0-draft;
                import wasi:keyvalue/batch@0.2.0-draft;
            }
        ",
        world: "wasmhost:keyvalue-host/keyvalue-host",
        imports: { default: async | trappable },
        require_store_data_send: true,
        with: {
            "wasi:keyvalue/store.bucket": crate::capability::keyvalue::OpenBucket,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use store::{Error, KeyResponse};

/// Most buckets one instance holds open at once (the SDK opens each once).
const MAX_OPEN_BUCKETS: usize = 256;

/// The key-value capability.
pub struct KeyValue;

/// One app's buckets, limits and backends.
pub struct KeyValueApp {
    app: Arc<str>,
    spec: KeyValueSpec,
    embedded: Option<Arc<EmbeddedStore>>,
    /// One per Redis URL the app's buckets name.
    redis: Vec<Arc<RedisStore>>,
    max_key_size: usize,
    max_value_size: usize,
    max_keys: u64,
}

impl KeyValueApp {
    /// The declared buckets, for `/apps`.
    pub fn buckets(&self) -> impl Iterator<Item = &str> {
        self.spec.buckets.iter().map(|bucket| bucket.name.as_str())
    }

    /// The embedded store's file, if the app has one.
    pub fn embedded_path(&self) -> Option<&std::path::Path> {
        self.embedded.as_deref().map(EmbeddedStore::path)
    }
}

/// An instance's view of its app's buckets.
pub struct KeyValueInstance {
    app: Arc<KeyValueApp>,
    open: usize,
}

/// A bucket a guest opened: a resource in its store's table.
pub struct OpenBucket {
    name: Arc<str>,
}

impl Capability for KeyValue {
    type App = Arc<KeyValueApp>;
    type Instance = KeyValueInstance;

    fn app(spec: &AppSpec, previous: Option<&Arc<KeyValueApp>>) -> Result<Arc<KeyValueApp>> {
        let kv = &spec.env.key_value;
        let wants_embedded = kv.buckets.iter().any(|bucket| bucket.backend == Backend::Embedded);
        // The file stays open across versions: a reload does not reopen it.
        let kept = previous
            .and_then(|previous| previous.embedded.clone())
            .filter(|store| store.path().parent() == Some(kv.dir.as_path()));
        let embedded = match (wants_embedded, kept) {
            (false, _) => None,
            (true, Some(store)) => Some(store),
            (true, None) => Some(Arc::new(EmbeddedStore::open(&kv.dir)?)),
        };
        let mut redis: Vec<Arc<RedisStore>> = Vec::new();
        for bucket in &kv.buckets {
            let Backend::Redis(url) = &bucket.backend else { continue };
            if redis.iter().any(|store| store.url() == url) {
                continue;
            }
            let kept = previous.and_then(|previous| previous.redis.iter().find(|store| store.url() == url).cloned());
            redis.push(match kept {
                Some(store) => store,
                None => Arc::new(RedisStore::new(url, &spec.name)?),
            });
        }
        if let Some(store) = &embedded {
            if let Ok(keys) = store.keys() {
                METRICS.kv_keys.with_label_values(&[spec.name.as_str()]).set(keys as i64);
            }
        }
        Ok(Arc::new(KeyValueApp {
            app: Arc::from(spec.name.as_str()),
            spec: kv.clone(),
            embedded,
            redis,
            max_key_size: spec.limits.kv_max_key_size,
            max_value_size: spec.limits.kv_max_value_size,
            max_keys: spec.limits.kv_max_keys,
        }))
    }

    fn instance(app: &Arc<KeyValueApp>) -> Result<KeyValueInstance> {
        Ok(KeyValueInstance { app: app.clone(), open: 0 })
    }

    fn add_to_linker(linker: &mut Linker<StoreData>) -> Result<()> {
        fn view(data: &mut StoreData) -> KeyValueView<'_> {
            KeyValueView { state: &mut data.capabilities.keyvalue, table: &mut data.table }
        }
        let context = |err: wasmtime::Error| anyhow::Error::from(err).context("cannot add wasi:keyvalue to the linker");
        store::add_to_linker::<StoreData, KeyValueData>(linker, view).map_err(context)?;
        atomics::add_to_linker::<StoreData, KeyValueData>(linker, view).map_err(context)?;
        batch::add_to_linker::<StoreData, KeyValueData>(linker, view).map_err(context)
    }
}

struct KeyValueView<'a> {
    state: &'a mut KeyValueInstance,
    table: &'a mut ResourceTable,
}

struct KeyValueData;

impl HasData for KeyValueData {
    type Data<'a> = KeyValueView<'a>;
}

/// Why an operation did not happen, as the guest and the metrics see it.
enum Failure {
    /// A limit refused it (`result="refused"`).
    Refused(String),
    /// The backend failed (`result="error"`); logged.
    Failed(String),
}

impl From<WriteError> for Failure {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::Quota(max) => Failure::Refused(format!(
                "limit: the app holds its quota of {max} keys (kv_max_keys); delete keys or raise the limit"
            )),
            WriteError::NotACounter(why) => Failure::Refused(format!("increment: {why}")),
            WriteError::Storage(err) => Failure::Failed(format!("storage error: {err}")),
            WriteError::Backend(reason) => Failure::Failed(reason),
        }
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(err: rusqlite::Error) -> Self {
        Failure::Failed(format!("storage error: {err}"))
    }
}

impl From<::redis::RedisError> for Failure {
    fn from(err: ::redis::RedisError) -> Self {
        Failure::Failed(format!("redis error: {err}"))
    }
}

/// One operation on one bucket: what it needs and what it counts.
struct Call<'a> {
    app: &'a KeyValueApp,
    bucket: &'a str,
    read: usize,
    written: usize,
}

/// Where the bucket of a [`Call`] lives.
enum Store<'a> {
    Embedded(&'a EmbeddedStore),
    Redis(&'a RedisStore),
}

impl Call<'_> {
    fn store(&self) -> Result<Store<'_>, Failure> {
        // `app` opened a store for every backend its buckets name.
        let missing = || Failure::Failed("the bucket's store is not open".to_owned());
        match &self.app.spec.bucket(self.bucket).ok_or_else(missing)?.backend {
            Backend::Embedded => self.app.embedded.as_deref().map(Store::Embedded).ok_or_else(missing),
            Backend::Redis(url) => self
                .app
                .redis
                .iter()
                .find(|store| store.url() == url)
                .map(|store| Store::Redis(store))
                .ok_or_else(missing),
        }
    }

    fn check_key(&self, key: &str) -> Result<(), Failure> {
        let max = self.app.max_key_size;
        if key.len() > max {
            return Err(Failure::Refused(format!(
                "limit: a key of {} bytes is longer than the app's kv_max_key_size of {}",
                key.len(),
                ByteSize(max as u64)
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), Failure> {
        let max = self.app.max_value_size;
        if value.len() > max {
            return Err(Failure::Refused(format!(
                "limit: a value of {} is larger than the app's kv_max_value_size of {}",
                ByteSize(value.len() as u64),
                ByteSize(max as u64)
            )));
        }
        Ok(())
    }

    fn keys_now(&self, keys: u64) {
        METRICS.kv_keys.with_label_values(&[&*self.app.app]).set(keys as i64);
    }
}

impl KeyValueView<'_> {
    /// Runs `operation` (named `name` in metrics) on the bucket `bucket`,
    /// timing and counting it.
    async fn run<T>(
        &mut self,
        bucket: &Resource<OpenBucket>,
        name: &'static str,
        operation: impl AsyncFnOnce(&mut Call<'_>) -> Result<T, Failure>,
    ) -> wasmtime::Result<Result<T, Error>> {
        let bucket = self.table.get(bucket)?.name.clone();
        let app = self.state.app.clone();
        let started = Instant::now();
        let mut call = Call { app: &app, bucket: &bucket, read: 0, written: 0 };
        let outcome = operation(&mut call).await;
        let labels = |result| [&*app.app, &*bucket, name, result];
        let result = match &outcome {
            Ok(_) => "ok",
            Err(Failure::Refused(_)) => "refused",
            Err(Failure::Failed(reason)) => {
                tracing::warn!(app = %app.app, bucket = %bucket, operation = name, "key-value {reason}");
                "error"
            }
        };
        METRICS.kv_operations.with_label_values(&labels(result)).inc();
        METRICS.kv_duration.with_label_values(&[&*app.app, name]).observe(started.elapsed().as_secs_f64());
        for (direction, bytes) in [("read", call.read), ("written", call.written)] {
            if bytes > 0 {
                METRICS.kv_bytes.with_label_values(&[&*app.app, &*bucket, direction]).inc_by(bytes as u64);
            }
        }
        Ok(outcome.map_err(|failure| match failure {
            Failure::Refused(reason) | Failure::Failed(reason) => Error::Other(reason),
        }))
    }
}

impl store::Host for KeyValueView<'_> {
    async fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<OpenBucket>, Error>> {
        let Some(bucket) = self.state.app.spec.bucket(&identifier) else {
            return Ok(Err(Error::NoSuchStore));
        };
        if self.state.open >= MAX_OPEN_BUCKETS {
            return Ok(Err(Error::Other(format!(
                "limit: this instance holds {MAX_OPEN_BUCKETS} open buckets; drop some before opening more"
            ))));
        }
        let resource = self.table.push(OpenBucket { name: Arc::from(bucket.name.as_str()) })?;
        self.state.open += 1;
        Ok(Ok(resource))
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.run(&bucket, "get", async |call| {
            call.check_key(&key)?;
            let value = match call.store()? {
                Store::Embedded(store) => store.get(call.bucket, &key)?,
                Store::Redis(store) => store.get(call.bucket, &key).await?,
            };
            call.read = value.as_ref().map_or(0, Vec::len);
            Ok(value)
        })
        .await
    }

    async fn set(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.run(&bucket, "set", async |call| {
            call.check_key(&key)?;
            call.check_value(&value)?;
            call.written = value.len();
            let entries = [(key, value)];
            let keys = call.set_many(&entries).await?;
            call.keys_now(keys);
            Ok(())
        })
        .await
    }

    async fn delete(&mut self, bucket: Resource<OpenBucket>, key: String) -> wasmtime::Result<Result<(), Error>> {
        self.run(&bucket, "delete", async |call| {
            call.check_key(&key)?;
            let keys = call.delete_many(&[key]).await?;
            call.keys_now(keys);
            Ok(())
        })
        .await
    }

    async fn exists(&mut self, bucket: Resource<OpenBucket>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        self.run(&bucket, "exists", async |call| {
            call.check_key(&key)?;
            Ok(match call.store()? {
                Store::Embedded(store) => store.exists(call.bucket, &key)?,
                Store::Redis(store) => store.exists(call.bucket, &key).await?,
            })
        })
        .await
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<OpenBucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        self.run(&bucket, "list-keys", async |call| {
            let from = cursor.unwrap_or(0);
            let (keys, cursor) = match call.store()? {
                Store::Embedded(store) => store.list_keys(call.bucket, from)?,
                Store::Redis(store) => store.list_keys(call.bucket, from).await?,
            };
            call.read = keys.iter().map(String::len).sum();
            Ok(KeyResponse { keys, cursor })
        })
        .await
    }

    async fn drop(&mut self, bucket: Resource<OpenBucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        self.state.open = self.state.open.saturating_sub(1);
        Ok(())
    }
}

impl Call<'_> {
    async fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<u64, Failure> {
        let max = self.app.max_keys;
        Ok(match self.store()? {
            Store::Embedded(store) => store.set_many(self.bucket, entries, max)?,
            Store::Redis(store) => store.set_many(self.bucket, entries, max).await?,
        })
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u64, Failure> {
        Ok(match self.store()? {
            Store::Embedded(store) => store.delete_many(self.bucket, keys)?,
            Store::Redis(store) => store.delete_many(self.bucket, keys).await?,
        })
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
        delta: u64,
    ) -> wasmtime::Result<Result<u64, Error>> {
        self.run(&bucket, "increment", async |call| {
            call.check_key(&key)?;
            let max = call.app.max_keys;
            let (value, keys) = match call.store()? {
                Store::Embedded(store) => store.increment(call.bucket, &key, delta, max)?,
                Store::Redis(store) => store.increment(call.bucket, &key, delta, max).await?,
            };
            call.keys_now(keys);
            Ok(value)
        })
        .await
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<OpenBucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, Error>> {
        self.run(&bucket, "get-many", async |call| {
            keys.iter().try_for_each(|key| call.check_key(key))?;
            let values = match call.store()? {
                Store::Embedded(store) => store.get_many(call.bucket, &keys)?,
                Store::Redis(store) => store.get_many(call.bucket, &keys).await?,
            };
            call.read = values.iter().flatten().map(Vec::len).sum();
            Ok(keys.into_iter().zip(values).map(|(key, value)| value.map(|value| (key, value))).collect())
        })
        .await
    }

    async fn set_many(
        &mut self,
        bucket: Resource<OpenBucket>,
        entries: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.run(&bucket, "set-many", async |call| {
            for (key, value) in &entries {
                call.check_key(key)?;
                call.check_value(value)?;
            }
            call.written = entries.iter().map(|(_, value)| value.len()).sum();
            let keys = call.set_many(&entries).await?;
            call.keys_now(keys);
            Ok(())
        })
        .await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<OpenBucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.run(&bucket, "delete-many", async |call| {
            keys.iter().try_for_each(|key| call.check_key(key))?;
            let count = call.delete_many(&keys).await?;
            call.keys_now(count);
            Ok(())
        })
        .await
    }
}
