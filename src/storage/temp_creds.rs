//! Directory access: temporary, read-only credentials scoped to one table's directory, for
//! clients that read the table straight from the store (protocol `accessModes: ["dir"]`).
//!
//! * S3: STS `AssumeRole` (with `roleArn`) or `GetFederationToken`, always with a session policy
//!   allowing only `s3:GetObject` under the table prefix and `s3:ListBucket` of that prefix.
//! * Azure: a service SAS for the table directory (`sr=d`, read + list), signed with the
//!   account key.
//! * GCS: a downscoped OAuth token (STS token exchange with a Credential Access Boundary that
//!   allows `objectViewer` on objects under the table prefix only).
//!
//! The request-building parts are pure functions with known-answer tests; the HTTP exchanges
//! use the endpoints in the storage settings (defaults: the vendors' public endpoints).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use url::Url;

use super::azure_sas::ServiceSas;
use super::error::StorageError;

/// A temporary credential for one table directory.
#[derive(Clone, PartialEq, Eq)]
pub enum TempCredential {
    /// AWS session credentials.
    Aws {
        /// Access key id.
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
        /// Session token.
        session_token: String,
    },
    /// An Azure SAS token (query string without `?`).
    AzureSas {
        /// The token.
        sas_token: String,
    },
    /// A downscoped GCP OAuth token.
    GcpToken {
        /// The token.
        oauth_token: String,
    },
}

impl std::fmt::Debug for TempCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Aws { .. } => "TempCredential::Aws(..)",
            Self::AzureSas { .. } => "TempCredential::AzureSas(..)",
            Self::GcpToken { .. } => "TempCredential::GcpToken(..)",
        })
    }
}

/// An issued credential and its real expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCredential {
    /// The location it is valid for.
    pub location: String,
    /// The credential.
    pub credential: TempCredential,
    /// Expiry (ms).
    pub expiration_ms: i64,
}

/// Bucket (or container) and key prefix (no leading slash, with trailing slash) of a root.
pub fn bucket_and_prefix(root: &Url) -> (String, String) {
    let bucket = if root.username().is_empty() {
        root.host_str().unwrap_or_default().to_owned()
    } else {
        root.username().to_owned()
    };
    let decoded = percent_encoding::percent_decode_str(root.path()).decode_utf8_lossy();
    let mut prefix = decoded.trim_start_matches('/').to_owned();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    (bucket, prefix)
}

// ---------------------------------------------------------------------------------------- AWS

/// The session policy: read objects under the prefix, list only under that prefix (a table at
/// the bucket root gets the whole bucket, read-only).
pub fn s3_session_policy(bucket: &str, prefix: &str) -> String {
    // `*`, `?` and `$` are wildcards or variables in IAM resources and StringLike conditions: a
    // table at `tb*` must not open `tbl/` and `tbl_other/` beside it.
    let p = iam_literal(prefix.trim_end_matches('/'));
    let bucket = iam_literal(bucket);
    let (bucket, p) = (bucket.as_str(), p.as_str());
    let (objects, list) = if p.is_empty() {
        (
            format!("arn:aws:s3:::{bucket}/*"),
            serde_json::json!({
                "Sid": "ListTablePrefix",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}")],
            }),
        )
    } else {
        (
            format!("arn:aws:s3:::{bucket}/{p}/*"),
            serde_json::json!({
                "Sid": "ListTablePrefix",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}")],
                "Condition": {"StringLike": {"s3:prefix": [format!("{p}/"), format!("{p}/*")]}},
            }),
        )
    };
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadTableObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": [objects],
            },
            list,
        ],
    })
    .to_string()
}

/// `s` as a literal inside an IAM policy ARN or `StringLike` value.
pub fn iam_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '$' => out.push_str("${$}"),
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            c => out.push(c),
        }
    }
    out
}

/// The shortest lifetime AWS STS grants (`DurationSeconds` minimum).
pub const STS_MIN_SECONDS: i64 = 900;

