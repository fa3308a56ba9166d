//! The `shop` binary: `serve` (default), `migrate`, `seed`. Thin: settings → telemetry → work.

use std::process::ExitCode;

use shop::{settings::Settings, startup};

const USAGE: &str = "usage: shop [serve|migrate|seed]

  serve    run the web shop (default); with SQLite it migrates and seeds by itself
  migrate  bring the database schema up to date (run once per deployment)
  seed     load the catalog and create the admin account (idempotent)

Configuration comes from SHOP_* environment variables; see the README.";

/// Keep big allocations out of glibc's heaps.
///
/// Every password hash (Argon2id) works in 19 MiB. glibc serves a block that large with `mmap`
/// and gives it back on free — but after the first such free it raises its mmap threshold to the
/// block's size, so later hashes come from the per-thread heaps, which keep the memory: a replica
/// under 20 simulated shoppers grew from 15 MB to 1.5 GB in 20 s. A fixed threshold of 1 MiB
/// (what `MALLOC_MMAP_THRESHOLD_=1048576` does) kept it at 18–20 MB in the same run.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fixed_mmap_threshold() {
    // SAFETY: mallopt only sets allocator parameters; M_MMAP_THRESHOLD with a value below the
    // documented maximum is always valid and may be called at any time, from any thread.
    let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fixed_mmap_threshold() {}

#[actix_web::main]
async fn main() -> ExitCode {
    fixed_mmap_threshold();
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shop: {e}");
            return ExitCode::from(2);
        }
    };
    let _log = shop::edge::telemetry::init(settings.log_json);
    let result = match command.as_str() {
        "serve" => serve(settings).await,
        "migrate" => migrate(settings).await,
        "seed" => seed(settings).await,
        other => {
            eprintln!("shop: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "shop {command} failed");
            eprintln!("shop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.session_key_generated {
        tracing::warn!("SHOP_SESSION_KEY is not set: sessions are signed with a per-process key (fine for one embedded process only)");
    }
    if settings.fault_http500 {
        tracing::warn!(
            "SHOP_FAULT=http500: this replica answers 500 to everything but its probes (fault injection)"
        );
    }
    tracing::info!(settings = ?settings, "starting");
    let listen = settings.listen;
    let app = startup::Application::build(settings).await?;
    println!("distshop is serving on http://{}:{}/", listen.ip(), app.port());
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let db = shop::infra::db::connect(&settings).await?;
    let version = shop::infra::db::migrate(&db).await?;
    println!("database schema at version {version}");
    Ok(())
}

async fn seed(settings: Settings) -> anyhow::Result<()> {
    let db = shop::infra::db::connect(&settings).await?;
    let report = shop::areas::seed::run(&db, &settings).await?;
    println!(
        "catalog: {} products inserted, {} already there",
        report.products_inserted, report.products_existing
    );
    startup::announce_admin(&settings, &report);
    Ok(())
}
