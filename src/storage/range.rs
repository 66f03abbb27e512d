//! Byte-range reads of local files for the `/files` endpoint.

use std::io::SeekFrom;
use std::path::Path;

use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::error::StorageError;

/// A parsed single `Range: bytes=...` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` or `bytes=a-`.
    From {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: Option<u64>,
    },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a Range header. `None` means "ignore the header and send the whole file" (absent,
    /// multi-range or unparsable, as RFC 9110 allows).
    pub fn parse(header: Option<&str>) -> Option<Self> {
        let spec = header?.trim().strip_prefix("bytes=")?;
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        if a.is_empty() {
            return b.parse().ok().map(Self::Suffix);
        }
        let start = a.parse().ok()?;
        let end = if b.is_empty() {
            None
        } else {
            Some(b.parse().ok()?)
        };
        if end.is_some_and(|e| e < start) {
            return None;
        }
        Some(Self::From { start, end })
    }

    /// Resolves against the object size to an inclusive `(start, end)`.
    pub fn resolve(self, size: u64) -> Result<(u64, u64), StorageError> {
        let unsatisfiable = StorageError::RangeNotSatisfiable { size };
        match self {
            Self::From { start, end } => {
                if start >= size {
                    return Err(unsatisfiable);
                }
                let end = end.map_or(size - 1, |e| e.min(size - 1));
                Ok((start, end))
            }
            Self::Suffix(n) => {
                if n == 0 || size == 0 {
                    return Err(unsatisfiable);
                }
                Ok((size.saturating_sub(n), size - 1))
            }
        }
    }
}

/// What the file endpoint sends.
pub struct FileBody {
    /// Total object size.
    pub size: u64,
    /// Inclusive byte range sent, if a range was requested.
    pub range: Option<(u64, u64)>,
    /// Number of bytes in the body.
    pub content_length: u64,
    /// The bytes (empty for HEAD).
    pub stream: std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
}

/// Opens `path` and prepares a body for `range` (`None` = whole file); `head` sends no bytes.
pub async fn open(
    path: &Path,
    range: Option<ByteRange>,
    head: bool,
) -> Result<FileBody, StorageError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound,
            _ => StorageError::Io(e),
        })?;
    let size = file.metadata().await?.len();
    let resolved = match range {
        Some(r) => Some(r.resolve(size)?),
        None => None,
    };
    let (start, len) = match resolved {
        Some((s, e)) => (s, e - s + 1),
        None => (0, size),
    };
    if head {
        return Ok(FileBody {
            size,
            range: resolved,
            content_length: len,
            stream: Box::pin(futures::stream::empty()),
        });
    }
    file.seek(SeekFrom::Start(start)).await?;
    let reader = file.take(len);
    Ok(FileBody {
        size,
        range: resolved,
        content_length: len,
        stream: Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader,
            64 * 1024,
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_resolve() {
        assert_eq!(
            ByteRange::parse(Some("bytes=0-9")).map(|r| r.resolve(100).ok()),
            Some(Some((0, 9)))
        );
        assert_eq!(
            ByteRange::parse(Some("bytes=90-")).map(|r| r.resolve(100).ok()),
            Some(Some((90, 99)))
        );
        assert_eq!(
            ByteRange::parse(Some("bytes=-5")).map(|r| r.resolve(100).ok()),
            Some(Some((95, 99)))
        );
        assert_eq!(
            ByteRange::parse(Some("bytes=50-500")).map(|r| r.resolve(100).ok()),
            Some(Some((50, 99)))
        );
        assert!(ByteRange::parse(Some("bytes=0-1,5-6")).is_none());
        assert!(ByteRange::parse(Some("items=0-1")).is_none());
        assert!(matches!(
            ByteRange::parse(Some("bytes=100-")).map(|r| r.resolve(100)),
            Some(Err(StorageError::RangeNotSatisfiable { size: 100 }))
        ));
    }
}
