//! Table locations: validated table roots and resolution of log paths under them.

use std::path::{Path, PathBuf};

use url::Url;

use super::error::StorageError;

/// A validated table root. Its URL always ends with `/`.
///
/// Invariant: every data path this type hands out resolves under the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableLocation {
    url: Url,
}

impl TableLocation {
    /// Parses a configured location: an absolute path, a path relative to `base_dir`, a
    /// `file://` URL, or a cloud URL (`s3://`/`s3a://`, `abfss://`/`abfs://`, `wasbs://`/
    /// `wasb://`, `az://`, `https://<account>.blob.core.windows.net/<container>/...`, `gs://`).
    /// Cloud URLs are normalized to one spelling per store ([`StoreKind`]).
    pub fn parse(raw: &str, base_dir: &Path) -> Result<Self, StorageError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(StorageError::InvalidLocation("empty location".to_owned()));
        }
        let url = if raw.contains("://") {
            let url = Url::parse(raw)
                .map_err(|e| StorageError::InvalidLocation(format!("'{raw}': {e}")))?;
            normalize_cloud(url, raw)?
        } else {
            let path = Path::new(raw);
            let abs: PathBuf = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base_dir.join(path)
            };
            let abs = normalize(&abs);
            Url::from_directory_path(&abs).map_err(|()| {
                StorageError::InvalidLocation(format!("'{raw}' is not a valid directory path"))
            })?
        };
        Self::from_url(url)
    }

    /// Wraps a (normalized) URL, adding the trailing slash.
    pub fn from_url(mut url: Url) -> Result<Self, StorageError> {
        if StoreKind::of(&url).is_none() {
            return Err(StorageError::Unsupported(url.to_string()));
        }
        if url.scheme() != "file" && url.host_str().is_none_or(str::is_empty) {
            return Err(StorageError::InvalidLocation(format!(
                "'{url}' names no bucket or container"
            )));
        }
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        Ok(Self { url })
    }

    /// Which store the table lives in.
    pub fn kind(&self) -> StoreKind {
        StoreKind::of(&self.url).unwrap_or(StoreKind::Local)
    }

    /// The root URL (with trailing slash).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The root as a local directory.
    pub fn local_root(&self) -> Result<PathBuf, StorageError> {
        self.url
            .to_file_path()
            .map_err(|()| StorageError::InvalidLocation(self.url.to_string()))
    }

    /// Resolves a path from the Delta log (relative, URL-encoded; or absolute under the root)
    /// to a URL under the root. Anything outside the root is refused.
    pub fn resolve(&self, log_path: &str) -> Result<Url, StorageError> {
        let joined = self
            .url
            .join(log_path)
            .map_err(|e| StorageError::InvalidLocation(format!("bad file path in log: {e}")))?;
        if joined.scheme() != self.url.scheme()
            || joined.host() != self.url.host()
            || !joined.path().starts_with(self.url.path())
            || joined.path().len() == self.url.path().len()
        {
            return Err(StorageError::OutsideRoot(log_path.to_owned()));
        }
        Ok(joined)
    }

    /// Resolves a log path to an existing local file, following symlinks, and checks that the
    /// real file is under the real table root (no symlink escape).
    pub fn resolve_local_file(&self, log_path: &str) -> Result<PathBuf, StorageError> {
        let url = self.resolve(log_path)?;
        let path = url
            .to_file_path()
            .map_err(|()| StorageError::OutsideRoot(log_path.to_owned()))?;
        let real = std::fs::canonicalize(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound,
            _ => StorageError::Io(e),
        })?;
        let real_root = std::fs::canonicalize(self.local_root()?)?;
        if !real.starts_with(&real_root) || !real.is_file() {
            return Err(StorageError::OutsideRoot(log_path.to_owned()));
        }
        Ok(real)
    }
}

/// The store a location lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// Local disk (`file://`), served by Lakeshare itself.
    Local,
    /// Amazon S3 or an S3-compatible store (`s3://bucket/...`).
    S3,
    /// Azure Blob Storage / ADLS Gen2 (`abfss://container@account.dfs.core.windows.net/...` or
    /// `az://container/...` with the account from the storage settings).
    Azure,
    /// Google Cloud Storage (`gs://bucket/...`).
    Gcs,
}

impl StoreKind {
    /// The kind of a normalized URL (`None` if unsupported).
    pub fn of(url: &Url) -> Option<Self> {
        match url.scheme() {
            "file" => Some(Self::Local),
            "s3" => Some(Self::S3),
            "abfss" | "az" => Some(Self::Azure),
            "gs" => Some(Self::Gcs),
            _ => None,
        }
    }
}

