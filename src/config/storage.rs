//! The `storage` extension section: settings per location prefix for tables in S3, Azure and
//! GCS, mapped to `object_store` configuration keys. Secrets may be literals, `{env: NAME}` or
//! `{file: PATH}` (relative to the config file); they are resolved here and never logged.

use std::path::Path;

use super::raw::{RawStorage, RawValue};
use crate::storage::assume_role::AssumeRoleSettings;
use crate::storage::cloud::{DirectorySettings, StorageRule};
use crate::storage::location::{StoreKind, TableLocation};

/// (our key, object_store key, is a secret).
const S3_KEYS: &[(&str, &str, bool)] = &[
    ("region", "aws_region", false),
    ("endpoint", "aws_endpoint", false),
    ("accessKeyId", "aws_access_key_id", false),
    ("secretAccessKey", "aws_secret_access_key", true),
    ("sessionToken", "aws_session_token", true),
    ("allowHttp", "allow_http", false),
    ("pathStyle", "aws_virtual_hosted_style_request", false),
];
const AZURE_KEYS: &[(&str, &str, bool)] = &[
    ("accountName", "azure_storage_account_name", false),
    ("accessKey", "azure_storage_account_key", true),
    ("sasToken", "azure_storage_sas_key", true),
    ("clientId", "azure_storage_client_id", false),
    ("clientSecret", "azure_storage_client_secret", true),
    ("tenantId", "azure_storage_tenant_id", false),
    ("useEmulator", "azure_storage_use_emulator", false),
    ("endpoint", "azure_storage_endpoint", false),
    ("allowHttp", "allow_http", false),
];
const GCS_KEYS: &[(&str, &str, bool)] = &[
    ("serviceAccountKeyFile", "google_service_account", false),
    ("serviceAccountKey", "google_service_account_key", true),
    ("baseUrl", "google_base_url", false),
    ("allowHttp", "allow_http", false),
];

pub(crate) fn value(
    where_: &str,
    key: &str,
    v: &RawValue,
    secret: bool,
    base_dir: &Path,
) -> Result<String, String> {
    match v {
        RawValue::Text(t) => {
            if secret && !t.is_empty() {
                tracing::warn!(
                    "{where_}: '{key}' is written inline in the config; prefer {{env: NAME}} or \
                     {{file: PATH}}"
                );
            }
            Ok(t.clone())
        }
        RawValue::Flag(b) => Ok(b.to_string()),
        RawValue::Number(n) => Ok(n.to_string()),
        RawValue::Env { env } => std::env::var(env).map_err(|_| {
            format!("{where_}: '{key}' refers to environment variable {env}, which is not set")
        }),
        RawValue::File { file } => {
            let path = base_dir.join(file);
            std::fs::read_to_string(&path)
                .map(|t| t.trim().to_owned())
                .map_err(|e| format!("{where_}: '{key}': cannot read {}: {e}", path.display()))
        }
    }
}

