//! The Redis key-value backend (`NAME=redis://HOST:PORT/DB` in an app's
//! `key_value`), for data several replicas share.
//!
//! A bucket's keys are `wasmhost:{app}:{bucket}:{key}`: the prefix is the
//! host's, so an app reaches only its own buckets even when apps share one
//! Redis. The app's key count (its `kv_max_keys` quota) is the key
//! `wasmhost:{app}:#keys`, kept by the Lua scripts below in the same atomic
//! step as each write, so a refused write changes nothing and `increment`
//! is atomic across instances and replicas. The connection is made on first
//! use and re-made after a failure (redis' `ConnectionManager`); every
//! command has [`TIMEOUT`], after which the guest's call fails with an
//! error and the instance goes on.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context as _, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Script};
use tokio::sync::OnceCell;

use super::embedded::WriteError;
use wasmhost_spec::Backend;

/// Longest a connection attempt or a command may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Most keys one `list-keys` call asks `SCAN` for.
const PAGE: usize = 1000;

/// Sets `KEYS[2..]` to `ARGV[2..]` unless the new keys among them take the
/// app's count (`KEYS[1]`) past `ARGV[1]`: returns the new count, or -1.
static SET_MANY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local new = 0
        for i = 2, #KEYS do
            if redis.call('EXISTS', KEYS[i]) == 0 then new = new + 1 end
        end
        local count = tonumber(redis.call('GET', KEYS[1]) or '0')
        if new > 0 and count + new > tonumber(ARGV[1]) then return -1 end
        for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[i]) end
        return redis.call('INCRBY', KEYS[1], new)
        ",
    )
});

/// Deletes `KEYS[2..]`; returns the app's count (`KEYS[1]`) after it.
static DELETE_MANY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local gone = 0
        for i = 2, #KEYS do gone = gone + redis.call('DEL', KEYS[i]) end
        return redis.call('DECRBY', KEYS[1], gone)
        ",
    )
});

/// Adds `ARGV[1]` to the counter `KEYS[2]`: returns {value, count}, or
/// {-1} over the quota `ARGV[2]`, or {-2} when the value is not a decimal
/// counter.
static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local current = redis.call('GET', KEYS[2])
        local count = tonumber(redis.call('GET', KEYS[1]) or '0')
        if current == false then
            if count + 1 > tonumber(ARGV[2]) then return {-1} end
            count = redis.call('INCR', KEYS[1])
        elseif not string.match(current, '^%d+$') then
            return {-2}
        end
        return {redis.call('INCRBY', KEYS[2], ARGV[1]), count}
        ",
    )
});

/// One Redis server, shared by the buckets of an app that name its URL.
pub struct RedisStore {
    url: String,
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    /// `wasmhost:{app}:`.
    prefix: String,
}

impl RedisStore {
    /// The store at `url` for app `app`; connects on first use.
    pub fn new(url: &str, app: &str) -> Result<Self> {
        let shown = Backend::Redis(url.to_owned()).redacted();
        let client = redis::Client::open(url).with_context(|| format!("bad Redis URL {shown}"))?;
        Ok(Self { url: url.to_owned(), client, connection: OnceCell::new(), prefix: format!("wasmhost:{app}:") })
    }

