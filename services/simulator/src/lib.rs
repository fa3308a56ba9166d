//! distshop-sim: virtual shoppers that prove a horizontally scaled shop loses nothing.
//!
//! Every shopper keeps a model of what the shop must hold for it — its cart, its session, its
//! orders — and checks each answer against it, so a lost session, a lost cart change, a lost or
//! duplicated order is counted and named, not hidden behind a 200. The `check` subcommand then
//! verifies the invariants in the database itself. See `docs/simulator.md`.

pub mod chart;
pub mod check;
pub mod config;
pub mod control;
pub mod faults;
pub mod findings;
pub mod http;
pub mod metrics;
pub mod model;
pub mod probe;
pub mod report;
pub mod runner;
pub mod shopper;
pub mod snapshot;
pub mod state;