/// Validates the section into storage rules (longest prefix wins at use).
pub(crate) fn rules(raw: Vec<RawStorage>, base_dir: &Path) -> Result<Vec<StorageRule>, String> {
    let mut out: Vec<StorageRule> = Vec::new();
    for entry in raw {
        let where_ = format!("storage '{}'", entry.location);
        let location = TableLocation::parse(&entry.location, base_dir)
            .map_err(|e| format!("{where_}: {e}"))?;
        let kind = location.kind();
        let (settings, table, name) = match (entry.s3, entry.azure, entry.gcs) {
            (Some(s), None, None) => (s, S3_KEYS, "s3"),
            (None, Some(a), None) => (a, AZURE_KEYS, "azure"),
            (None, None, Some(g)) => (g, GCS_KEYS, "gcs"),
            _ => {
                return Err(format!(
                    "{where_}: give exactly one of 's3', 'azure' or 'gcs' settings"
                ));
            }
        };
        let expected = match name {
            "s3" => StoreKind::S3,
            "azure" => StoreKind::Azure,
            _ => StoreKind::Gcs,
        };
        if kind != expected {
            return Err(format!(
                "{where_}: '{name}' settings do not fit a {kind:?} location"
            ));
        }
        let mut options = Vec::new();
        let mut directory: Option<DirectorySettings> = None;
        let mut role_arn = None;
        let mut sts_endpoint = None;
        let mut assume_role_arn = None;
        let mut assume_duration: i64 = 3600;
        for (key, v) in &settings {
            match (name, key.as_str()) {
                (_, "temporaryCredentials") => {
                    if value(&where_, key, v, false, base_dir)?.eq_ignore_ascii_case("true") {
                        directory = Some(DirectorySettings::default());
                    }
                    continue;
                }
                ("s3", "roleArn") => {
                    role_arn = Some(value(&where_, key, v, false, base_dir)?);
                    continue;
                }
                ("s3" | "gcs", "stsEndpoint") => {
                    sts_endpoint = Some(value(&where_, key, v, false, base_dir)?);
                    continue;
                }
                ("s3", "assumeRoleArn") => {
                    assume_role_arn = Some(value(&where_, key, v, false, base_dir)?);
                    continue;
                }
                ("s3", "assumeRoleDurationSeconds") => {
                    assume_duration = value(&where_, key, v, false, base_dir)?
                        .parse()
                        .ok()
                        .filter(|d| (900..=43_200).contains(d))
                        .ok_or_else(|| {
                            format!("{where_}: assumeRoleDurationSeconds must be 900 to 43200")
                        })?;
                    continue;
                }
                _ => {}
            }
            let Some((_, os_key, secret)) = table.iter().find(|(k, _, _)| k == key) else {
                let mut known: Vec<&str> = table.iter().map(|(k, _, _)| *k).collect();
                known.push("temporaryCredentials");
                if name == "s3" {
                    known.extend([
                        "roleArn",
                        "stsEndpoint",
                        "assumeRoleArn",
                        "assumeRoleDurationSeconds",
                    ]);
                } else if name == "gcs" {
                    known.push("stsEndpoint");
                }
                return Err(format!(
                    "{where_}: unknown {name} setting '{key}'; known: {}",
                    known.join(", ")
                ));
            };
            let mut resolved = value(&where_, key, v, *secret, base_dir)?;
            if key == "pathStyle" {
                // object_store's switch is the opposite: virtual-hosted-style requests.
                resolved = (!resolved.eq_ignore_ascii_case("true")).to_string();
            }
            options.push(((*os_key).to_owned(), resolved));
        }
        if out.iter().any(|r| r.prefix == location.url().as_str()) {
            return Err(format!("{where_}: declared twice"));
        }
        let assume_role = assume_role_arn.map(|role_arn| AssumeRoleSettings {
            role_arn,
            duration_s: assume_duration,
            sts_endpoint: sts_endpoint.clone(),
        });
        if let Some(d) = directory.as_mut() {
            d.role_arn = role_arn;
            d.sts_endpoint = sts_endpoint;
        } else if role_arn.is_some() || (sts_endpoint.is_some() && assume_role.is_none()) {
            return Err(format!(
                "{where_}: 'roleArn' needs 'temporaryCredentials: true'; 'stsEndpoint' needs \
                 'temporaryCredentials: true' or 'assumeRoleArn'"
            ));
        }
        if directory.is_some()
            && kind == StoreKind::Azure
            && !options
                .iter()
                .any(|(k, _)| k == "azure_storage_account_key")
        {
            return Err(format!(
                "{where_}: Azure temporary credentials are directory SAS tokens signed with the \
                 account key: set 'accessKey'"
            ));
        }
        out.push(StorageRule {
            assume_role,
            directory,
            prefix: location.url().to_string(),
            kind,
            options,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn raw(location: &str, s3: &[(&str, RawValue)]) -> RawStorage {
        let map: BTreeMap<String, RawValue> = s3
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    match v {
                        RawValue::Text(t) => RawValue::Text(t.clone()),
                        RawValue::Flag(b) => RawValue::Flag(*b),
                        RawValue::Number(n) => RawValue::Number(*n),
                        RawValue::Env { env } => RawValue::Env { env: env.clone() },
                        RawValue::File { file } => RawValue::File { file: file.clone() },
                    },
                )
            })
            .collect();
        RawStorage {
            location: location.to_owned(),
            s3: Some(map),
            azure: None,
            gcs: None,
        }
    }

    #[test]
    fn settings_map_to_object_store_keys_and_secrets_come_from_files() {
        let dir = std::env::temp_dir().join(format!("lks-storage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| unreachable!("{e}"));
        std::fs::write(dir.join("secret.txt"), "s3cr3t\n").unwrap_or_else(|e| unreachable!("{e}"));
        let r = rules(
            vec![raw(
                "s3a://bucket/warehouse",
                &[
                    ("region", RawValue::Text("eu-west-1".into())),
                    ("pathStyle", RawValue::Flag(true)),
                    (
                        "secretAccessKey",
                        RawValue::File {
                            file: "secret.txt".into(),
                        },
                    ),
                ],
            )],
            &dir,
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(r[0].prefix, "s3://bucket/warehouse/");
        assert!(
            r[0].options
                .contains(&("aws_region".into(), "eu-west-1".into()))
        );
        assert!(
            r[0].options
                .contains(&("aws_virtual_hosted_style_request".into(), "false".into()))
        );
        assert!(
            r[0].options
                .contains(&("aws_secret_access_key".into(), "s3cr3t".into()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wrong_settings_are_refused_with_the_reason() {
        let e = rules(
            vec![raw("s3://b/", &[("regoin", RawValue::Text("x".into()))])],
            Path::new("/"),
        );
        assert!(e.is_err_and(|m| m.contains("unknown s3 setting 'regoin'")));
        let e = rules(
            vec![raw(
                "s3://b/",
                &[(
                    "secretAccessKey",
                    RawValue::Env {
                        env: "LAKESHARE_SURELY_UNSET_VAR".into(),
                    },
                )],
            )],
            Path::new("/"),
        );
        assert!(e.is_err_and(|m| m.contains("LAKESHARE_SURELY_UNSET_VAR")));
        let e = rules(vec![raw("gs://b/", &[])], Path::new("/"));
        assert!(e.is_err_and(|m| m.contains("do not fit")));
    }
}
