//! `lakeshare demo`: the first-run experience on the sample tables in `examples/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::recipient::write_private;
use super::serve::{load_config, start};
use super::wiring;
use crate::catalog::{DynCatalog, NewRecipient};
use crate::domain::token;
use crate::protocol::profile::ProfileV1;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Working folder (recreated on each run).
    #[arg(long, default_value = ".lakeshare/demo")]
    pub dir: PathBuf,
    /// Folder holding `demo-config.yaml` and `tables/` (default: this repository's examples/).
    #[arg(long)]
    pub examples: Option<PathBuf>,
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Sets each commit file's modification time to its `commitInfo.timestamp`, so timestamp
/// queries on the copied sample tables behave as when they were written (git and copies do
/// not keep modification times).
fn restore_commit_times(table: &Path) {
    let Ok(entries) = std::fs::read_dir(table.join("_delta_log")) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let ts = text.lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v.get("commitInfo")?.get("timestamp")?.as_i64()
        });
        if let Some(ms) = ts.and_then(|ms| u64::try_from(ms).ok()) {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            if let Ok(f) = std::fs::File::options().write(true).open(&path) {
                let _ = f.set_modified(time);
            }
        }
    }
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let examples = args
        .examples
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"));
    let config_src = examples.join("demo-config.yaml");
    if !config_src.is_file() {
        anyhow::bail!(
            "sample tables not found at {} (pass --examples DIR)",
            examples.display()
        );
    }
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("cannot reset {}", args.dir.display()))?;
    }
    copy_dir(&examples.join("tables"), &args.dir.join("tables"))?;
    for entry in std::fs::read_dir(args.dir.join("tables"))?.flatten() {
        restore_commit_times(&entry.path());
    }
    let config_path = args.dir.join("config.yaml");
    std::fs::copy(&config_src, &config_path)?;
    let mut config = load_config(&config_path)?;
    config.host = "127.0.0.1".to_owned();
    config.port = args.port;
    // The demo signs its audit checkpoints with a key of its own (kept in the demo folder).
    let (seed, _) = crate::audit::chain::SigningKey::generate()?;
    let key_path = args.dir.join("audit.key");
    std::fs::write(&key_path, format!("{seed}\n"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
    }
    config.audit_signing_key_file = Some(key_path);
    let state = wiring::default_state_path(&config_path);
    let catalog: DynCatalog = wiring::open_catalog(&state).await?;
    crate::catalog::plan::reconcile_config(
        catalog.as_ref(),
        &config.shares,
        chrono::Utc::now().timestamp_millis(),
    )
    .await?;
    let new = token::generate();
    let shares: Vec<String> = config.shares.iter().map(|s| s.name.clone()).collect();
    catalog
        .create_recipient(
            &NewRecipient {
                name: "demo".to_owned(),
                shares: shares.clone(),
                ..NewRecipient::default()
            },
            Some(&new),
            chrono::Utc::now().timestamp_millis(),
        )
        .await?;
    let server = start(&config, catalog, false, None).await?;
    let profile_path = std::fs::canonicalize(&args.dir)?.join("demo.share");
    let profile = ProfileV1 {
        share_credentials_version: 1,
        endpoint: server.url.clone(),
        bearer_token: new.secret.clone(),
        expiration_time: None,
    };
    write_private(&profile_path, &serde_json::to_vec_pretty(&profile)?)?;
    let share = shares.first().cloned().unwrap_or_default();
    println!("lakeshare listening on {}", server.url);
    println!();
    println!(
        "Sample tables are shared as '{share}'. Profile: {}",
        profile_path.display()
    );
    println!(
        "Read them with the stock Python connector, in a virtual environment (in another shell):"
    );
    println!();
    println!(
        "python3 -m venv /tmp/lakeshare-client && /tmp/lakeshare-client/bin/pip install delta-sharing"
    );
    println!("/tmp/lakeshare-client/bin/python - <<'EOF'");
    println!("import delta_sharing");
    println!("profile = \"{}\"", profile_path.display());
    println!("print(delta_sharing.SharingClient(profile).list_all_tables())");
    println!("df = delta_sharing.load_as_pandas(profile + \"#{share}.samples.trips\")");
    println!("print(df.groupby(\"city\").size())");
    println!("old = delta_sharing.load_as_pandas(profile + \"#{share}.samples.trips\", version=0)");
    println!(
        "dv = delta_sharing.load_as_pandas(profile + \"#{share}.samples.dv_events\", use_delta_format=True)"
    );
    println!("print(len(df), len(old), len(dv))");
    println!("EOF");
    println!();
    println!("Press Ctrl-C to stop.");
    std::io::stdout().flush()?;
    server.run().await
}
