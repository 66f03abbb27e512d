//! The incremental file list (base version + newer commits) equals a full log replay, on every
//! multi-version golden table and every base version.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use delta_kernel::Snapshot;
use delta_kernel_default_engine::DefaultEngineBuilder;
use lakeshare::delta::files::{ActiveFile, advance_active_files, list_active_files};
use object_store::local::LocalFileSystem;

fn key_set(files: &[ActiveFile]) -> BTreeSet<String> {
    files
        .iter()
        .map(|f| {
            format!(
                "{}|{:?}|{}|{:?}|{:?}",
                f.path,
                f.deletion_vector,
                f.size,
                f.partition_values,
                f.stats.is_some()
            )
        })
        .collect()
}

#[test]
fn incremental_listing_matches_full_replay() {
    let engine = DefaultEngineBuilder::new(Arc::new(LocalFileSystem::new())).build();
    let mut compared = 0;
    for table in [
        "plain-unpartitioned",
        "checkpoint-v1-single",
        "dv-partitioned-checkpoint",
        "dv-inline-cdf",
        "cdf-with-dvs",
        "cdf-partitioned",
        "vacuumed",
        "escaped-chars-partition",
        "schema-evolution",
    ] {
        let path = std::fs::canonicalize(support::golden(table)).unwrap();
        let url = url::Url::from_directory_path(path).unwrap();
        let latest = Snapshot::builder_for(url.as_str()).build(&engine).unwrap();
        let full = key_set(&list_active_files(&latest, &engine).unwrap());
        for base_version in 0..latest.version() {
            let Ok(base) = Snapshot::builder_for(url.as_str())
                .at_version(base_version)
                .build(&engine)
            else {
                continue; // a version whose commits were cleaned up cannot be a base
            };
            let base_files = list_active_files(&base, &engine).unwrap();
            let Some(advanced) =
                advance_active_files(&base_files, base_version, &latest, &engine).unwrap()
            else {
                continue;
            };
            assert_eq!(
                key_set(&advanced),
                full,
                "{table}: advancing v{base_version} -> v{} differs from a full replay",
                latest.version()
            );
            compared += 1;
        }
    }
    assert!(compared > 50, "only {compared} incremental comparisons ran");
}
