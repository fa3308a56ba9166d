//! Whose cart it is, and what a line of it holds.

use std::time::Duration;

use super::{ProductId, UserId};

/// How long an account's cart lives after its last change (a session's cart lives as long as
/// its session, `SHOP_SESSION_TTL`).
pub const USER_CART_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The owner of a cart: a logged-in account, or a visitor's anonymous session. Its key in the
/// session store is `u:{account id}` or `s:{session id}` (its `Display`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CartOwner {
    Account(UserId),
    Session(String),
}

impl CartOwner {
    pub fn is_account(&self) -> bool {
        matches!(self, CartOwner::Account(_))
    }
}

/// The store key (`u:7`, `s:…`).
impl std::fmt::Display for CartOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CartOwner::Account(id) => write!(f, "u:{id}"),
            CartOwner::Session(id) => write!(f, "s:{id}"),
        }
    }
}

/// What the session store keeps of a cart line: the product and how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct CartLine {
    pub product_id: ProductId,
    pub quantity: i64,
}

/// A line compares with its `(product id, quantity)` pair (the store's tests write lines so).
impl PartialEq<(i64, i64)> for CartLine {
    fn eq(&self, (product_id, quantity): &(i64, i64)) -> bool {
        self.product_id.0 == *product_id && self.quantity == *quantity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_have_distinct_keys() {
        assert_eq!(CartOwner::Account(UserId(7)).to_string(), "u:7");
        assert_eq!(CartOwner::Session("ab".into()).to_string(), "s:ab");
        assert!(CartOwner::Account(UserId(7)).is_account() && !CartOwner::Session("7".into()).is_account());
    }
}