    /// The URL it was made from.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(TIMEOUT);
        self.connection.get_or_try_init(|| self.client.get_connection_manager_with_config(config)).await.cloned()
    }

    fn key(&self, bucket: &str, key: &str) -> String {
        format!("{}{bucket}:{key}", self.prefix)
    }

    fn count_key(&self) -> String {
        format!("{}#keys", self.prefix)
    }

    /// The value of `key` in `bucket`.
    pub async fn get(&self, bucket: &str, key: &str) -> redis::RedisResult<Option<Vec<u8>>> {
        self.connection().await?.get(self.key(bucket, key)).await
    }

    /// Whether `key` is in `bucket`.
    pub async fn exists(&self, bucket: &str, key: &str) -> redis::RedisResult<bool> {
        self.connection().await?.exists(self.key(bucket, key)).await
    }

    /// The values of `keys` in `bucket`, in order.
    pub async fn get_many(&self, bucket: &str, keys: &[String]) -> redis::RedisResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.iter().map(|key| self.key(bucket, key)).collect();
        redis::cmd("MGET").arg(keys).query_async(&mut self.connection().await?).await
    }

    /// Some keys of `bucket` from `SCAN` position `cursor` (0: the start),
    /// and the next position unless the scan is complete.
    pub async fn list_keys(&self, bucket: &str, cursor: u64) -> redis::RedisResult<(Vec<String>, Option<u64>)> {
        let prefix = self.key(bucket, "");
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(PAGE)
            .query_async(&mut self.connection().await?)
            .await?;
        let keys = keys.into_iter().filter_map(|key| key.strip_prefix(&prefix).map(str::to_owned)).collect();
        Ok((keys, (next != 0).then_some(next)))
    }

    /// Sets every `(key, value)` of `bucket` at once, unless new keys would
    /// take the app past `max_keys`. Returns the app's key count.
    pub async fn set_many(
        &self,
        bucket: &str,
        entries: &[(String, Vec<u8>)],
        max_keys: u64,
    ) -> Result<u64, WriteError> {
        let mut script = SET_MANY.prepare_invoke();
        script.key(self.count_key()).arg(max_keys);
        for (key, value) in entries {
            script.key(self.key(bucket, key)).arg(value.as_slice());
        }
        let count: i64 = script.invoke_async(&mut self.connection().await.map_err(storage)?).await.map_err(storage)?;
        if count < 0 {
            return Err(WriteError::Quota(max_keys));
        }
        Ok(count as u64)
    }

    /// Deletes `keys` from `bucket`. Returns the app's key count.
    pub async fn delete_many(&self, bucket: &str, keys: &[String]) -> Result<u64, WriteError> {
        let mut script = DELETE_MANY.prepare_invoke();
        script.key(self.count_key());
        for key in keys {
            script.key(self.key(bucket, key));
        }
        let count: i64 = script.invoke_async(&mut self.connection().await.map_err(storage)?).await.map_err(storage)?;
        Ok(count.max(0) as u64)
    }

    /// Adds `delta` to the counter at `key`: the new value and the app's key count.
    pub async fn increment(
        &self,
        bucket: &str,
        key: &str,
        delta: u64,
        max_keys: u64,
    ) -> Result<(u64, u64), WriteError> {
        let delta = i64::try_from(delta).map_err(|_| WriteError::NotACounter("the delta overflows Redis' integers"))?;
        let mut script = INCREMENT.prepare_invoke();
        script.key(self.count_key()).key(self.key(bucket, key)).arg(delta).arg(max_keys);
        let result: redis::RedisResult<Vec<i64>> =
            script.invoke_async(&mut self.connection().await.map_err(storage)?).await;
        match result {
            Ok(values) => match values.as_slice() {
                [-1] => Err(WriteError::Quota(max_keys)),
                [-2] => Err(WriteError::NotACounter("its value is not a decimal integer")),
                [value, count] => Ok((*value as u64, (*count).max(0) as u64)),
                _ => Err(WriteError::Backend("unexpected reply from the increment script".to_owned())),
            },
            // INCRBY past i64::MAX.
            Err(err) if err.to_string().contains("overflow") => Err(WriteError::NotACounter("the sum overflows")),
            Err(err) => Err(storage(err)),
        }
    }
}

fn storage(err: redis::RedisError) -> WriteError {
    WriteError::Backend(format!("redis error: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        let err = RedisStore::new("redis://user:pw@[::1", "a").err().expect("refused");
        assert!(!format!("{err:#}").contains("pw"), "{err:#}");
    }
}
