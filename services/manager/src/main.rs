//! distshop-manager: holds a heartbeat stream to every shop replica, restarts a replica that stops
//! beating (frozen, SIGSTOPped, deadlocked) or that Docker reports unhealthy, scales the shop by
//! load, and is the only holder of the Docker socket. It keeps no state that matters: killed and
//! started again, it rebuilds everything from Docker and the heartbeats within a second.
//! See docs/manager.md.

mod api;
mod beat;
mod config;
mod docker;
mod errors;
mod faults;
mod scale;
mod state;
mod supervisor;

use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use tracing_subscriber::{fmt, EnvFilter};

use crate::{config::Config, docker::Engine, state::Shared, supervisor::Manager};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("distshop-manager: {e}");
            std::process::exit(2);
        }
    };
    let filter = EnvFilter::try_from_env("MANAGER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if cfg.log_json {
        fmt().json().flatten_event(true).with_current_span(false).with_env_filter(filter).init();
    } else {
        fmt().with_env_filter(filter).init();
    }

    // Docker may not be reachable at the first try (socket not yet mounted, daemon restarting)
    let engine = loop {
        match Engine::connect(&cfg.mode, &cfg.service, cfg.docker_timeout).await {
            Ok(e) => break e,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot reach Docker; retrying in 2 s");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    };
    let shared = Arc::new(Shared::default());
    shared.lock().target = engine.target();
    tracing::info!(
        target = %engine.target(),
        beat_interval_ms = cfg.beat_interval.as_millis() as u64,
        missed_beats = cfg.missed_beats,
        dead_after_ms = cfg.dead_after().as_millis() as u64,
        max_restart_share = cfg.max_restart_share,
        autoscale = cfg.autoscale.is_some(),
        api = cfg.token.is_some(),
        "manager starting"
    );
    let listen = cfg.listen;
    let m = Manager { cfg: Arc::new(cfg), engine, shared };
    m.discover().await;
    tokio::spawn(m.clone().discovery_loop());
    tokio::spawn(m.clone().judge_loop());
    tokio::spawn(m.clone().autoscale_loop());
    tokio::spawn(m.clone().error_loop());

    let data = web::Data::new(m);
    HttpServer::new(move || App::new().app_data(data.clone()).configure(api::configure))
        .workers(1)
        .bind(listen)?
        .run()
        .await?;
    Ok(())
}
