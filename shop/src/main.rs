//! The `shop` binary: `serve` (default), `migrate`, `seed`. Thin: settings → telemetry → work.

use std::process::ExitCode;

use shop::{settings::Settings, startup};

const USAGE: &str = "usage: shop [serve|migrate|seed]

  serve    run the web shop (default); with SQLite it migrates and seeds by itself
  migrate  bring the database schema up to date (run once per deployment)
  seed     load the catalog and create the admin account (idempotent)

Configuration comes from SHOP_* environment variables; see the README.";

#[actix_web::main]
async fn main() -> ExitCode {
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
    shop::telemetry::init(settings.log_json);
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
    tracing::info!(settings = ?settings, "starting");
    let listen = settings.listen;
    let app = startup::Application::build(settings).await?;
    println!("distshop is serving on http://{}:{}/", listen.ip(), app.port());
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let db = shop::db::connect(&settings).await?;
    let version = shop::db::migrate(&db).await?;
    println!("database schema at version {version}");
    Ok(())
}

async fn seed(settings: Settings) -> anyhow::Result<()> {
    let db = shop::db::connect(&settings).await?;
    let report = shop::seed::run(&db, &settings).await?;
    println!(
        "catalog: {} products inserted, {} already there",
        report.products_inserted, report.products_existing
    );
    startup::announce_admin(&settings, &report);
    Ok(())
}
