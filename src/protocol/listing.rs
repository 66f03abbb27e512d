//! Bodies of the list and get endpoints (shares, schemas, tables).

use serde::Serialize;

/// A share as listed to a recipient.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    /// Share name.
    pub name: String,
    /// Stable share id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A schema inside a share.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// Schema name.
    pub name: String,
    /// Share name.
    pub share: String,
}

/// A table inside a schema.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// Table name.
    pub name: String,
    /// Schema name.
    pub schema: String,
    /// Share name.
    pub share: String,
    /// Stable id of the share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_id: Option<String>,
    /// Stable id of the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Table root, when directory access is offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `["url", "dir"]` when directory access is offered (absent = URL access only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_modes: Option<Vec<String>>,
}

/// One page of a listing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Token for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Body of `GET /shares/{share}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GetShareResponse {
    /// The share.
    pub share: Share,
}
