//! The application: shared state built once, the poller, the route table; the same `run` in
//! the binary and in the tests (which pass a listener on 127.0.0.1:0).

use std::{net::TcpListener, sync::Arc};

use actix_web::{dev::Server, web, App, HttpServer};

use crate::{settings::Settings, state::AppState, web::configure};

/// Starts the poller and the HTTP server on `listener`; the server runs when awaited.
pub fn run(listener: TcpListener, settings: Settings) -> anyhow::Result<(Server, Arc<AppState>)> {
    let app = AppState::new(settings)?;
    tokio::spawn(app.clone().poll_loop());
    let data = web::Data::new(app.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(16 * 1024))
            .app_data(web::FormConfig::default().limit(16 * 1024))
            .app_data(web::PayloadConfig::new(16 * 1024))
            .configure(configure)
    })
    .workers(2)
    .listen(listener)?
    .run();
    Ok((server, app))
}
