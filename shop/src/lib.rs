//! distshop's shop: catalog, accounts, cart, orders and admin, as a stateless web process.
//!
//! A request flows: nginx → [`edge::telemetry::envelope`] (request id, `X-Served-By`, access log,
//! metrics) → [`edge::session::middleware`] (signed cookie → session id) → an area's handler
//! (`catalog`, `accounts`, `cart`, `orders`, `admin`, `ops`), which parses input at the edge
//! ([`edge::input`]), talks to the database ([`infra::db`], every statement bounded) and the session store
//! ([`infra::store`], Redis Cluster or in-process), and answers JSON under `/api` or a page rendered by
//! [`edge::web`]. No request state lives in the process, so any replica can serve any request.
//!
//! # Layers
//!
//! The directories are the layers. A module uses modules of its own layer or below, never above,
//! and no modules use each other in a circle (`tests/layers.rs` checks both, from the same table):
//!
//! | layer | modules | what it is |
//! |---|---|---|
//! | 7 application | `startup`, `openapi` | route table, start-up, the OpenAPI document |
//! | 6 areas | `areas::{catalog, accounts, cart, orders, admin, ops, seed}` | one job of the shop each; the big ones split into `repo` (SQL), `rules`, `api` (JSON), `pages` (HTML) |
//! | 5 edge | `edge::{input, session, security, throttle, telemetry, web}` | HTTP plumbing every area uses |
//! | 4 state | `state` | [`state::AppState`], the shared state of a process |
//! | 3 infrastructure | `infra::{db, store, cache, metrics}` | database, session store, caches, metric recorders (plain values in) |
//! | 2 configuration | `settings` | `SHOP_*` → [`settings::Settings`] |
//! | 1 error | `error` | [`error::AppError`]; its HTML page comes from `templates` below it |
//! | 0 foundation | `domain`, `templates`, `proxies`, `replica` | domain types, the template renderer, the trusted-proxy list, the replica's name |
//!
//! Areas may use each other where one builds on another (`cart` prices with `catalog`, `orders`
//! checks out the `cart`, `admin` lists `orders`), never in a circle.

pub mod areas;
pub mod domain;
pub mod edge;
pub mod error;
pub mod infra;
pub mod openapi;
pub mod proxies;
pub mod replica;
pub mod settings;
pub mod startup;
pub mod state;
pub mod templates;
