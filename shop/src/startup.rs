//! Builds the application once — pool, session store, templates — and owns the route table.
//!
//! `Application::build` is what both the binary and the tests run, so the tests exercise exactly
//! the server that ships: same middleware, same routes, a real socket.

use std::{net::TcpListener, sync::Arc};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpRequest, HttpResponse, HttpServer};
use sea_orm::DatabaseConnection;

use crate::{
    areas::accounts,
    areas::admin,
    areas::cart,
    areas::catalog,
    areas::inventory,
    areas::ops,
    areas::orders,
    areas::seed,
    edge::session,
    edge::telemetry,
    edge::web as webui,
    error::{AppError, HtmlError},
    infra::cache::{ResponseCache, TtlCache},
    infra::db,
    infra::store::Store,
    openapi, replica,
    settings::Settings,
    state::AppState,
};

pub struct Application {
    server: Server,
    port: u16,
    stopping: tokio::sync::watch::Sender<bool>,
}

/// Connect the database and make sure its schema fits this build. In embedded mode (SQLite) the
/// process migrates and seeds by itself; with MySQL that is `shop migrate` / `shop seed`, run once
/// per deployment, so replicas never race each other on DDL.
pub async fn prepare_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let db = db::connect(settings).await?;
    if settings.is_embedded_db() {
        db::migrate(&db).await?;
        let report = seed::run(&db, settings).await?;
        if report.products_inserted > 0 {
            tracing::info!(products = report.products_inserted, "seeded the catalog");
        }
        announce_admin(settings, &report);
    } else {
        let (have, want) = (db::current_version(&db).await?, db::latest_version());
        if have < want {
            anyhow::bail!("the database schema is at version {have} but this build needs {want}: run `shop migrate` (and `shop seed`) once for this deployment");
        }
    }
    Ok(db)
}

pub fn announce_admin(settings: &Settings, report: &seed::SeedReport) {
    match &report.admin_created {
        Some(Some(password)) => {
            println!(
                "Created the admin account: {} / {password}  (set SHOP_ADMIN_PASSWORD to choose it)",
                settings.admin_email
            )
        }
        Some(None) => println!("Created the admin account {} with SHOP_ADMIN_PASSWORD", settings.admin_email),
        None => {}
    }
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, actix_web::Error> {
    // the path exists, with other methods (routes are per method, so actix ends up here)
    if req.resource_map().has_resource(req.path()) {
        let e = AppError::MethodNotAllowed(format!("{} is not allowed on {}", req.method(), req.path()));
        return if req.path().starts_with("/api/") { Err(e.into()) } else { Err(HtmlError(e).into()) };
    }
    let e = AppError::NotFound(format!("nothing at {}", req.path()));
    if req.path().starts_with("/api/") {
        Err(e.into())
    } else {
        Err(HtmlError(AppError::NotFound("This page does not exist.".into())).into())
    }
}

impl Application {
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        webui::init_templates()?;
        // before the database's start, so its errors are counted too
        crate::infra::metrics::install();
        // the name's DNS look-up (bounded, and only with SHOP_SERVICE_NAME) beside the database's start
        let named = async {
            match (&settings.replica_name, &settings.service_name) {
                (None, Some(service)) => replica::from_compose_dns(service).await,
                _ => None,
            }
        };
        let (db, named) = tokio::join!(prepare_database(&settings), named);
        let db = db?;
        if named.is_some() {
            settings.replica_name = named;
        }
        let store = Store::from_settings(&settings).await?;
        Self::build_with(settings, db, store)
    }

    /// Build from already-connected backends (tests connect once and reuse).
    pub fn build_with(settings: Settings, db: DatabaseConnection, store: Store) -> anyhow::Result<Self> {
        webui::init_templates()?;
        // process-wide and idempotent: the tests build many apps in one process
        crate::infra::metrics::install();
        let listener = TcpListener::bind(settings.listen)?;
        let port = listener.local_addr()?.port();
        let workers = settings.workers;
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let fault_http500 = settings.fault_http500;
        let proxies = crate::proxies::TrustedProxies::new(&settings.trusted_proxies);
        let host = replica::hostname();
        let name = settings.replica_name.clone().unwrap_or_else(|| host.clone());
        replica::set_name(&name);
        proxies.spawn_refresh();
        let state = web::Data::new(AppState {
            proxies,
            beat_streams: Default::default(),
            stopping: stopping_rx,
            db,
            store,
            catalog_cache: ResponseCache::new(settings.catalog_cache),
            catalog_data: TtlCache::new(settings.catalog_cache),
            products: TtlCache::new(settings.product_cache),
            settings: Arc::new(settings),
            replica_name: name,
            host,
        });
        if let Some(mut news) = state.store.watch_product_changes() {
            // for the whole life of the process: the drain after a stop signal still serves carts
            let state = state.clone();
            tokio::spawn(async move {
                while let Some(n) = news.recv().await {
                    state.hear(n).await;
                }
            });
        }
        // the name beside the hostname (the container id): the one line that links the two
        tracing::info!(port, replica = %state.replica_name, host = %state.host, session_store = state.store.kind(), "listening");
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(session::middleware))
                // decided once here, not per request
                .wrap(actix_web::middleware::Condition::new(fault_http500, from_fn(ops::injected_fault)))
                .wrap(from_fn(crate::edge::security::edge))
                .wrap(from_fn(telemetry::envelope))
                .configure(ops::configure)
                .route("/static/style.css", web::get().to(webui::style_css))
                .service(
                    web::scope("/api")
                        .wrap(from_fn(webui::api_guard))
                        .configure(catalog::configure_api)
                        .configure(accounts::configure_api)
                        .configure(cart::configure_api)
                        .configure(orders::configure_api)
                        .configure(admin::configure_api)
                        .configure(inventory::configure_api)
                        .configure(openapi::configure_api)
                        .default_service(web::to(not_found)),
                )
                .configure(catalog::configure_pages)
                .configure(accounts::configure_pages)
                .configure(cart::configure_pages)
                .configure(orders::configure_pages)
                .configure(admin::configure_pages)
                .configure(inventory::configure_pages)
                .default_service(web::to(not_found))
        })
        // headers must arrive within 5 s (a body's own limit is SHOP_BODY_TIMEOUT_MS, in
        // input::read_body); a connection that answered is closed 5 s after the client stalls
        .client_request_timeout(std::time::Duration::from_secs(5))
        .client_disconnect_timeout(std::time::Duration::from_secs(5))
        .listen(listener)?
        // the signals are ours (run_until_stopped): the heartbeat streams must end when the
        // drain begins, and actix does not say when that is
        .disable_signals()
        .shutdown_timeout(20);
        if workers > 0 {
            server = server.workers(workers);
        }
        Ok(Application { server: server.run(), port, stopping })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn server(self) -> Server {
        self.server
    }

    /// Serve until stopped: SIGTERM or SIGINT stops accepting, ends the heartbeat streams and
    /// drains in-flight requests (up to 20 s).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let stopping = self.stopping;
        tokio::spawn(async move {
            stop_signal().await;
            tracing::info!("stop signal: draining in-flight requests");
            let _ = stopping.send(true);
            handle.stop(true).await;
        });
        self.server.await
    }
}

/// SIGTERM (docker stop) or SIGINT (Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
