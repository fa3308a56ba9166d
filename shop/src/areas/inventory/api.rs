//! The admin's product management, as JSON.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    domain::ProductId,
    edge::extract::{Admin, JsonFields, OptionalIdempotencyKey},
    edge::input::{path_id, Paging, Validator},
    edge::session::Session,
    edge::web::query_map,
    error::{ApiError, ApiResult, AppError},
    state::AppState,
};

use super::{
    repo::{self, ManagedProduct, StockChange},
    rules::{self, PriceField},
};

/// Products per page when the client names no `per_page`, and at most.
const PER_PAGE: u64 = 50;
const MAX_PER_PAGE: u64 = 200;
/// Stock changes a product's history shows.
pub const HISTORY: i64 = 50;

/// A page of products, hidden ones included.
#[derive(Serialize, ToSchema)]
pub struct ManagedProductList {
    pub items: Vec<ManagedProduct>,
    #[schema(minimum = 1, maximum = 10000)]
    pub page: u64,
    #[schema(minimum = 1, maximum = 200)]
    pub per_page: u64,
    #[schema(minimum = 0)]
    pub total: i64,
}

/// A product and its newest stock changes.
#[derive(Serialize, ToSchema)]
pub struct ProductWithHistory {
    pub product: ManagedProduct,
    /// Newest first, at most 50.
    pub stock_changes: Vec<StockChange>,
}

/// A product's fields as the admin writes them (all of them, also on an update).
#[derive(ToSchema)]
pub struct ProductRequest {
    #[schema(min_length = 1, max_length = 200, example = "Espresso cup")]
    pub name: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(min_length = 1, max_length = 64, example = "Kitchen")]
    pub category: String,
    #[schema(minimum = 0, maximum = 10000000, example = 1250)]
    pub price_cents: i64,
    /// Not sold while true (default false).
    pub hidden: Option<bool>,
}

/// A new product: its fields, its first stock and optionally its SKU.
#[derive(ToSchema)]
pub struct NewProductRequest {
    #[schema(min_length = 1, max_length = 200, example = "Espresso cup")]
    pub name: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(min_length = 1, max_length = 64, example = "Kitchen")]
    pub category: String,
    #[schema(minimum = 0, maximum = 10000000, example = 1250)]
    pub price_cents: i64,
    pub hidden: Option<bool>,
    #[schema(minimum = 0, maximum = 1000000, example = 20)]
    pub stock: i64,
    /// Made up (`P-…`) when absent; must be unique.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub sku: Option<String>,
}

/// A change of stock.
#[derive(ToSchema)]
pub struct StockChangeRequest {
    /// Units to add; negative to take away. Not 0.
    #[schema(minimum = -1000000, maximum = 1000000, example = 10)]
    pub delta: i64,
    #[schema(max_length = 200, example = "delivery 2026-12-04")]
    pub note: Option<String>,
}

fn product_id(raw: &str) -> Result<ProductId, AppError> {
    path_id(raw, "product").map(ProductId)
}

