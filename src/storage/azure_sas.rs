//! Azure service SAS tokens signed with the account key: one blob (`sr=b`, read) for file URLs,
//! one directory (`sr=d`) or container (`sr=c`) for directory access.
//!
//! The canonicalized resource is the *decoded* blob name, as Azure (and Azurite) compute it on
//! their side: a file under a Spark-escaped partition folder (`region=a%3Db`, `50%25off`,
//! non-ASCII) must be signed over its real name, not over the URL's percent-encoded path.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::Url;

use super::error::StorageError;

/// The SAS service version Lakeshare signs with.
pub const AZURE_SAS_VERSION: &str = "2022-11-02";

/// The inputs of a service SAS.
#[derive(Debug, Clone)]
pub struct ServiceSas<'a> {
    /// Signed permissions (`r`, `rl`).
    pub permissions: &'a str,
    /// Start (RFC 3339, seconds).
    pub start: &'a str,
    /// Expiry (RFC 3339, seconds).
    pub expiry: &'a str,
    /// `/blob/<account>/<container>[/<decoded name>]`.
    pub canonical_resource: String,
    /// `https` only, or empty for any protocol (emulators, `allow_http`).
    pub protocol: &'a str,
    /// `b`, `d` or `c`.
    pub resource: &'static str,
    /// Directory depth (`sdd`), for `sr=d` only.
    pub directory_depth: Option<usize>,
}

impl ServiceSas<'_> {
    /// The string-to-sign (service SAS, version 2020-12-06 and later).
    pub fn string_to_sign(&self) -> String {
        [
            self.permissions,
            self.start,
            self.expiry,
            &self.canonical_resource,
            "", // signed identifier
            "", // signed IP
            self.protocol,
            AZURE_SAS_VERSION,
            self.resource,
            "", // snapshot time
            "", // encryption scope
            "", // rscc
            "", // rscd
            "", // rsce
            "", // rscl
            "", // rsct
        ]
        .join("\n")
    }

    /// The SAS token (query string without `?`) signed with the base64 account key.
    pub fn token(&self, account_key_b64: &str) -> Result<String, StorageError> {
        let key = STANDARD
            .decode(account_key_b64.trim())
            .map_err(|_| StorageError::Config("the Azure account key is not base64".into()))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|e| StorageError::Config(e.to_string()))?;
        mac.update(self.string_to_sign().as_bytes());
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("sv", AZURE_SAS_VERSION)
            .append_pair("st", self.start)
            .append_pair("se", self.expiry)
            .append_pair("sr", self.resource)
            .append_pair("sp", self.permissions);
        if let Some(depth) = self.directory_depth {
            q.append_pair("sdd", &depth.to_string());
        }
        if !self.protocol.is_empty() {
            q.append_pair("spr", self.protocol);
        }
        q.append_pair("sig", &sig);
        Ok(q.finish())
    }
}

/// The canonicalized resource of a blob URL: `/blob/<account>/<container>/<name>` with the
/// name decoded. Emulator URLs carry the account as their first path segment
/// (`http://127.0.0.1:10000/devstoreaccount1/container/name`).
pub fn blob_canonical_resource(url: &Url, account: &str) -> Result<String, StorageError> {
    let decoded = percent_encoding::percent_decode_str(url.path())
        .decode_utf8()
        .map_err(|_| StorageError::InvalidLocation(format!("'{}' is not UTF-8", url.path())))?;
    let on_account_host = url
        .host_str()
        .is_some_and(|h| h.split('.').next() == Some(account) && h.contains('.'));
    Ok(if on_account_host {
        format!("/blob/{account}{decoded}")
    } else {
        format!("/blob{decoded}")
    })
}

/// RFC 3339 with whole seconds, as SAS fields spell times.
pub fn sas_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_resource_is_the_decoded_name() {
        let u = Url::parse(
            "https://acct.blob.core.windows.net/lake/t/region=north%20east/50%2525off/a%253Db/%C3%A9.parquet",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            blob_canonical_resource(&u, "acct").unwrap_or_else(|e| unreachable!("{e}")),
            "/blob/acct/lake/t/region=north east/50%25off/a%3Db/é.parquet"
        );
        let emu = Url::parse("http://127.0.0.1:10000/devstoreaccount1/lake/x%20y")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            blob_canonical_resource(&emu, "devstoreaccount1")
                .unwrap_or_else(|e| unreachable!("{e}")),
            "/blob/devstoreaccount1/lake/x y"
        );
    }

    #[test]
    fn blob_sas_known_answer() {
        let sas = ServiceSas {
            permissions: "r",
            start: "2026-01-01T00:00:00Z",
            expiry: "2026-01-01T01:00:00Z",
            canonical_resource: "/blob/acct/lake/a b".to_owned(),
            protocol: "",
            resource: "b",
            directory_depth: None,
        };
        assert_eq!(
            sas.string_to_sign(),
            "r\n2026-01-01T00:00:00Z\n2026-01-01T01:00:00Z\n/blob/acct/lake/a b\n\n\n\n2022-11-02\nb\n\n\n\n\n\n\n"
        );
        let token = sas.token("a2V5").unwrap_or_else(|e| unreachable!("{e}"));
        let mut mac =
            Hmac::<Sha256>::new_from_slice(b"key").unwrap_or_else(|e| unreachable!("{e}"));
        mac.update(sas.string_to_sign().as_bytes());
        let want = STANDARD.encode(mac.finalize().into_bytes());
        let q: std::collections::BTreeMap<String, String> =
            url::form_urlencoded::parse(token.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(q["sig"], want);
        assert_eq!(q["sr"], "b");
        assert!(!q.contains_key("sdd") && !q.contains_key("spr"));
    }
}
