//! distshop's shop: catalog, accounts, cart, orders and admin, as a stateless web process.
//!
//! A request flows: nginx → [`telemetry::envelope`] (request id, `X-Served-By`, access log,
//! metrics) → [`session::middleware`] (signed cookie → session id) → an area's handler
//! (`catalog`, `accounts`, `cart`, `orders`, `admin`, `ops`), which parses input at the edge
//! ([`input`]), talks to the database ([`db`], every statement bounded) and the session store
//! ([`store`], Redis Cluster or in-process), and answers JSON under `/api` or a page rendered by
//! [`web`]. No request state lives in the process, so any replica can serve any request.

//!
//! # Layers
//!
//! Modules form layers; a module uses modules of its own layer or below, never above, and no
//! modules use each other in a circle (`tests/layers.rs` checks both, from this table):
//!
//! | layer | modules | what it is |
//! |---|---|---|
//! | 7 application | `startup`, `openapi` | route table, start-up, the OpenAPI document |
//! | 6 areas | `catalog`, `accounts`, `cart`, `orders`, `admin`, `ops`, `seed` | one job of the shop each |
//! | 5 edge | `input`, `session`, `security`, `throttle`, `telemetry`, `web` | HTTP plumbing every area uses |
//! | 4 state | `state` | [`state::AppState`], the shared state of a process |
//! | 3 infrastructure | `db`, `store`, `cache`, `metrics` | database, session store, caches, metric recorders (plain values in) |
//! | 2 configuration | `settings` | |
//! | 1 error | `error` | [`error::AppError`]; its HTML page comes from `templates` below it |
//! | 0 foundation | `domain`, `templates`, `proxies` | domain types, the template renderer, trusted-proxy list |
//!
//! The areas may use each other where one builds on another (`cart` prices with `catalog`,
//! `orders` checks out the `cart`, `admin` lists `orders`), never in a circle.

pub mod accounts;
pub mod admin;
pub mod cache;
pub mod cart;
pub mod catalog;
pub mod db;
pub mod domain;
pub mod error;
pub mod input;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod proxies;
pub mod security;
pub mod seed;
pub mod session;
pub mod settings;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod throttle;
pub mod web;
