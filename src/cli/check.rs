//! `lakeshare check-config`: validates a config and opens every table.

use std::path::Path;
use std::sync::Arc;

use anyhow::bail;

use super::serve::load_config;
use crate::delta::reader::TableReader;

/// Validates `path` and opens each table's latest snapshot; names every failing table.
pub async fn run(path: &Path) -> anyhow::Result<()> {
    let config = load_config(path)?;
    let stores = super::wiring::storage_registry(&config);
    let reader = Arc::new(TableReader::new(stores.clone(), 16));
    let mut cloud = Vec::new();
    let mut failures = 0;
    let mut count = 0;
    for share in &config.shares {
        for schema in &share.schemas {
            for table in &schema.tables {
                count += 1;
                let name = format!("{}.{}.{}", share.name, schema.name, table.name);
                cloud.push(super::storage_check::TableToCheck {
                    name: name.clone(),
                    location: table.location.clone(),
                });
                let url = url::Url::parse(&table.location)?;
                let r = reader.clone();
                let result = tokio::task::spawn_blocking(move || {
                    let s = r.latest(&url)?;
                    let info = r.info(&s)?;
                    Ok::<_, crate::delta::DeltaError>((s.version(), info))
                })
                .await?;
                match result {
                    Ok((version, info)) => println!(
                        "ok    {name}: version {version}, protocol {}/{}, {} partition column(s)",
                        info.protocol.min_reader_version,
                        info.protocol.min_writer_version,
                        info.metadata.partition_columns.len()
                    ),
                    Err(e) => {
                        failures += 1;
                        let storage = url::Url::parse(&table.location)
                            .ok()
                            .filter(|u| u.scheme() != "file")
                            .map(|u| {
                                stores.rule_for(&u).map_or_else(
                                    || " with environment credentials".to_owned(),
                                    |r| format!(" with storage '{}'", r.prefix),
                                )
                            })
                            .unwrap_or_default();
                        eprintln!("error {name} at {}{storage}: {e}", table.location);
                    }
                }
            }
        }
    }
    if failures > 0 {
        bail!("{failures} of {count} table(s) cannot be opened");
    }
    let problems = super::storage_check::check_cloud_tables(&cloud, stores, reader).await;
    for p in &problems {
        eprintln!("error {p}");
    }
    if !problems.is_empty() {
        bail!("{} storage problem(s)", problems.len());
    }
    super::wiring::validate_partition_filters(&config).await?;
    println!("config OK: {count} table(s) open");
    Ok(())
}
