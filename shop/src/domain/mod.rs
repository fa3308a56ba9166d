//! The shop's domain types, free of HTTP, SQL and state: what a product, an order's status, a
//! cart's owner and a validated input value are. Everything above uses them; they use nothing of
//! the shop.

mod catalog;
mod values;

pub use catalog::{Category, Listing, Product};
pub use values::{Email, Password, PersonName, Quantity};

/// How long an account's cart lives after its last change.
pub const USER_CART_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
