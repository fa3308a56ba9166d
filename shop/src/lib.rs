//! distshop's shop: catalog, accounts, cart, orders and admin, as a stateless web process.
//!
//! A request flows: nginx → [`telemetry::envelope`] (request id, `X-Served-By`, access log,
//! metrics) → [`session::middleware`] (signed cookie → session id) → an area's handler
//! (`catalog`, `accounts`, `cart`, `orders`, `admin`, `ops`), which parses input at the edge
//! ([`input`]), talks to the database ([`db`], every statement bounded) and the session store
//! ([`store`], Redis Cluster or in-process), and answers JSON under `/api` or a page rendered by
//! [`web`]. No request state lives in the process, so any replica can serve any request.

pub mod accounts;
pub mod admin;
pub mod cache;
pub mod cart;
pub mod catalog;
pub mod db;
pub mod error;
pub mod input;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod security;
pub mod seed;
pub mod session;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod web;