/// The STS form parameters (sorted): `AssumeRole` when `role_arn` is given, else
/// `GetFederationToken`.
pub fn sts_params(
    role_arn: Option<&str>,
    session_name: &str,
    policy: &str,
    duration_s: i64,
) -> BTreeMap<&'static str, String> {
    let mut p = BTreeMap::new();
    p.insert("Version", "2011-06-15".to_owned());
    p.insert("Policy", policy.to_owned());
    p.insert("DurationSeconds", duration_s.to_string());
    match role_arn {
        Some(arn) => {
            p.insert("Action", "AssumeRole".to_owned());
            p.insert("RoleArn", arn.to_owned());
            p.insert("RoleSessionName", session_name.to_owned());
        }
        None => {
            p.insert("Action", "GetFederationToken".to_owned());
            p.insert("Name", session_name.to_owned());
        }
    }
    p
}

/// A name STS accepts (`[\w+=,.@-]`, at most 32 characters).
pub fn sts_session_name(recipient: &str) -> String {
    let clean: String = recipient
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("lakeshare-{clean}").chars().take(32).collect()
}

fn xml_text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(&body[start..end])
}

/// Parses an STS response into credentials and their expiry.
pub fn parse_sts_response(body: &str) -> Result<(TempCredential, i64), StorageError> {
    if let Some(msg) = xml_text(body, "Message") {
        return Err(StorageError::Unavailable(format!("STS refused: {msg}")));
    }
    let get = |t: &str| {
        xml_text(body, t)
            .map(str::to_owned)
            .ok_or_else(|| StorageError::Unavailable(format!("STS response without {t}")))
    };
    let expiration = chrono::DateTime::parse_from_rfc3339(&get("Expiration")?)
        .map_err(|e| StorageError::Unavailable(format!("STS expiration: {e}")))?
        .timestamp_millis();
    Ok((
        TempCredential::Aws {
            access_key_id: get("AccessKeyId")?,
            secret_access_key: get("SecretAccessKey")?,
            session_token: get("SessionToken")?,
        },
        expiration,
    ))
}

// -------------------------------------------------------------------------------------- Azure

/// Inputs of a directory SAS.
#[derive(Debug, Clone)]
pub struct DirectorySas<'a> {
    /// Storage account.
    pub account: &'a str,
    /// Container.
    pub container: &'a str,
    /// Directory path inside the container (no leading or trailing slash), decoded.
    pub directory: &'a str,
    /// Start (RFC 3339, seconds).
    pub start: &'a str,
    /// Expiry (RFC 3339, seconds).
    pub expiry: &'a str,
    /// `https` only, or empty for any protocol (emulators).
    pub protocol: &'a str,
}

impl DirectorySas<'_> {
    /// Directory depth (`sdd`): the number of path segments.
    pub fn depth(&self) -> usize {
        self.directory.split('/').filter(|s| !s.is_empty()).count()
    }

    /// `d` for a directory, `c` for a table at the container root.
    pub fn resource(&self) -> &'static str {
        if self.depth() == 0 { "c" } else { "d" }
    }

    fn service_sas(&self) -> ServiceSas<'_> {
        let canonical_resource = if self.depth() == 0 {
            format!("/blob/{}/{}", self.account, self.container)
        } else {
            format!(
                "/blob/{}/{}/{}",
                self.account, self.container, self.directory
            )
        };
        ServiceSas {
            permissions: "rl",
            start: self.start,
            expiry: self.expiry,
            canonical_resource,
            protocol: self.protocol,
            resource: self.resource(),
            directory_depth: (self.depth() > 0).then(|| self.depth()),
        }
    }

    /// The string-to-sign of a service SAS for a directory (`sr=d`, or `sr=c` at the container
    /// root), permissions `rl`.
    pub fn string_to_sign(&self) -> String {
        self.service_sas().string_to_sign()
    }

    /// The SAS token signed with the base64 account key.
    pub fn token(&self, account_key_b64: &str) -> Result<String, StorageError> {
        self.service_sas().token(account_key_b64)
    }
}

// ---------------------------------------------------------------------------------------- GCS

