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
    /// Parses a configured location: an absolute path, a path relative to `base_dir`, or a
    /// `file://` URL. Cloud URLs are recognised and refused with a clear message.
    pub fn parse(raw: &str, base_dir: &Path) -> Result<Self, StorageError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(StorageError::InvalidLocation("empty location".to_owned()));
        }
        let url = if let Some((scheme, _)) = raw.split_once("://") {
            match scheme.to_ascii_lowercase().as_str() {
                "file" => Url::parse(raw)
                    .map_err(|e| StorageError::InvalidLocation(format!("'{raw}': {e}")))?,
                _ => return Err(StorageError::Unsupported(raw.to_owned())),
            }
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

    /// Wraps a URL, adding the trailing slash.
    pub fn from_url(mut url: Url) -> Result<Self, StorageError> {
        if url.scheme() != "file" {
            return Err(StorageError::Unsupported(url.to_string()));
        }
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        Ok(Self { url })
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
    fn cloud_urls_are_refused_clearly() {
        let err = TableLocation::parse("s3://bucket/t", Path::new("/")).err();
        assert!(matches!(err, Some(StorageError::Unsupported(_))));
    }
}
