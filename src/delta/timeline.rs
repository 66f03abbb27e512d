//! The commit timeline of a table: version → commit timestamp.
//!
//! A commit's timestamp is its in-commit timestamp when the table has them enabled (from the
//! enablement version on), otherwise the modification time of `_delta_log/<v>.json`, made
//! strictly increasing (a time not after the previous commit's becomes previous + 1 ms).
//! `commitInfo.timestamp` is never used.

use delta_kernel::Engine;
use url::Url;

use super::{DeltaError, Result};

/// One commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// Version.
    pub version: u64,
    /// Commit timestamp, ms.
    pub timestamp_ms: i64,
}

/// Commits in version order (only versions whose commit file exists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    commits: Vec<Commit>,
}

/// In-commit timestamp settings of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IctSettings {
    /// First version with in-commit timestamps.
    pub enablement_version: u64,
}

fn commit_version(url: &Url) -> Option<u64> {
    let name = url.path_segments()?.next_back()?;
    let stem = name.strip_suffix(".json")?;
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

impl Timeline {
    /// Builds from commit timestamps already monotonic (for tests and callers that know them).
    pub fn from_commits(commits: Vec<Commit>) -> Self {
        Self { commits }
    }

    /// Lists `_delta_log/` up to `latest` and reads in-commit timestamps where enabled.
    pub fn load(
        engine: &dyn Engine,
        table_root: &Url,
        latest: u64,
        ict: Option<IctSettings>,
    ) -> Result<Self> {
        let log = table_root
            .join("_delta_log/")
            .map_err(|e| DeltaError::Kernel(e.to_string()))?;
        let storage = engine.storage_handler();
        let mut raw: Vec<(u64, i64, Url)> = Vec::new();
        for meta in storage.list_from(&log)? {
            let meta = meta?;
            if let Some(v) = commit_version(&meta.location)
                && v <= latest
            {
                raw.push((v, meta.last_modified, meta.location));
            }
        }
        raw.sort_by_key(|(v, _, _)| *v);
        let mut ict_values = std::collections::HashMap::new();
        if let Some(ict) = ict {
            let wanted: Vec<_> = raw
                .iter()
                .filter(|(v, _, _)| *v >= ict.enablement_version)
                .map(|(v, _, url)| (*v, url.clone()))
                .collect();
            let slices = wanted.iter().map(|(_, u)| (u.clone(), None)).collect();
            for ((v, _), bytes) in wanted.iter().zip(storage.read_files(slices)?) {
                if let Some(ts) = in_commit_timestamp(&bytes?) {
                    ict_values.insert(*v, ts);
                }
            }
        }
        let mut commits: Vec<Commit> = Vec::with_capacity(raw.len());
        for (v, mtime, _) in raw {
            let ts = match ict_values.get(&v) {
                Some(ict) => *ict,
                None => match commits.last() {
                    Some(prev) if mtime <= prev.timestamp_ms => prev.timestamp_ms + 1,
                    _ => mtime,
                },
            };
            commits.push(Commit {
                version: v,
                timestamp_ms: ts,
            });
        }
        Ok(Self { commits })
    }

    /// All commits.
    pub fn commits(&self) -> &[Commit] {
        &self.commits
    }

    /// First commit.
    pub fn earliest(&self) -> Option<Commit> {
        self.commits.first().copied()
    }

    /// Last commit.
    pub fn latest(&self) -> Option<Commit> {
        self.commits.last().copied()
    }

    /// Timestamp of a version.
    pub fn timestamp_of(&self, version: u64) -> Option<i64> {
        self.commits
            .binary_search_by_key(&version, |c| c.version)
            .ok()
            .map(|i| self.commits[i].timestamp_ms)
    }

    /// The first commit whose timestamp is at or after `ts`.
    pub fn first_at_or_after(&self, ts: i64) -> Option<Commit> {
        self.commits.iter().find(|c| c.timestamp_ms >= ts).copied()
    }

    /// The last commit whose timestamp is at or before `ts` (scanning in version order, so a
    /// non-monotonic in-commit timestamp cannot hide later commits).
    pub fn last_at_or_before(&self, ts: i64) -> Option<Commit> {
        self.commits
            .iter()
            .filter(|c| c.timestamp_ms <= ts)
            .max_by_key(|c| c.version)
            .copied()
    }
}

fn in_commit_timestamp(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        v.get("commitInfo")?.get("inCommitTimestamp")?.as_i64()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tl() -> Timeline {
        Timeline::from_commits(vec![
            Commit {
                version: 0,
                timestamp_ms: 100,
            },
            Commit {
                version: 1,
                timestamp_ms: 200,
            },
            Commit {
                version: 2,
                timestamp_ms: 300,
            },
        ])
    }

    #[test]
    fn resolution_rules() {
        let t = tl();
        assert_eq!(t.first_at_or_after(200).map(|c| c.version), Some(1));
        assert_eq!(t.first_at_or_after(201).map(|c| c.version), Some(2));
        assert_eq!(t.first_at_or_after(301), None);
        assert_eq!(t.last_at_or_before(299).map(|c| c.version), Some(1));
        assert_eq!(t.last_at_or_before(99), None);
        assert_eq!(t.timestamp_of(2), Some(300));
    }

    #[test]
    fn commit_file_names() {
        let u = Url::parse("file:///t/_delta_log/00000000000000000012.json").ok();
        assert_eq!(u.as_ref().and_then(commit_version), Some(12));
        let c = Url::parse("file:///t/_delta_log/00000000000000000010.checkpoint.parquet").ok();
        assert_eq!(c.as_ref().and_then(commit_version), None);
    }

    #[test]
    fn in_commit_timestamp_is_read_from_commit_info() {
        let text = b"{\"commitInfo\":{\"inCommitTimestamp\":1700,\"timestamp\":5}}\n{\"add\":{}}";
        assert_eq!(in_commit_timestamp(text), Some(1700));
        assert_eq!(in_commit_timestamp(b"{\"add\":{}}"), None);
    }
}