/// The Credential Access Boundary: `objectViewer` on the bucket, limited to objects (and
/// listings) under the table prefix.
pub fn gcs_access_boundary(bucket: &str, prefix: &str) -> String {
    // The prefix goes into single-quoted CEL string literals: escape what would end them.
    let prefix = prefix.replace('\\', "\\\\").replace('\'', "\\'");
    serde_json::json!({
        "accessBoundary": {
            "accessBoundaryRules": [{
                "availableResource": format!("//storage.googleapis.com/projects/_/buckets/{bucket}"),
                "availablePermissions": ["inRole:roles/storage.objectViewer"],
                "availabilityCondition": {
                    "title": "lakeshare-table-prefix",
                    "expression": format!(
                        "resource.name.startsWith('projects/_/buckets/{bucket}/objects/{prefix}') || \
                         api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('{prefix}')"
                    ),
                },
            }],
        },
    })
    .to_string()
}

/// The STS token-exchange form for a downscoped token.
pub fn gcs_exchange_form(source_token: &str, boundary: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
        ),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token".to_owned(),
        ),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token".to_owned(),
        ),
        ("subject_token", source_token.to_owned()),
        ("options", boundary.to_owned()),
    ]
}

/// A service account key (the JSON file's fields we use).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ServiceAccountKey {
    /// Service account email.
    pub client_email: String,
    /// PEM PKCS#8 private key.
    pub private_key: String,
    /// Key id.
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// OAuth token endpoint.
    #[serde(default)]
    pub token_uri: Option<String>,
}

