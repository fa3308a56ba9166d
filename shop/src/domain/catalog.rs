//! What the catalog sells, as every part of the shop sees it (cached in the shared state, priced
//! into carts and orders, shown on pages).

use serde::Serialize;
use utoipa::ToSchema;

use super::ProductId;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Product {
    #[schema(value_type = i64, minimum = 1)]
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub description: String,
    /// Price in cents of `currency`.
    #[schema(minimum = 0)]
    pub price_cents: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    /// Units in stock (as this replica's catalog cache has it, at most `SHOP_CATALOG_CACHE_MS` old).
    #[schema(minimum = 0)]
    pub stock: i64,
    pub category: String,
}

#[derive(Serialize, ToSchema)]
pub struct Category {
    pub name: String,
    #[schema(minimum = 1)]
    pub product_count: i64,
}

/// One catalog listing: a page of products, the total that matched, and the categories (the
/// catalog page shows all three). Cached per query for `SHOP_CATALOG_CACHE_MS`.
pub struct Listing {
    pub items: Vec<Product>,
    pub total: i64,
    pub categories: Vec<Category>,
}
