//! Typed ids: a product's id cannot be passed where an order's is meant. Each is the database's
//! positive integer, serialised as that number (JSON, pages) and shown as it (`Display`).

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A product (`products.id`).
    ProductId
);
id_type!(
    /// An order (`orders.id`).
    OrderId
);
id_type!(
    /// An account (`users.id`).
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_and_serialise_as_their_number() {
        assert_eq!(ProductId(7).to_string(), "7");
        assert_eq!(serde_json::to_string(&OrderId(42)).ok().as_deref(), Some("42"));
    }
}
