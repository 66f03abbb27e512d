//! Response-format negotiation and the protocol/metaData head lines.
//!
//! Rules (PROTOCOL-NOTES §3.2–3.3): no `responseformat` → parquet; a table that needs nothing
//! beyond reader version 1 answers parquet whenever parquet is acceptable; otherwise delta,
//! but only if the client listed every reader feature the table needs.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;

use super::ServiceError;
use crate::delta::info::{ProtocolInfo, TableInfo};
use crate::domain::model::SharedTable;
use crate::protocol::actions::{
    DeltaMetadata, DeltaMetadataWrapper, DeltaProtocol, DeltaProtocolWrapper, Format, MetadataLine,
    ParquetMetadata, ParquetProtocol, ProtocolLine,
};
use crate::protocol::capabilities::{Capabilities, ResponseFormat};

/// Reader features a sharing client never needs to know about, because the server does the
/// log replay (checkpoint formats, vacuum protection).
const TRANSPARENT_READER_FEATURES: &[&str] = &["v2checkpoint", "vacuumprotocolcheck"];

/// Reader features a delta-format client must list in `readerfeatures`: without them a reader
/// would silently return wrong rows (deleted rows, physical column names).
const ANNOUNCED_READER_FEATURES: &[&str] = &["deletionvectors", "columnmapping"];

/// Reader features (lower-cased) this table uses that the parquet format cannot express.
pub(crate) fn required_reader_features(info: &TableInfo) -> Vec<String> {
    let mut needed: Vec<String> = info
        .reader_features_lower()
        .into_iter()
        .filter(|f| !TRANSPARENT_READER_FEATURES.contains(&f.as_str()))
        .collect();
    if info.column_mapping_mode() != "none" && !needed.iter().any(|f| f == "columnmapping") {
        needed.push("columnmapping".to_owned());
    }
    if info.deletion_vectors_enabled() && !needed.iter().any(|f| f == "deletionvectors") {
        needed.push("deletionvectors".to_owned());
    }
    needed
}

/// Chooses the response format for `caps` and table `info`.
pub(crate) fn negotiate(
    caps: &Capabilities,
    info: &TableInfo,
    table: &SharedTable,
) -> Result<ResponseFormat, ServiceError> {
    let requested = if caps.response_formats.is_empty() {
        if !caps.unknown_formats.is_empty() {
            return Err(ServiceError::InvalidParameter(format!(
                "Unsupported responseformat {:?}: supported formats are parquet and delta",
                caps.unknown_formats
            )));
        }
        vec![ResponseFormat::Parquet]
    } else {
        caps.response_formats.clone()
    };
    let needed = required_reader_features(info);
    let parquet_ok = requested.contains(&ResponseFormat::Parquet);
    if needed.is_empty() && parquet_ok {
        return Ok(ResponseFormat::Parquet);
    }
    if requested.contains(&ResponseFormat::Delta) {
        // Only features whose absence a delta reader would not notice must be announced (as the
        // reference server checks); any other one is named in the protocol line, and the
        // client's own reader refuses it if it cannot read it. The stock Python client, whose
        // kernel reads type-widened and variant tables, announces only deletion vectors,
        // column mapping and timestamp_ntz.
        let missing: Vec<&String> = needed
            .iter()
            .filter(|f| ANNOUNCED_READER_FEATURES.contains(&f.as_str()))
            .filter(|f| !caps.supports_reader_feature(f))
            .collect();
        if missing.is_empty() {
            return Ok(ResponseFormat::Delta);
        }
        return Err(ServiceError::Unsupported(format!(
            "Unsupported Delta Table Properties: table {} needs the reader features {:?}, which \
             the client did not list in 'readerfeatures' of the delta-sharing-capabilities header",
            table.qualified_name(),
            missing
        )));
    }
    Err(ServiceError::Unsupported(format!(
        "Unsupported Delta Table Properties: table {} uses {:?}, which the parquet response \
         format cannot express; request 'responseformat=delta' with these reader features",
        table.qualified_name(),
        needed
    )))
}

