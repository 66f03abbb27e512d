//! [`TableReader`]: snapshots, metadata, file lists and timelines with caching.
//!
//! Caching rules:
//! - the latest snapshot of each table is kept and refreshed incrementally (only log files
//!   newer than the cached version are listed and read);
//! - snapshots, table info and active-file lists are cached per (table root, version); a file
//!   list is computed by one log replay, counted in [`ReaderStats::log_replays`];
//! - a timeline is cached per table root and rebuilt when the latest version moves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use delta_kernel::{Engine, Snapshot, SnapshotRef};
use delta_kernel_default_engine::DefaultEngineBuilder;
use object_store::local::LocalFileSystem;

use crate::storage::cloud::StoreRegistry;
use url::Url;

use super::cache::BoundedCache;
use super::changes::{Commit, read_commits};
use super::files::{ActiveFile, advance_active_files, list_active_files};
use super::info::{TableInfo, table_info};
use super::timeline::{IctSettings, Timeline};
use super::{DeltaError, Result};

/// Counters exposed as metrics.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Log replays that listed a snapshot's active files.
    pub log_replays: AtomicU64,
    /// File-list requests answered from the cache.
    pub file_list_cache_hits: AtomicU64,
    /// Snapshots built (full or incremental).
    pub snapshot_builds: AtomicU64,
    /// File lists advanced from an older cached list by reading only the newer commits.
    pub incremental_file_list_updates: AtomicU64,
    /// Commit ranges read for change queries (cached per range afterwards).
    pub commit_range_reads: AtomicU64,
    /// Time spent computing active-file lists (full replays and incremental updates), µs.
    pub file_list_micros: AtomicU64,
}

/// Upper bound on the number of file entries kept in cached file lists (about 0.5-1 GB).
const MAX_CACHED_FILES: usize = 2_000_000;

type Key = (Url, u64);
/// Table root and an inclusive version range.
type RangeKey = (Url, u64, u64);
/// A file list and the version it belongs to.
type VersionedFiles = (u64, Arc<Vec<ActiveFile>>);

