//! An order's life: placed → confirmed → shipped, or placed → cancelled. The database, the JSON
//! API and the pages keep the lowercase names (`as_str`, `parse`, serde), the code the enum.

use serde::Serialize;
use utoipa::ToSchema;

/// Every status, in the order of an order's life (the admin's filter links show them so).
pub const STATUSES: [OrderStatus; 4] =
    [OrderStatus::Placed, OrderStatus::Confirmed, OrderStatus::Shipped, OrderStatus::Cancelled];

/// An order's status (the schema of [`STATUSES`]): placed → confirmed → shipped, or placed →
/// cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(rename_all = "lowercase")]
pub enum OrderStatus {
    Placed,
    Confirmed,
    Shipped,
    Cancelled,
}

impl OrderStatus {
    /// The name stored in `orders.status` and shown in JSON and on pages.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        STATUSES.into_iter().find(|x| x.as_str() == s)
    }

    /// The one status an order must have to become `self` (`None`: no order becomes it).
    pub fn comes_from(self) -> Option<OrderStatus> {
        match self {
            OrderStatus::Placed => None,
            OrderStatus::Confirmed | OrderStatus::Cancelled => Some(OrderStatus::Placed),
            OrderStatus::Shipped => Some(OrderStatus::Confirmed),
        }
    }

    /// Whether an order of this status may become `to`.
    pub fn can_become(self, to: OrderStatus) -> bool {
        to.comes_from() == Some(self)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_transitions_are_the_documented_ones() {
        for s in STATUSES {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("lost"), None);
        use OrderStatus::*;
        let allowed: Vec<(OrderStatus, OrderStatus)> = STATUSES
            .into_iter()
            .flat_map(|a| STATUSES.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(allowed, [(Placed, Confirmed), (Placed, Cancelled), (Confirmed, Shipped)]);
    }
}
