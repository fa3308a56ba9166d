//! Infrastructure (layer 3): the database, the session store, the per-replica caches and the
//! metric recorders. Knows nothing of HTTP requests, sessions or the areas.

pub mod cache;
pub mod db;
pub mod metrics;
pub mod retry;
pub mod store;
