//! The HTTP edge (layer 5): what every request passes through and every area uses — input
//! parsing, the session, security rules, throttling, telemetry, page helpers.

pub mod extract;
pub mod input;
pub mod security;
pub mod session;
pub mod telemetry;
pub mod throttle;
pub mod web;