fn line<T: Serialize>(value: &T) -> Result<Bytes, ServiceError> {
    let mut buf = serde_json::to_vec(value)
        .map_err(|e| ServiceError::Internal(format!("serialization failed: {e}")))?;
    buf.push(b'\n');
    Ok(Bytes::from(buf))
}

/// Serializes one NDJSON line (used by the query stream too).
pub(crate) fn ndjson_line<T: Serialize>(value: &T) -> Result<Bytes, ServiceError> {
    line(value)
}

/// Top-level field metadata other than `comment` is stripped for parquet-format clients.
fn parquet_schema_string(schema: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(schema) else {
        return schema.to_owned();
    };
    let mut changed = false;
    if let Some(fields) = value.get_mut("fields").and_then(|f| f.as_array_mut()) {
        for field in fields {
            if let Some(meta) = field.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                let before = meta.len();
                meta.retain(|k, _| k == "comment");
                changed |= meta.len() != before;
            }
        }
    }
    if changed {
        serde_json::to_string(&value).unwrap_or_else(|_| schema.to_owned())
    } else {
        schema.to_owned()
    }
}

/// The protocol and metaData lines of a response (`meta_version` is set on the metaData line
/// of change-style responses, `protocol_version` on the delta protocol line when the client
/// asked for historical protocol lines).
pub(crate) fn head_lines(
    format: ResponseFormat,
    info: &TableInfo,
    table: &SharedTable,
    meta_version: Option<i64>,
    protocol_version: Option<i64>,
) -> Result<[Bytes; 2], ServiceError> {
    let protocol = match format {
        ResponseFormat::Parquet => line(&ProtocolLine {
            protocol: ParquetProtocol {
                min_reader_version: 1,
            },
        })?,
        ResponseFormat::Delta => delta_protocol_line(&info.protocol, protocol_version)?,
    };
    Ok([protocol, metadata_line(format, info, table, meta_version)?])
}

/// A delta-format protocol line (with `version` for historical protocol lines).
pub(crate) fn delta_protocol_line(
    protocol: &ProtocolInfo,
    version: Option<i64>,
) -> Result<Bytes, ServiceError> {
    line(&ProtocolLine {
        protocol: DeltaProtocolWrapper {
            delta_protocol: DeltaProtocol {
                min_reader_version: protocol.min_reader_version,
                min_writer_version: protocol.min_writer_version,
                reader_features: protocol.reader_features.clone(),
                writer_features: protocol.writer_features.clone(),
            },
            version,
        },
    })
}

/// A metaData line in `format` (with `version` on change-style responses).
pub(crate) fn metadata_line(
    format: ResponseFormat,
    info: &TableInfo,
    table: &SharedTable,
    version: Option<i64>,
) -> Result<Bytes, ServiceError> {
    let m = &info.metadata;
    match format {
        ResponseFormat::Parquet => {
            let mut configuration = BTreeMap::new();
            if table.history_shared && info.change_data_feed_enabled() {
                configuration.insert("enableChangeDataFeed".to_owned(), "true".to_owned());
            }
            line(&MetadataLine {
                meta_data: ParquetMetadata {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    description: m.description.clone(),
                    format: Format {
                        provider: m.format.provider.clone(),
                        options: None,
                    },
                    schema_string: parquet_schema_string(&m.schema_string),
                    partition_columns: m.partition_columns.clone(),
                    configuration,
                    version,
                    size: None,
                    num_files: None,
                },
            })
        }
        ResponseFormat::Delta => line(&MetadataLine {
            meta_data: DeltaMetadataWrapper {
                delta_metadata: DeltaMetadata {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    description: m.description.clone(),
                    format: Format {
                        provider: m.format.provider.clone(),
                        options: Some(m.format.options.clone()),
                    },
                    schema_string: m.schema_string.clone(),
                    partition_columns: m.partition_columns.clone(),
                    configuration: m.configuration.clone(),
                    created_time: m.created_time,
                },
                version,
                size: None,
                num_files: None,
            },
        }),
    }
}
