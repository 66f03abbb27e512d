//! The `delta-sharing-capabilities` and `fileidhash` headers.

use std::collections::BTreeSet;

/// Name of the capabilities header (request and response).
pub const CAPABILITIES_HEADER: &str = "delta-sharing-capabilities";
/// Name of the file-id hash header (request and echoed response).
pub const FILE_ID_HASH_HEADER: &str = "fileidhash";
/// Name of the table version response header.
pub const TABLE_VERSION_HEADER: &str = "delta-table-version";

/// A response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResponseFormat {
    /// The original, parquet-only format.
    Parquet,
    /// Delta actions (`deltaProtocol`, `deltaMetadata`, `deltaSingleAction`).
    Delta,
}

impl ResponseFormat {
    /// Lower-case wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Delta => "delta",
        }
    }
}

/// Parsed request capabilities. Keys and values are case-insensitive; malformed pieces are
/// dropped, as the reference server does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Formats the client accepts, in the order given; empty = no preference (parquet).
    pub response_formats: Vec<ResponseFormat>,
    /// Unknown format names the client sent (reported in errors).
    pub unknown_formats: Vec<String>,
    /// Reader features the client can handle, lower-cased.
    pub reader_features: BTreeSet<String>,
    /// `includeendstreamaction=true`.
    pub include_end_stream_action: bool,
    /// `asyncquery=true`.
    pub async_query: bool,
}

impl Capabilities {
    /// Parses a header value such as
    /// `responseformat=delta,parquet;readerfeatures=deletionvectors,columnmapping`.
    pub fn parse(value: Option<&str>) -> Self {
        let mut caps = Self::default();
        let Some(value) = value else { return caps };
        for piece in value.to_ascii_lowercase().split(';') {
            let Some((key, values)) = piece.split_once('=') else {
                continue;
            };
            let items = values
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
            match key.trim() {
                "responseformat" => {
                    for item in items {
                        match item.as_str() {
                            "parquet" => caps.response_formats.push(ResponseFormat::Parquet),
                            "delta" => caps.response_formats.push(ResponseFormat::Delta),
                            _ => caps.unknown_formats.push(item),
                        }
                    }
                }
                "readerfeatures" => caps.reader_features.extend(items),
                "includeendstreamaction" => {
                    caps.include_end_stream_action = items.into_iter().any(|v| v == "true")
                }
                "asyncquery" => caps.async_query = items.into_iter().any(|v| v == "true"),
                _ => {}
            }
        }
        caps
    }

    /// Whether the client lists this (lower-cased) reader feature.
    pub fn supports_reader_feature(&self, feature: &str) -> bool {
        self.reader_features.contains(&feature.to_ascii_lowercase())
    }
}

/// Renders the response capabilities header value.
pub fn response_capabilities(
    format: ResponseFormat,
    end_stream: bool,
    async_query: bool,
) -> String {
    let mut v = format!("responseformat={}", format.as_str());
    if end_stream {
        v.push_str(";includeendstreamaction=true");
    }
    if async_query {
        v.push_str(";asyncquery=true");
    }
    v
}

/// The file-id scheme selected by the `fileidhash` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileIdHash {
    /// Lower-hex MD5 of the log path (32 chars).
    Parquet,
    /// Lower-hex SHA-256 of the log path (64 chars).
    Delta,
}

impl FileIdHash {
    /// Parses the header; `Err` carries the message for the 400 answer.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "parquet" => Ok(Self::Parquet),
            "delta" => Ok(Self::Delta),
            _ => Err(format!(
                "Unsupported fileidhash: '{raw}'. Supported: parquet, delta"
            )),
        }
    }

    /// The echoed header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Delta => "delta",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_delta_header_parses() {
        let caps = Capabilities::parse(Some(
            "responseformat=delta,parquet;readerfeatures=deletionvectors,columnmapping,timestampntz",
        ));
        assert_eq!(
            caps.response_formats,
            vec![ResponseFormat::Delta, ResponseFormat::Parquet]
        );
        assert!(caps.supports_reader_feature("deletionVectors"));
        assert!(caps.supports_reader_feature("timestampNtz"));
        assert!(!caps.include_end_stream_action);
    }

    #[test]
    fn malformed_pieces_are_dropped_and_case_ignored() {
        let caps = Capabilities::parse(Some("garbage;ResponseFormat=PARQUET;;x=;asyncQuery=TRUE"));
        assert_eq!(caps.response_formats, vec![ResponseFormat::Parquet]);
        assert!(caps.async_query);
    }

    #[test]
    fn fileidhash_rejects_unknown() {
        assert_eq!(FileIdHash::parse(" Delta "), Ok(FileIdHash::Delta));
        let err = FileIdHash::parse("md5").err().unwrap_or_default();
        assert!(err.contains("Unsupported fileidhash: 'md5'"), "{err}");
    }
}