/// A signed JWT assertion for the OAuth JWT-bearer grant (RS256).
pub fn gcs_jwt_assertion(
    key: &ServiceAccountKey,
    token_uri: &str,
    now_s: i64,
) -> Result<String, StorageError> {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": key.private_key_id});
    let claims = serde_json::json!({
        "iss": key.client_email,
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "aud": token_uri,
        "iat": now_s,
        "exp": now_s + 3600,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let der = pem_der(&key.private_key)?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| StorageError::Config(format!("service account private key: {e}")))?;
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| StorageError::Config("cannot sign with the service account key".into()))?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

fn pem_der(pem: &str) -> Result<Vec<u8>, StorageError> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    STANDARD
        .decode(body.trim())
        .map_err(|_| StorageError::Config("service account private key is not PEM".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    #[test]
    fn iam_wildcards_in_table_paths_stay_literal() {
        let policy = s3_session_policy("lake", "dirt/tb*/");
        let v: serde_json::Value =
            serde_json::from_str(&policy).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            v["Statement"][0]["Resource"][0],
            "arn:aws:s3:::lake/dirt/tb${*}/*"
        );
        assert_eq!(
            v["Statement"][1]["Condition"]["StringLike"]["s3:prefix"],
            serde_json::json!(["dirt/tb${*}/", "dirt/tb${*}/*"])
        );
        assert_eq!(iam_literal("a?b$c*"), "a${?}b${$}c${*}");
        // GCS: a quote in the prefix cannot end the CEL string literal.
        let b = gcs_access_boundary("lake", "t')||true||('/");
        assert!(b.contains(r"objects/t\\')||true||(\\'/"), "{b}");
    }

    #[test]
    fn s3_policy_and_sts_request_are_exactly_as_specified() {
        let root = Url::parse("s3://lake/warehouse/sales/").unwrap_or_else(|e| unreachable!("{e}"));
        let (bucket, prefix) = bucket_and_prefix(&root);
        assert_eq!(
            (bucket.as_str(), prefix.as_str()),
            ("lake", "warehouse/sales/")
        );
        let policy = s3_session_policy(&bucket, &prefix);
        let v: serde_json::Value =
            serde_json::from_str(&policy).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            v["Statement"][0]["Resource"][0],
            "arn:aws:s3:::lake/warehouse/sales/*"
        );
        assert_eq!(
            v["Statement"][0]["Action"],
            serde_json::json!(["s3:GetObject", "s3:GetObjectVersion"])
        );
        assert_eq!(v["Statement"][1]["Resource"][0], "arn:aws:s3:::lake");
        assert_eq!(
            v["Statement"][1]["Condition"]["StringLike"]["s3:prefix"],
            serde_json::json!(["warehouse/sales/", "warehouse/sales/*"])
        );
        let root_policy: serde_json::Value = serde_json::from_str(&s3_session_policy("lake", ""))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            root_policy["Statement"][0]["Resource"][0],
            "arn:aws:s3:::lake/*"
        );
        assert!(root_policy["Statement"][1].get("Condition").is_none());
        let p = sts_params(None, "lakeshare-acme", &policy, 900);
        assert_eq!(p["Action"], "GetFederationToken");
        assert_eq!(p["Name"], "lakeshare-acme");
        assert_eq!(p["DurationSeconds"], "900");
        let p = sts_params(
            Some("arn:aws:iam::1:role/r"),
            "lakeshare-acme",
            &policy,
            900,
        );
        assert_eq!(p["Action"], "AssumeRole");
        assert_eq!(p["RoleArn"], "arn:aws:iam::1:role/r");
        assert_eq!(p["RoleSessionName"], "lakeshare-acme");
        assert_eq!(sts_session_name("a b/c").len(), "lakeshare-a-b-c".len());
        assert!(sts_session_name(&"x".repeat(80)).len() <= 32);
    }

    #[test]
    fn sts_responses_parse_and_errors_surface() {
        let ok = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>\
                  <SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>\
                  <Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>";
        let (c, exp) = parse_sts_response(ok).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(exp, 1_893_456_000_000);
        assert!(
            matches!(c, TempCredential::Aws { ref access_key_id, .. } if access_key_id == "ASIA1")
        );
        assert!(!format!("{c:?}").contains("ASIA1"));
        let err = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>nope</Message></Error></ErrorResponse>";
        assert!(
            matches!(parse_sts_response(err), Err(StorageError::Unavailable(m)) if m.contains("nope"))
        );
    }

    #[test]
    fn azure_directory_sas_known_answer() {
        let sas = DirectorySas {
            account: "acct",
            container: "lake",
            directory: "warehouse/sales",
            start: "2026-01-01T00:00:00Z",
            expiry: "2026-01-01T01:00:00Z",
            protocol: "https",
        };
        assert_eq!(sas.depth(), 2);
        assert_eq!(
            sas.string_to_sign(),
            "rl\n2026-01-01T00:00:00Z\n2026-01-01T01:00:00Z\n/blob/acct/lake/warehouse/sales\n\n\nhttps\n2022-11-02\nd\n\n\n\n\n\n\n"
        );
        // HMAC-SHA256 over the string-to-sign with the key "key" (base64 "a2V5").
        let token = sas.token("a2V5").unwrap_or_else(|e| unreachable!("{e}"));
        let mut mac =
            Hmac::<Sha256>::new_from_slice(b"key").unwrap_or_else(|e| unreachable!("{e}"));
        mac.update(sas.string_to_sign().as_bytes());
        let want = STANDARD.encode(mac.finalize().into_bytes());
        let q: BTreeMap<String, String> = url::form_urlencoded::parse(token.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(q["sig"], want);
        assert_eq!(q["sr"], "d");
        assert_eq!(q["sp"], "rl");
        assert_eq!(q["sdd"], "2");
        assert_eq!(q["spr"], "https");
    }

    #[test]
    fn gcs_boundary_limits_objects_and_listing_to_the_prefix() {
        let b = gcs_access_boundary("lake", "warehouse/sales/");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_else(|e| unreachable!("{e}"));
        let rule = &v["accessBoundary"]["accessBoundaryRules"][0];
        assert_eq!(
            rule["availableResource"],
            "//storage.googleapis.com/projects/_/buckets/lake"
        );
        assert_eq!(
            rule["availablePermissions"],
            serde_json::json!(["inRole:roles/storage.objectViewer"])
        );
        assert_eq!(
            rule["availabilityCondition"]["expression"],
            "resource.name.startsWith('projects/_/buckets/lake/objects/warehouse/sales/') || \
             api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('warehouse/sales/')"
        );
        let form = gcs_exchange_form("src", &b);
        assert_eq!(form[0].1, "urn:ietf:params:oauth:grant-type:token-exchange");
        assert_eq!(form[4], ("options", b));
    }
}
