//! distshop-controlroom: one page a lecturer projects while breaking the stack on purpose.
//!
//! Tiles for every shop replica (from the heartbeat manager), Galera node (galera-health and
//! HAProxy), Redis node (`CLUSTER NODES`) and the edge; a chart of throughput, errors and p99
//! from Prometheus with every fault marked; fault buttons for the operator, carried out by the
//! manager (the only holder of the Docker socket); the simulator's live verdict; the request-id
//! search over the central logs. The page is server-rendered (tera) and works without
//! JavaScript; a small script keeps it live over SSE. The JSON API (`/api/status`,
//! `/api/logs`, `/api/faults`) is the contract the tests use. See docs/controlroom.md.
//!
//! Layers, bottom up: settings, status (pure readings), logs, auth → probe (I/O to the
//! backends) → state (shared, the poller) → faults → web (routes) → startup.

pub mod auth;
pub mod faults;
pub mod logs;
pub mod probe;
pub mod settings;
pub mod startup;
pub mod state;
pub mod status;
pub mod web;

/// Milliseconds since the epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
