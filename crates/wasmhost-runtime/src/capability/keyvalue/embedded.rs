//! The embedded key-value backend: one SQLite file per app
//! (`<data dir>/<app>/kv.sqlite3`), every bucket a range of one table.
//!
//! The file is in WAL mode with `synchronous = NORMAL`: a write is on disk
//! when its call returns as far as the process is concerned (a crash or
//! `kill -9` loses nothing), and a power failure may lose the last
//! commits but never corrupts the file. One connection per app, behind a
//! mutex, serves all its instances and versions; every write is one
//! `BEGIN IMMEDIATE` transaction, so `increment` is atomic across instances
//! and across processes sharing the file (they wait up to
//! [`BUSY_TIMEOUT`] for each other).
//!
//! The number of keys is kept by triggers in `kv_count`, in the same
//! transaction as the write, so the quota check costs one row read.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// How long a write waits for another process holding the file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Most keys one `list-keys` call returns.
pub const PAGE: u64 = 1000;

/// The schema, applied on open (idempotent).
const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS kv (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (bucket, key)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS kv_count (n INTEGER NOT NULL);
    INSERT INTO kv_count SELECT count(*) FROM kv WHERE NOT EXISTS (SELECT 1 FROM kv_count);
    CREATE TRIGGER IF NOT EXISTS kv_inserted AFTER INSERT ON kv BEGIN UPDATE kv_count SET n = n + 1; END;
    CREATE TRIGGER IF NOT EXISTS kv_deleted AFTER DELETE ON kv BEGIN UPDATE kv_count SET n = n - 1; END;
";

/// Why a write was refused or failed.
#[derive(Debug)]
pub enum WriteError {
    /// It would take the app past its key quota.
    Quota(u64),
    /// `increment` on a value that is not a decimal integer, or overflow.
    NotACounter(&'static str),
    /// SQLite failed.
    Storage(rusqlite::Error),
    /// Another backend failed, as it says.
    Backend(String),
}

impl From<rusqlite::Error> for WriteError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Storage(err)
    }
}

/// One app's SQLite file.
pub struct EmbeddedStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl EmbeddedStore {
    /// Opens (or creates) `kv.sqlite3` in the app's data directory `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        create_private_dir(dir)?;
        let path = dir.join("kv.sqlite3");
        let connection = Connection::open(&path)
            .and_then(|connection| {
                connection.busy_timeout(BUSY_TIMEOUT)?;
                connection.execute_batch(SCHEMA)?;
                Ok(connection)
            })
            .with_context(|| format!("cannot open the key-value file {}", path.display()))?;
        Ok(Self { path, connection: Mutex::new(connection) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back when dropped), so a poisoned lock is usable.
        self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The number of keys over all buckets.
    pub fn keys(&self) -> rusqlite::Result<u64> {
        key_count(&self.lock())
    }

    /// The value of `key` in `bucket`.
    pub fn get(&self, bucket: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached("SELECT value FROM kv WHERE bucket = ?1 AND key = ?2")?;
        statement.query_row(params![bucket, key], |row| row.get(0)).optional()
    }

    /// Whether `key` is in `bucket`.
    pub fn exists(&self, bucket: &str, key: &str) -> rusqlite::Result<bool> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached("SELECT 1 FROM kv WHERE bucket = ?1 AND key = ?2")?;
        statement.exists(params![bucket, key])
    }

    /// The values of `keys` in `bucket`, in order.
    pub fn get_many(&self, bucket: &str, keys: &[String]) -> rusqlite::Result<Vec<Option<Vec<u8>>>> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached("SELECT value FROM kv WHERE bucket = ?1 AND key = ?2")?;
        keys.iter().map(|key| statement.query_row(params![bucket, key], |row| row.get(0)).optional()).collect()
    }

    /// Up to [`PAGE`] keys of `bucket` in key order from position `from`,
    /// and the position of the next page if there is one.
    pub fn list_keys(&self, bucket: &str, from: u64) -> rusqlite::Result<(Vec<String>, Option<u64>)> {
        let connection = self.lock();
        let mut statement =
            connection.prepare_cached("SELECT key FROM kv WHERE bucket = ?1 ORDER BY key LIMIT ?2 OFFSET ?3")?;
        // SQLite integers are i64; a cursor past that is past the end.
        let offset = i64::try_from(from).unwrap_or(i64::MAX);
        let mut keys = statement
            .query_map(params![bucket, PAGE as i64 + 1, offset], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        let more = keys.len() as u64 > PAGE;
        keys.truncate(PAGE as usize);
        // `from` is the guest's cursor: any value, u64::MAX included.
        Ok((keys, more.then(|| from.saturating_add(PAGE))))
    }

    /// Sets each `(key, value)` of `bucket` in one transaction. Refused
    /// whole if new keys would take the app past `max_keys`. Returns the
    /// number of keys after it.
    pub fn set_many(&self, bucket: &str, entries: &[(String, Vec<u8>)], max_keys: u64) -> Result<u64, WriteError> {
        self.write(max_keys, |tx| {
            let mut statement = tx.prepare_cached(
                "INSERT INTO kv (bucket, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
            )?;
            for (key, value) in entries {
                statement.execute(params![bucket, key, value])?;
            }
            Ok(())
        })
    }

    /// Deletes `keys` from `bucket` (absent ones are no error) in one
    /// transaction. Returns the number of keys after it.
    pub fn delete_many(&self, bucket: &str, keys: &[String]) -> Result<u64, WriteError> {
        self.write(u64::MAX, |tx| {
            let mut statement = tx.prepare_cached("DELETE FROM kv WHERE bucket = ?1 AND key = ?2")?;
            for key in keys {
                statement.execute(params![bucket, key])?;
            }
            Ok(())
        })
    }

    /// Adds `delta` to the decimal integer stored at `key` (0 when absent)
    /// and returns the new value and the number of keys after it.
    pub fn increment(&self, bucket: &str, key: &str, delta: u64, max_keys: u64) -> Result<(u64, u64), WriteError> {
        let mut value = 0;
        let keys = self.write(max_keys, |tx| {
            let current: Option<Vec<u8>> = tx
                .prepare_cached("SELECT value FROM kv WHERE bucket = ?1 AND key = ?2")?
                .query_row(params![bucket, key], |row| row.get(0))
                .optional()?;
            let current = match current {
                None => 0,
                Some(bytes) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok())
                    .ok_or(WriteError::NotACounter("its value is not a decimal integer"))?,
            };
            value = current.checked_add(delta).ok_or(WriteError::NotACounter("the sum overflows a u64"))?;
            tx.prepare_cached(
                "INSERT INTO kv (bucket, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![bucket, key, value.to_string().into_bytes()])?;
            Ok(())
        })?;
        Ok((value, keys))
    }

    /// Runs `change` in one `BEGIN IMMEDIATE` transaction and commits it
    /// unless it added keys past `max_keys`. Returns the number of keys.
    fn write(
        &self,
        max_keys: u64,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), WriteError>,
    ) -> Result<u64, WriteError> {
        let mut connection = self.lock();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let before = key_count(&tx)?;
        change(&tx)?;
        let after = key_count(&tx)?;
        if after > before && after > max_keys {
            // Dropping `tx` rolls it back.
            return Err(WriteError::Quota(max_keys));
        }
        tx.commit()?;
        Ok(after)
    }
}

