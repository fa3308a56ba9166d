//! The shared state of one process, handed to every handler and middleware as
//! `web::Data<AppState>`. It sits below the edge and the areas (which all read it) and above the
//! infrastructure it holds; [`crate::startup`] builds it.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    domain::{Listing, Product, ProductId},
    infra::cache::{ResponseCache, TtlCache},
    infra::store::{ProductNews, Store},
    proxies::TrustedProxies,
    settings::Settings,
};

/// Shared, read-only state of one process. Cheap to clone into every worker.
pub struct AppState {
    pub db: DatabaseConnection,
    pub store: Store,
    pub settings: Arc<Settings>,
    /// The replica's name ([`crate::replica`]: `SHOP_REPLICA_NAME`, the compose service and
    /// index such as `shop-2`, or the hostname): `X-Served-By`, the footer and the probes'
    /// `served_by`. The hostname (the container id) is in the start-up log and `/healthz`.
    pub replica_name: String,
    /// The hostname (in a container: its id), read once at start; `/healthz` shows it.
    pub host: String,
    /// Rendered catalog responses, kept `SHOP_CATALOG_CACHE_MS` (see [`ResponseCache`]).
    pub catalog_cache: ResponseCache,
    /// Catalog listings (products, total, categories) for pages that cannot be cached whole.
    pub catalog_data: TtlCache<Arc<Listing>>,
    /// Single products by id (cart pricing and its advisory stock checks), kept
    /// `SHOP_PRODUCT_CACHE_MS` and dropped on every replica when one changes them ([`Self::hear`]).
    pub products: TtlCache<Arc<Product>>,
    /// Turns true when the process begins its graceful stop: long-lived responses (the
    /// heartbeat stream) end then, so the drain waits only for real requests.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Proxies whose `X-Real-IP` / `X-Forwarded-Proto` are believed ([`crate::edge::security`]).
    pub proxies: Arc<TrustedProxies>,
    /// Heartbeat streams open now (capped at `ops::MAX_BEAT_STREAMS`).
    pub beat_streams: Arc<std::sync::atomic::AtomicUsize>,
}

impl AppState {
    /// This replica changed these products (checkout, cancel, an admin's edit or stock change):
    /// its cached catalog shows it at once, and every other replica hears of it.
    pub async fn stock_changed(&self, ids: impl IntoIterator<Item = ProductId>) {
        let ids: Vec<ProductId> = ids.into_iter().collect();
        self.catalog_cache.invalidate_all();
        self.catalog_data.invalidate_all();
        if ids.is_empty() {
            return;
        }
        self.products.invalidate(ids.iter().map(ToString::to_string)).await;
        // without holding up the answer; a message lost here lives at most SHOP_PRODUCT_CACHE_MS
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.publish_product_changes(&ids).await {
                crate::infra::metrics::record_store_error();
                tracing::warn!(error = %e, "could not tell the other replicas of a product change");
            }
        });
    }

    /// What this replica heard of product changes (its own included): the products named are
    /// read again when next asked for; on [`ProductNews::Unknown`] all of them. The catalog's
    /// listings and pages are left to their own short lifetime (`SHOP_CATALOG_CACHE_MS`): under a
    /// rush of checkouts they would otherwise be emptied many times a second on every replica.
    pub async fn hear(&self, news: ProductNews) {
        match news {
            ProductNews::Changed(ids) => self.products.invalidate(ids.iter().map(ToString::to_string)).await,
            ProductNews::Unknown => self.products.invalidate_all(),
        }
    }
}