/// One spelling per store: `s3a` → `s3`; `wasbs`/`wasb`/`abfs`/blob `https` → `abfss` with the
/// account's `dfs` host (the container is the user part).
fn normalize_cloud(url: Url, raw: &str) -> Result<Url, StorageError> {
    let bad = |why: &str| StorageError::InvalidLocation(format!("'{raw}': {why}"));
    let scheme = url.scheme().to_ascii_lowercase();
    let host = url.host_str().unwrap_or_default().to_owned();
    let rebuilt = |s: &str| Url::parse(s).map_err(|e| bad(&e.to_string()));
    match scheme.as_str() {
        "file" | "s3" | "gs" | "az" => Ok(url),
        "s3a" => rebuilt(&format!("s3://{host}{}", url.path())),
        "abfss" | "abfs" | "wasbs" | "wasb" => {
            let container = url.username();
            let account = host.split('.').next().unwrap_or_default();
            if container.is_empty() || account.is_empty() {
                return Err(bad(
                    "use <scheme>://<container>@<account>.dfs.core.windows.net/<path>",
                ));
            }
            rebuilt(&format!(
                "abfss://{container}@{account}.dfs.core.windows.net{}",
                url.path()
            ))
        }
        "https"
            if host.ends_with(".blob.core.windows.net")
                || host.ends_with(".dfs.core.windows.net") =>
        {
            let account = host.split('.').next().unwrap_or_default();
            let mut segments = url.path().trim_start_matches('/').splitn(2, '/');
            let container = segments.next().unwrap_or_default();
            let rest = segments.next().unwrap_or_default();
            if container.is_empty() {
                return Err(bad("the URL names no container"));
            }
            rebuilt(&format!(
                "abfss://{container}@{account}.dfs.core.windows.net/{rest}"
            ))
        }
        _ => Err(StorageError::Unsupported(raw.to_owned())),
    }
}

/// Removes `.` and `..` components lexically (the path need not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_paths_resolve_under_root() {
        let loc = TableLocation::parse("t1", Path::new("/data/cfg")).unwrap_or_else(|e| {
            unreachable!("{e}");
        });
        assert_eq!(loc.url().as_str(), "file:///data/cfg/t1/");
        let u = loc
            .resolve("a%20b/part-1.parquet")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            u.to_file_path().ok(),
            Some(PathBuf::from("/data/cfg/t1/a b/part-1.parquet"))
        );
        let abs = loc.resolve("file:///data/cfg/t1/x.parquet");
        assert!(abs.is_ok());
    }

    #[test]
    fn escapes_are_refused() {
        let loc = TableLocation::parse("/data/t1", Path::new("/")).unwrap_or_else(|e| {
            unreachable!("{e}");
        });
        for bad in [
            "../t2/x.parquet",
            "../../etc/passwd",
            "/etc/passwd",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(loc.resolve(bad), Err(StorageError::OutsideRoot(_))),
                "{bad} must be refused"
            );
        }
        assert!(
            loc.resolve("%2e%2e/t2/x").is_err()
                || loc
                    .resolve("%2e%2e/t2/x")
                    .is_ok_and(|u| u.path().starts_with("/data/t1/"))
        );
    }

    #[test]
    fn cloud_urls_are_normalized_to_one_spelling_per_store() {
        let p = |raw: &str| {
            TableLocation::parse(raw, Path::new("/"))
                .map(|l| (l.url().to_string(), l.kind()))
                .unwrap_or_else(|e| unreachable!("{raw}: {e}"))
        };
        assert_eq!(p("s3a://b/x/t"), ("s3://b/x/t/".into(), StoreKind::S3));
        assert_eq!(p("s3://b/x/t/"), ("s3://b/x/t/".into(), StoreKind::S3));
        let adls = "abfss://c@acct.dfs.core.windows.net/x/t/".to_owned();
        assert_eq!(
            p("abfss://c@acct.dfs.core.windows.net/x/t"),
            (adls.clone(), StoreKind::Azure)
        );
        assert_eq!(
            p("wasbs://c@acct.blob.core.windows.net/x/t"),
            (adls.clone(), StoreKind::Azure)
        );
        assert_eq!(
            p("https://acct.blob.core.windows.net/c/x/t"),
            (adls, StoreKind::Azure)
        );
        assert_eq!(p("az://c/x/t"), ("az://c/x/t/".into(), StoreKind::Azure));
        assert_eq!(p("gs://b/t"), ("gs://b/t/".into(), StoreKind::Gcs));
        let loc = TableLocation::parse("s3://b/x/t", Path::new("/"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(matches!(
            loc.resolve("../u/part.parquet"),
            Err(StorageError::OutsideRoot(_))
        ));
        assert!(matches!(
            loc.resolve("s3://other/x/t/part.parquet"),
            Err(StorageError::OutsideRoot(_))
        ));
        for bad in ["ftp://h/t", "hdfs://nn/t", "https://example.com/t"] {
            let err = TableLocation::parse(bad, Path::new("/")).err();
            assert!(matches!(err, Some(StorageError::Unsupported(_))), "{bad}");
        }
        assert!(
            TableLocation::parse("wasbs://acct.blob.core.windows.net/t", Path::new("/")).is_err()
        );
    }
}
