//! The shop's integration suite: the real application on a random port, driven over HTTP.
//!
//! Every test gets its own database (a fresh SQLite file, or a fresh MariaDB database when
//! `SHOP_TEST_DATABASE_URL` is set) and its own session-store key prefix (in-process, or the Redis
//! Cluster in `SHOP_TEST_REDIS_URLS`). `tests/run.sh` runs it both ways.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod admin;
mod cart;
mod catalog;
mod helpers;
mod html;
mod inventory;
mod migrations;
mod openapi;
mod ops;
mod orders;
mod probe;
mod security;
#[path = "../support/stall_proxy.rs"]
mod stall_proxy;
