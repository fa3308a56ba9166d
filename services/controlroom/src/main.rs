//! distshop-controlroom: settings → telemetry → run. See lib.rs and docs/controlroom.md.

use distshop_controlroom::{settings::Settings, startup};
use tracing_subscriber::{fmt, EnvFilter};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("distshop-controlroom: {e}");
            std::process::exit(2);
        }
    };
    let filter = EnvFilter::try_from_env("CONTROL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if settings.log_json {
        fmt().json().flatten_event(true).with_current_span(false).with_env_filter(filter).init();
    } else {
        fmt().with_env_filter(filter).init();
    }
    let listener = std::net::TcpListener::bind(settings.listen)?;
    tracing::info!(
        listen = %settings.listen,
        operator = settings.token.is_some(),
        manager = %settings.manager_url,
        prometheus = %settings.prometheus_url,
        log_dir = %settings.log_dir.display(),
        "control room starting"
    );
    let (server, _) = startup::run(listener, settings)?;
    server.await?;
    Ok(())
}
