//! The shop's domain types, free of HTTP, SQL and state: what a product, an order's status and
//! shipping address, a cart's owner and line, and a validated input value are. Everything above uses them; they use
//! nothing of the shop.

mod address;
mod cart;
mod catalog;
mod ids;
mod order;
mod values;

pub use address::{ShippingAddress, ADDRESS_PARTS};
pub use cart::{CartLine, CartOwner, USER_CART_TTL};
pub use catalog::{Category, Listing, Product};
pub use ids::{OrderId, ProductId, UserId};
pub use order::{OrderStatus, STATUSES};
pub use values::{text, Email, Password, PersonName, Quantity};