/// Every product, hidden ones too, by id.
#[utoipa::path(
    get,
    path = "/api/admin/products",
    operation_id = "adminListProducts",
    tag = "admin",
    params(
        ("page" = Option<u64>, Query, minimum = 1, maximum = 10000, description = "Page, from 1 (default 1)"),
        ("per_page" = Option<u64>, Query, minimum = 1, maximum = 200, description = "Products per page (default 50)"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of products", body = ManagedProductList),
        (status = 400, description = "Malformed query string", body = ApiError),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 403, description = "Not an admin account", body = ApiError),
        (status = 422, description = "`page` or `per_page` out of range; `fields` names each", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
pub async fn api_list(state: web::Data<AppState>, _: Admin, req: HttpRequest) -> ApiResult<HttpResponse> {
    let paging = Paging::parse(&query_map(&req)?, PER_PAGE, MAX_PER_PAGE)?;
    let (items, total) = repo::list(&state.db, paging).await?;
    Ok(HttpResponse::Ok().json(ManagedProductList {
        items,
        page: paging.page,
        per_page: paging.per_page,
        total,
    }))
}

/// Create a product.
#[utoipa::path(
    post,
    path = "/api/admin/products",
    operation_id = "adminCreateProduct",
    tag = "admin",
    request_body = NewProductRequest,
    security(("session" = [])),
    responses(
        (status = 201, description = "The product", body = ManagedProduct),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 403, description = "Not an admin account", body = ApiError),
        (status = 409, description = "The SKU is taken (`sku_taken`)", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "Invalid fields; `fields` names each", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
pub async fn api_create(
    state: web::Data<AppState>,
    session: Session,
    JsonFields(f): JsonFields,
) -> ApiResult<HttpResponse> {
    // after the body: its 400 before 401/403, always (see edge::extract)
    let admin = session.require_admin(&state.store).await?;
    let mut v = Validator::default();
    let draft = rules::parse_draft(&f, PriceField::Cents, &mut v);
    let (sku, stock) = rules::parse_new(&f, &mut v);
    v.finish()?;
    let (Some(draft), Some(sku), Some(stock)) = (draft, sku, stock) else {
        return Err(AppError::BadRequest("the product is incomplete".into()));
    };
    Ok(HttpResponse::Created().json(rules::create(&state, &sku, &draft, stock, admin.id).await?))
}

/// A product, hidden or not, with its newest stock changes.
#[utoipa::path(
    get,
    path = "/api/admin/products/{id}",
    operation_id = "adminGetProduct",
    tag = "admin",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Product id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The product", body = ProductWithHistory),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 403, description = "Not an admin account", body = ApiError),
        (status = 404, description = "No such product", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
pub async fn api_get(state: web::Data<AppState>, _: Admin, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = product_id(&id)?;
    let product =
        repo::find(&state.db, id).await?.ok_or_else(|| AppError::NotFound(format!("no product {id}")))?;
    let stock_changes = repo::history(&state.db, id, HISTORY).await?;
    Ok(HttpResponse::Ok().json(ProductWithHistory { product, stock_changes }))
}

/// Write a product's fields (all of them; its stock is changed through `…/stock`). Checkouts of
/// the product at the same moment are unaffected.
#[utoipa::path(
    put,
    path = "/api/admin/products/{id}",
    operation_id = "adminUpdateProduct",
    tag = "admin",
    request_body = ProductRequest,
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Product id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The product, saved", body = ManagedProduct),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 403, description = "Not an admin account", body = ApiError),
        (status = 404, description = "No such product", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "Invalid fields; `fields` names each", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
pub async fn api_update(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    JsonFields(f): JsonFields,
) -> ApiResult<HttpResponse> {
    let admin = session.require_admin(&state.store).await?;
    let id = product_id(&id)?;
    let mut v = Validator::default();
    let draft = rules::parse_draft(&f, PriceField::Cents, &mut v);
    v.finish()?;
    let Some(draft) = draft else {
        return Err(AppError::BadRequest("the product is incomplete".into()));
    };
    Ok(HttpResponse::Ok().json(rules::update(&state, id, &draft, admin.id).await?))
}

/// Add stock (a delivery) or take it away (a count, breakage); recorded with who and when. Safe
/// beside checkouts of the same product: neither loses the other's change. With an
/// `Idempotency-Key`, sending it again (after a lost answer) changes nothing and answers the
/// product as it is.
#[utoipa::path(
    post,
    path = "/api/admin/products/{id}/stock",
    operation_id = "adminChangeStock",
    tag = "admin",
    request_body = StockChangeRequest,
    params(
        ("id" = i64, Path, minimum = 1, example = 1, description = "Product id"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[A-Za-z0-9_-]{8,64}$",
            description = "Optional: a fresh key (a UUID) per change, the same one for its retries: the change is made at most once"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "The product with its new stock, and the history", body = ProductWithHistory),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 403, description = "Not an admin account", body = ApiError),
        (status = 404, description = "No such product", body = ApiError),
        (status = 409, description = "The stock would go below zero (`stock_below_zero`) or above 1,000,000 (`stock_above_limit`)", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "Invalid fields, or a malformed `Idempotency-Key`; `fields` names each", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry (with the same key)", body = ApiError),
    )
)]
pub async fn api_change_stock(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
    JsonFields(f): JsonFields,
) -> ApiResult<HttpResponse> {
    let admin = session.require_admin(&state.store).await?;
    let id = product_id(&id)?;
    let OptionalIdempotencyKey(key) = OptionalIdempotencyKey::of(&req)?;
    let mut v = Validator::default();
    let change = rules::parse_stock_change(&f, &mut v);
    v.finish()?;
    let Some((delta, note)) = change else {
        return Err(AppError::BadRequest("the change is incomplete".into()));
    };
    let product = rules::change_stock(&state, id, delta, &note, admin.id, key.as_deref()).await?;
    let stock_changes = repo::history(&state.db, id, HISTORY).await?;
    Ok(HttpResponse::Ok().json(ProductWithHistory { product, stock_changes }))
}