/// The number of keys over all buckets (kept by the `kv_count` triggers).
fn key_count(connection: &Connection) -> rusqlite::Result<u64> {
    let count: i64 = connection.query_row("SELECT n FROM kv_count", [], |row| row.get(0))?;
    Ok(count.max(0) as u64)
}

/// Creates `dir` (and its parents), readable by this user only.
/// Creates `dir` (and its parents) readable by this user only.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the app data directory {} (set --data-dir)", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> (EmbeddedStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("wasmhost-kv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (EmbeddedStore::open(&dir).unwrap(), dir)
    }

    #[test]
    fn any_cursor_is_a_page_possibly_empty() {
        let (store, dir) = store("cursor");
        store.set_many("a", &[("k".into(), b"1".to_vec())], 10).unwrap();
        assert_eq!(store.list_keys("a", 0).unwrap(), (vec!["k".to_owned()], None));
        for cursor in [1, i64::MAX as u64, u64::MAX] {
            assert_eq!(store.list_keys("a", cursor).unwrap(), (vec![], None), "{cursor}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn values_persist_and_buckets_are_separate() {
        let (store, dir) = store("persist");
        store.set_many("a", &[("k".into(), b"1".to_vec())], 10).unwrap();
        assert_eq!(store.get("a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get("b", "k").unwrap(), None);
        drop(store);
        let reopened = EmbeddedStore::open(&dir).unwrap();
        assert_eq!(reopened.get("a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(reopened.keys().unwrap(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_quota_refuses_new_keys_only_and_rolls_back() {
        let (store, dir) = store("quota");
        store.set_many("a", &[("x".into(), vec![1]), ("y".into(), vec![2])], 2).unwrap();
        let refused = store.set_many("a", &[("y".into(), vec![3]), ("z".into(), vec![4])], 2);
        assert!(matches!(refused, Err(WriteError::Quota(2))), "{refused:?}");
        assert_eq!(store.get("a", "y").unwrap(), Some(vec![2]), "the refused batch wrote nothing");
        assert_eq!(store.set_many("a", &[("y".into(), vec![5])], 2).unwrap(), 2, "overwriting is not a new key");
        assert_eq!(store.delete_many("a", &["x".into(), "absent".into()]).unwrap(), 1);
        assert!(matches!(store.increment("a", "n", 1, 1), Err(WriteError::Quota(1))));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn increment_counts_in_decimal_and_refuses_other_values() {
        let (store, dir) = store("increment");
        assert_eq!(store.increment("a", "n", 5, 10).unwrap().0, 5);
        assert_eq!(store.increment("a", "n", 2, 10).unwrap().0, 7);
        assert_eq!(store.get("a", "n").unwrap(), Some(b"7".to_vec()));
        store.set_many("a", &[("s".into(), b"seven".to_vec())], 10).unwrap();
        assert!(matches!(store.increment("a", "s", 1, 10), Err(WriteError::NotACounter(_))));
        store.set_many("a", &[("m".into(), u64::MAX.to_string().into_bytes())], 10).unwrap();
        assert!(matches!(store.increment("a", "m", 1, 10), Err(WriteError::NotACounter(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn keys_are_listed_in_pages() {
        let (store, dir) = store("pages");
        let entries: Vec<_> = (0..PAGE + 5).map(|i| (format!("k{i:05}"), vec![])).collect();
        store.set_many("a", &entries, u64::MAX).unwrap();
        let (first, next) = store.list_keys("a", 0).unwrap();
        assert_eq!((first.len() as u64, next), (PAGE, Some(PAGE)));
        let (rest, end) = store.list_keys("a", PAGE).unwrap();
        assert_eq!((rest.len(), end), (5, None));
        assert_eq!(rest[4], format!("k{:05}", PAGE + 4));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