/// Reads Delta tables with caching. Blocking: call from `spawn_blocking`.
pub struct TableReader {
    /// Engine for local tables.
    local: Arc<dyn Engine>,
    /// Object stores of cloud tables, and one engine per store.
    stores: Arc<StoreRegistry>,
    engines: Mutex<HashMap<String, Arc<dyn Engine>>>,
    latest: Mutex<HashMap<Url, SnapshotRef>>,
    snapshots: Mutex<BoundedCache<Key, SnapshotRef>>,
    infos: Mutex<BoundedCache<Key, Arc<TableInfo>>>,
    files: Mutex<BoundedCache<Key, Arc<Vec<ActiveFile>>>>,
    newest_files: Mutex<HashMap<Url, VersionedFiles>>,
    commits: Mutex<BoundedCache<RangeKey, Arc<Vec<Commit>>>>,
    timelines: Mutex<HashMap<Url, Arc<Timeline>>>,
    stats: Arc<ReaderStats>,
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned cache only means another thread panicked mid-insert; the data is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TableReader {
    /// A reader for local tables, caching up to `cache_entries` versions per cache.
    pub fn new_local(cache_entries: usize) -> Self {
        Self::new(Arc::new(StoreRegistry::default()), cache_entries)
    }

    /// A reader for local tables and cloud tables in the stores of `stores`.
    pub fn new(stores: Arc<StoreRegistry>, cache_entries: usize) -> Self {
        let local = DefaultEngineBuilder::new(Arc::new(LocalFileSystem::new())).build();
        Self {
            local: Arc::new(local),
            stores,
            engines: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
            snapshots: Mutex::new(BoundedCache::new(cache_entries)),
            infos: Mutex::new(BoundedCache::new(cache_entries)),
            files: Mutex::new(BoundedCache::with_max_weight(
                cache_entries,
                MAX_CACHED_FILES,
            )),
            newest_files: Mutex::new(HashMap::new()),
            commits: Mutex::new(BoundedCache::with_max_weight(
                cache_entries,
                MAX_CACHED_FILES,
            )),
            timelines: Mutex::new(HashMap::new()),
            stats: Arc::new(ReaderStats::default()),
        }
    }

    /// The kernel engine for a table root: the local one, or the one of its object store.
    fn engine(&self, root: &Url) -> Result<Arc<dyn Engine>> {
        if root.scheme() == "file" {
            return Ok(self.local.clone());
        }
        let store = self
            .stores
            .store_for(root)
            .map_err(|e| DeltaError::Unavailable(e.to_string()))?;
        let mut engines = lock(&self.engines);
        let engine = engines
            .entry(store.key.clone())
            .or_insert_with(|| Arc::new(DefaultEngineBuilder::new(store.store.clone()).build()));
        Ok(engine.clone())
    }

    /// The counters.
    pub fn stats(&self) -> Arc<ReaderStats> {
        self.stats.clone()
    }

    /// Why a snapshot could not be loaded: no table, an unreachable store, or a bad log.
    fn classify(&self, root: &Url, err: delta_kernel::KernelError) -> DeltaError {
        let engine = match self.engine(root) {
            Ok(e) => e,
            Err(e) => return e,
        };
        let Ok(log) = root.join("_delta_log/") else {
            return DeltaError::TableNotFound;
        };
        let first = engine
            .storage_handler()
            .list_from(&log)
            .map(|mut it| it.next());
        match first {
            Ok(Some(Ok(_))) => DeltaError::from(err),
            Ok(None) => DeltaError::TableNotFound,
            // Local tables: a missing folder is a missing table.
            Ok(Some(Err(_))) | Err(_) if root.scheme() == "file" => DeltaError::TableNotFound,
            Ok(Some(Err(e))) | Err(e) => DeltaError::Unavailable(e.to_string()),
        }
    }

    /// The latest snapshot, refreshed incrementally from the cached one.
    pub fn latest(&self, root: &Url) -> Result<SnapshotRef> {
        let cached = lock(&self.latest).get(root).cloned();
        self.stats.snapshot_builds.fetch_add(1, Ordering::Relaxed);
        let snapshot = match cached {
            Some(prev) => Snapshot::builder_from(prev).build(self.engine(root)?.as_ref()),
            None => Snapshot::builder_for(root.as_str()).build(self.engine(root)?.as_ref()),
        }
        .map_err(|e| self.classify(root, e))?;
        lock(&self.latest).insert(root.clone(), snapshot.clone());
        lock(&self.snapshots).insert((root.clone(), snapshot.version()), snapshot.clone());
        Ok(snapshot)
    }

    /// The snapshot at `version`.
    pub fn at_version(&self, root: &Url, version: u64) -> Result<SnapshotRef> {
        let key = (root.clone(), version);
        if let Some(s) = lock(&self.snapshots).get(&key) {
            return Ok(s);
        }
        self.stats.snapshot_builds.fetch_add(1, Ordering::Relaxed);
        let snapshot = Snapshot::builder_for(root.as_str())
            .at_version(version)
            .build(self.engine(root)?.as_ref())
            .map_err(|e| match self.classify(root, e) {
                DeltaError::Kernel(reason) => DeltaError::VersionNotFound { version, reason },
                other => other,
            })?;
        lock(&self.snapshots).insert(key, snapshot.clone());
        Ok(snapshot)
    }

    /// Metadata and protocol of a snapshot.
    pub fn info(&self, snapshot: &SnapshotRef) -> Result<Arc<TableInfo>> {
        let key = (snapshot.table_root().clone(), snapshot.version());
        if let Some(i) = lock(&self.infos).get(&key) {
            return Ok(i);
        }
        let info = Arc::new(table_info(snapshot)?);
        lock(&self.infos).insert(key, info.clone());
        Ok(info)
    }

    /// Active files of a snapshot: cached per version; a newer version is derived from the
    /// newest cached list by reading only the commits in between when the kernel allows it,
    /// otherwise by one full log replay.
    pub fn files(&self, snapshot: &SnapshotRef) -> Result<Arc<Vec<ActiveFile>>> {
        let root = snapshot.table_root().clone();
        let version = snapshot.version();
        let key = (root.clone(), version);
        if let Some(f) = lock(&self.files).get(&key) {
            self.stats
                .file_list_cache_hits
                .fetch_add(1, Ordering::Relaxed);
            return Ok(f);
        }
        let base = lock(&self.newest_files)
            .get(&root)
            .filter(|(v, _)| *v < version)
            .cloned();
        let started = std::time::Instant::now();
        let advanced = match base {
            Some((base_version, base_files)) => advance_active_files(
                &base_files,
                base_version,
                snapshot,
                self.engine(&root)?.as_ref(),
            )?,
            None => None,
        };
        let files = Arc::new(match advanced {
            Some(files) => {
                self.stats
                    .incremental_file_list_updates
                    .fetch_add(1, Ordering::Relaxed);
                files
            }
            None => {
                self.stats.log_replays.fetch_add(1, Ordering::Relaxed);
                list_active_files(snapshot, self.engine(&root)?.as_ref())?
            }
        });
        self.stats.file_list_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        lock(&self.files).insert_weighted(key, files.clone(), files.len());
        let mut newest = lock(&self.newest_files);
        if newest.get(&root).is_none_or(|(v, _)| *v < version) {
            newest.insert(root, (version, files.clone()));
        }
        Ok(files)
    }

    /// The parsed commits `start..=end` (one read per range, then cached).
    pub fn commits(&self, root: &Url, start: u64, end: u64) -> Result<Arc<Vec<Commit>>> {
        let key = (root.clone(), start, end);
        if let Some(c) = lock(&self.commits).get(&key) {
            return Ok(c);
        }
        self.stats
            .commit_range_reads
            .fetch_add(1, Ordering::Relaxed);
        let commits = Arc::new(read_commits(self.engine(root)?.as_ref(), root, start, end)?);
        let weight = commits.iter().map(|c| c.files.len() + 1).sum();
        lock(&self.commits).insert_weighted(key, commits.clone(), weight);
        Ok(commits)
    }

    /// The commit timeline up to `latest` (a snapshot at the latest version).
    pub fn timeline(&self, latest: &SnapshotRef) -> Result<Arc<Timeline>> {
        let root = latest.table_root().clone();
        if let Some(t) = lock(&self.timelines).get(&root)
            && t.latest().map(|c| c.version) == Some(latest.version())
        {
            return Ok(t.clone());
        }
        let info = self.info(latest)?;
        let ict_on = info
            .metadata
            .configuration
            .get("delta.enableInCommitTimestamps")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let ict = ict_on.then(|| IctSettings {
            enablement_version: info
                .metadata
                .configuration
                .get("delta.inCommitTimestampEnablementVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        });
        let timeline = Arc::new(Timeline::load(
            self.engine(&root)?.as_ref(),
            &root,
            latest.version(),
            ict,
        )?);
        lock(&self.timelines).insert(root, timeline.clone());
        Ok(timeline)
    }
}
