//! Catalog: products, categories, search and pagination — JSON API and HTML pages.

use std::{collections::HashMap, sync::Arc};

use actix_web::{http::header, web, web::Bytes, HttpRequest, HttpResponse};
use sea_orm::{ConnectionTrait, QueryResult, Value};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

pub use crate::domain::{Category, Listing, Product};
use crate::{
    areas::picture,
    domain::ProductId,
    edge::input::{euros, parse_euros, path_id, Paging},
    edge::session::Session,
    edge::web::{html, insert_pager, json_bytes, page, query_map, render_bytes, to_json_bytes},
    error::{ApiError, ApiResult, AppError, HtmlResult},
    infra::cache::Weight,
    infra::db::{self, DbError},
    state::AppState,
};

/// Products on a catalog page when the visitor names no `per_page`.
const PAGE_PER_PAGE: u64 = 24;

const COLUMNS: &str = "id, sku, name, description, price_cents, currency, stock, category";

fn product_from_row(r: &QueryResult) -> Result<Product, DbError> {
    {
        Ok(Product {
            id: db::get(r, "id")?,
            sku: db::get(r, "sku")?,
            name: db::get(r, "name")?,
            description: db::get(r, "description")?,
            price_cents: db::get(r, "price_cents")?,
            currency: db::get(r, "currency")?,
            stock: db::get(r, "stock")?,
            category: db::get(r, "category")?,
        })
    }
}

/// The order of a catalog listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// By category, then name (the shelf order).
    #[default]
    Category,
    Name,
    /// Cheapest first.
    Price,
    /// Dearest first.
    PriceDesc,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Category, Sort::Name, Sort::Price, Sort::PriceDesc];

    fn parse(s: &str) -> Result<Sort, String> {
        Sort::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| "must be one of category, name, price, price_desc".to_string())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Category => "category",
            Sort::Name => "name",
            Sort::Price => "price",
            Sort::PriceDesc => "price_desc",
        }
    }

    /// The `ORDER BY` (a fixed text per variant: nothing from the request reaches the SQL).
    fn order_by(self) -> &'static str {
        match self {
            Sort::Category => "category, name, id",
            Sort::Name => "name, id",
            Sort::Price => "price_cents, name, id",
            Sort::PriceDesc => "price_cents DESC, name, id",
        }
    }
}

/// A validated catalog query.
#[derive(Debug, Default, Serialize)]
pub struct ListQuery {
    pub q: Option<String>,
    pub category: Option<String>,
    pub sort: Sort,
    /// Only products costing at least / at most this many cents.
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub page: u64,
    pub per_page: u64,
}

impl ListQuery {
    pub fn parse(m: &HashMap<String, String>, default_per_page: u64) -> Result<Self, AppError> {
        let mut v = crate::edge::input::Validator::default();
        let text = |name: &str, max: usize| -> Result<Option<String>, String> {
            match m.get(name).map(|s| s.trim()) {
                None | Some("") => Ok(None),
                Some(s) if s.chars().count() > max => Err(format!("must be at most {max} characters")),
                Some(s) => Ok(Some(s.to_string())),
            }
        };
        let q = v.check("q", text("q", 100)).flatten();
        let category = v.check("category", text("category", 64)).flatten();
        let sort = v
            .check("sort", text("sort", 16).and_then(|s| s.as_deref().map(Sort::parse).transpose()))
            .flatten()
            .unwrap_or_default();
        let price = |name: &str| text(name, 16).and_then(|s| s.as_deref().map(parse_euros).transpose());
        let price_min = v.check("price_min", price("price_min")).flatten();
        let price_max = v.check("price_max", price("price_max")).flatten();
        if let (Some(lo), Some(hi)) = (price_min, price_max) {
            if lo > hi {
                v.check::<()>("price_max", Err("must not be below price_min".into()));
            }
        }
        let Paging { page, per_page } = Paging::read(m, default_per_page, 100, &mut v);
        v.finish()?;
        Ok(ListQuery { q, category, sort, price_min, price_max, page, per_page })
    }
}

/// `%`, `_` and the escape char itself are literal in searches.
fn like_pattern(q: &str) -> String {
    let mut s = String::from("%");
    for c in q.chars() {
        if matches!(c, '%' | '_' | '!') {
            s.push('!');
        }
        s.push(c);
    }
    s.push('%');
    s
}

pub async fn list(
    c: &(impl ConnectionTrait + 'static),
    q: &ListQuery,
) -> Result<(Vec<Product>, i64), DbError> {
    let mut where_ = vec!["hidden = 0".to_string()];
    let mut vals: Vec<Value> = vec![];
    if let Some(text) = &q.q {
        where_.push("(name LIKE ? ESCAPE '!' OR description LIKE ? ESCAPE '!')".into());
        let p = like_pattern(text);
        vals.push(p.clone().into());
        vals.push(p.into());
    }
    if let Some(cat) = &q.category {
        where_.push("category = ?".into());
        vals.push(cat.clone().into());
    }
    if let Some(lo) = q.price_min {
        where_.push("price_cents >= ?".into());
        vals.push(lo.into());
    }
    if let Some(hi) = q.price_max {
        where_.push("price_cents <= ?".into());
        vals.push(hi.into());
    }
    let w = where_.join(" AND ");
    let total = db::one(c, &format!("SELECT COUNT(*) AS n FROM products WHERE {w}"), vals.clone())
        .await?
        .map(|r| db::get::<i64>(&r, "n"))
        .transpose()?
        .unwrap_or(0);
    let mut page_vals = vals;
    page_vals.push((q.per_page as i64).into());
    page_vals.push((((q.page - 1) * q.per_page) as i64).into());
    let rows = db::all(
        c,
        &format!("SELECT {COLUMNS} FROM products WHERE {w} ORDER BY {} LIMIT ? OFFSET ?", q.sort.order_by()),
        page_vals,
    )
    .await?;
    let items = rows.iter().map(product_from_row).collect::<Result<_, _>>()?;
    Ok((items, total))
}

/// A product on sale (a hidden one is, for shoppers, as if it did not exist).
pub async fn get(c: &(impl ConnectionTrait + 'static), id: ProductId) -> Result<Option<Product>, DbError> {
    db::one(c, &format!("SELECT {COLUMNS} FROM products WHERE id = ? AND hidden = 0"), vec![id.into()])
        .await?
        .map(|r| product_from_row(&r))
        .transpose()
}

/// Several products on sale by id, in one query.
pub async fn get_many(
    c: &(impl ConnectionTrait + 'static),
    ids: &[ProductId],
) -> Result<HashMap<ProductId, Product>, DbError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let marks = vec!["?"; ids.len()].join(",");
    let rows = db::all(
        c,
        &format!("SELECT {COLUMNS} FROM products WHERE id IN ({marks}) AND hidden = 0"),
        ids.iter().map(|i| (*i).into()).collect(),
    )
    .await?;
    rows.iter().map(|r| product_from_row(r).map(|p| (p.id, p))).collect()
}

pub async fn categories(c: &(impl ConnectionTrait + 'static)) -> Result<Vec<Category>, DbError> {
    let rows = db::all(
        c,
        "SELECT category, COUNT(*) AS n FROM products WHERE hidden = 0 GROUP BY category ORDER BY category",
        vec![],
    )
    .await?;
    rows.iter()
        .map(|r| Ok(Category { name: db::get(r, "category")?, product_count: db::get(r, "n")? }))
        .collect()
}

impl Weight for Product {
    fn weight(&self) -> usize {
        64 + self.name.len() + self.description.len() + self.sku.len() + self.category.len()
    }
}

/// One product as this replica's cache has it (dropped when any replica changes it, at most
/// `SHOP_PRODUCT_CACHE_MS` old if that news is lost): for carts,
/// whose stock checks are advisory (checkout's conditional `UPDATE` is the authority).
pub async fn cached(state: &AppState, id: ProductId) -> Result<Option<Arc<Product>>, AppError> {
    let found = state
        .products
        .get_or_make(id.to_string(), async {
            get(&state.db, id).await?.map(Arc::new).ok_or_else(|| AppError::NotFound(String::new()))
        })
        .await;
    match found {
        Ok(p) => Ok(Some(p)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Several products from the cache, the missing ones in one query.
pub async fn cached_many(
    state: &AppState,
    ids: &[ProductId],
) -> Result<HashMap<ProductId, Arc<Product>>, AppError> {
    let mut found = HashMap::with_capacity(ids.len());
    let mut missing = vec![];
    for id in ids {
        match state.products.get(&id.to_string()).await {
            Some(p) => {
                found.insert(*id, p);
            }
            None => missing.push(*id),
        }
    }
    let read_at: HashMap<ProductId, u64> =
        missing.iter().map(|id| (*id, state.products.stamp(&id.to_string()))).collect();
    for (id, p) in get_many(&state.db, &missing).await? {
        let p = Arc::new(p);
        let stamp = read_at.get(&id).copied().unwrap_or_default();
        state.products.insert(id.to_string(), p.clone(), stamp).await;
        found.insert(id, p);
    }
    Ok(found)
}

impl Weight for Listing {
    fn weight(&self) -> usize {
        // a rough size: enough to bound the cache, not an exact account
        self.items.iter().map(Weight::weight).sum::<usize>() + self.categories.len() * 48
    }
}

/// The listing for `q`, from this replica's cache or the database (three statements).
pub async fn listing(state: &AppState, q: &ListQuery) -> Result<Arc<Listing>, AppError> {
    state
        .catalog_data
        .get_or_make(format!("{q:?}"), async {
            let (items, total) = list(&state.db, q).await?;
            let categories = categories(&state.db).await?;
            Ok(Arc::new(Listing { items, total, categories }))
        })
        .await
}

// --- JSON API ------------------------------------------------------------------------------

// The API's catalog answers are the same for every client, so they are cached whole.

/// The query of `GET /api/products`, as [`ListQuery::parse`] checks it (documentation only:
/// the handler parses the query string by hand, so each bad parameter is named in a 422).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductsQuery {
    /// Search in names and descriptions (case-insensitive substring; `%` and `_` are literal).
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Only this category (exact name, see `GET /api/categories`).
    #[param(max_length = 64)]
    pub category: Option<String>,
    /// The order: `category` (then name; the default), `name`, `price` (cheapest first) or
    /// `price_desc`.
    #[param(pattern = "^(category|name|price|price_desc)$")]
    pub sort: Option<String>,
    /// Only products costing at least this much, in euros (`12`, `12.5`, `12.50`).
    #[param(pattern = "^[0-9]{1,7}(\\.[0-9]{1,2})?$", example = "10")]
    pub price_min: Option<String>,
    /// Only products costing at most this much, in euros; not below `price_min`.
    #[param(pattern = "^[0-9]{1,7}(\\.[0-9]{1,2})?$", example = "50")]
    pub price_max: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 10000, default = 1)]
    pub page: Option<u64>,
    /// Products per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u64>,
}

/// One page of products.
#[derive(Serialize, ToSchema)]
pub struct ProductPage<'a> {
    #[schema(value_type = Vec<Product>)]
    pub items: &'a [Product],
    #[schema(minimum = 1, maximum = 10000)]
    pub page: u64,
    #[schema(minimum = 1, maximum = 100)]
    pub per_page: u64,
    /// Products matching the query, on all pages.
    #[schema(minimum = 0)]
    pub total: i64,
}

/// The categories, each with its number of products.
#[derive(Serialize, ToSchema)]
pub struct CategoryList {
    pub items: Vec<Category>,
}

/// List, search and filter products.
#[utoipa::path(
    get,
    path = "/api/products",
    operation_id = "listProducts",
    tag = "catalog",
    params(ProductsQuery),
    responses(
        (status = 200, description = "A page of products, in the order `sort` asks (by default category, name, id)", body = ProductPage),
        (status = 400, description = "Malformed query string", body = ApiError),
        (status = 422, description = "A parameter out of range, or `price_max` below `price_min`; `fields` names each", body = ApiError),
        (status = 503, description = "The database did not answer in time; retry", body = ApiError),
    )
)]
async fn api_list(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let q = ListQuery::parse(&query_map(&req)?, 20)?;
    let body = state
        .catalog_cache
        .get_or_make(format!("api:list:{q:?}"), async {
            let l = listing(&state, &q).await?;
            to_json_bytes(&ProductPage {
                items: &l.items,
                page: q.page,
                per_page: q.per_page,
                total: l.total,
            })
        })
        .await?;
    Ok(json_bytes(body))
}

/// One product.
#[utoipa::path(
    get,
    path = "/api/products/{id}",
    operation_id = "getProduct",
    tag = "catalog",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 404, description = "No such product (or not a positive integer id)", body = ApiError),
        (status = 503, description = "The database did not answer in time; retry", body = ApiError),
    )
)]
async fn api_get(state: web::Data<AppState>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = ProductId(path_id(&id, "product")?);
    let body = state
        .catalog_cache
        .get_or_make(format!("api:product:{id}"), async {
            let p = get(&state.db, id)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("no product with id {id}")))?;
            to_json_bytes(&p)
        })
        .await?;
    Ok(json_bytes(body))
}

/// Categories with their product counts.
#[utoipa::path(
    get,
    path = "/api/categories",
    operation_id = "listCategories",
    tag = "catalog",
    responses(
        (status = 200, description = "Every category, by name", body = CategoryList),
        (status = 503, description = "The database did not answer in time; retry", body = ApiError),
    )
)]
async fn api_categories(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let body = state
        .catalog_cache
        .get_or_make("api:categories".into(), async {
            to_json_bytes(&CategoryList { items: categories(&state.db).await? })
        })
        .await?;
    Ok(json_bytes(body))
}

// --- HTML ----------------------------------------------------------------------------------

// A visitor without a session sees the same page as every other such visitor (no user, empty
// cart, no form token, no cookie set), so that page is cached whole; with a session it is
// rendered for the visitor from the cached listing.

async fn page_list(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let params = query_map(&req)?;
    let q = ListQuery::parse(&params, PAGE_PER_PAGE)?;
    let notice = params.get("notice").and_then(|n| crate::edge::web::notice(n));
    if session.has_cookie() {
        return Ok(html(render_list(&state, &session, &q, notice).await?));
    }
    let key = format!("html:list:{q:?}:{notice:?}");
    let body = state.catalog_cache.get_or_make(key, render_list(&state, &session, &q, notice)).await?;
    Ok(html(body))
}

async fn render_list(
    state: &AppState,
    session: &Session,
    q: &ListQuery,
    notice: Option<&str>,
) -> Result<Bytes, AppError> {
    let l = listing(state, q).await?;
    let title = match (&q.q, &q.category) {
        (Some(t), _) => format!("Search: {t}"),
        (None, Some(c)) => c.clone(),
        _ => "All products".into(),
    };
    let (mut ctx, _) = page(state, session, &title).await?;
    ctx.insert("products", &l.items);
    ctx.insert("categories", &l.categories);
    ctx.insert("query", &q);
    // Links keep the current filters.
    let mut base = vec![];
    if let Some(t) = &q.q {
        base.push(("q", t.clone()));
    }
    if let Some(c) = &q.category {
        base.push(("category", c.clone()));
    }
    if q.sort != Sort::default() {
        base.push(("sort", q.sort.as_str().to_string()));
    }
    for (name, cents) in [("price_min", q.price_min), ("price_max", q.price_max)] {
        if let Some(c) = cents {
            base.push((name, euros(c)));
        }
    }
    if q.per_page != PAGE_PER_PAGE {
        base.push(("per_page", q.per_page.to_string()));
    }
    let link = |p: u64| {
        let mut v = base.clone();
        v.push(("page", p.to_string()));
        format!("/?{}", serde_urlencoded::to_string(&v).unwrap_or_default())
    };
    insert_pager(&mut ctx, Paging { page: q.page, per_page: q.per_page }, l.total, link);
    ctx.insert("notice", &notice);
    let sorts: Vec<(&str, &str)> = Sort::ALL
        .iter()
        .map(|s| {
            let label = match s {
                Sort::Category => "Category",
                Sort::Name => "Name",
                Sort::Price => "Price: low to high",
                Sort::PriceDesc => "Price: high to low",
            };
            (s.as_str(), label)
        })
        .collect();
    ctx.insert("sorts", &sorts);
    ctx.insert("page_per_page", &PAGE_PER_PAGE);
    ctx.insert("price_min_text", &q.price_min.map(euros).unwrap_or_default());
    ctx.insert("price_max_text", &q.price_max.map(euros).unwrap_or_default());
    render_bytes("catalog/list.html", &ctx)
}

async fn page_product(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let id = ProductId(path_id(&id, "product")?);
    let notice = query_map(&req)?.get("notice").and_then(|n| crate::edge::web::notice(n));
    if session.has_cookie() {
        return Ok(html(render_product(&state, &session, id, notice).await?));
    }
    let key = format!("html:product:{id}:{notice:?}");
    let body = state.catalog_cache.get_or_make(key, render_product(&state, &session, id, notice)).await?;
    Ok(html(body))
}

async fn render_product(
    state: &AppState,
    session: &Session,
    id: ProductId,
    notice: Option<&str>,
) -> Result<Bytes, AppError> {
    let p =
        get(&state.db, id).await?.ok_or_else(|| AppError::NotFound("This product does not exist.".into()))?;
    let (mut ctx, _) = page(state, session, &p.name).await?;
    ctx.insert("max_qty", &p.stock.clamp(0, crate::edge::input::Quantity::MAX));
    ctx.insert("product", &p);
    // Repeating this form (double click, back + resubmit) adds once. A cached page hands the
    // same key to several visitors: harmless, the store keeps operation keys per cart.
    ctx.insert("op", &uuid::Uuid::new_v4().to_string());
    ctx.insert("notice", &notice);
    ctx.insert("error", &Option::<String>::None);
    render_bytes("catalog/product.html", &ctx)
}

/// `GET /products/{id}/picture.svg`: the product's picture (see [`picture::svg`]; 404 for no such
/// product). Browsers keep it a day, then ask again with its `ETag` (a renamed product's picture
/// changes by the next day; an unchanged one costs a 304).
async fn page_picture(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let id = ProductId(path_id(&id, "product")?);
    let p = cached(&state, id).await?.ok_or_else(|| AppError::NotFound("no such product".into()))?;
    let svg = picture::svg(&p);
    let etag = picture::etag(&svg);
    let cache = (header::CACHE_CONTROL, "public, max-age=86400");
    let seen = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if seen.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return Ok(HttpResponse::NotModified()
            .insert_header(cache)
            .insert_header((header::ETAG, etag))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(cache)
        .insert_header((header::ETAG, etag))
        .body(svg))
}

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/products", web::get().to(api_list))
        .route("/products/{id}", web::get().to(api_get))
        .route("/categories", web::get().to(api_categories));
}

pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page_list))
        .route("/products/{id}", web::get().to(page_product))
        .route("/products/{id}/picture.svg", web::get().to(page_picture));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_pattern("50%_off!"), "%50!%!_off!!%");
    }

    #[test]
    fn list_query_bounds() {
        let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert!(ListQuery::parse(&m(&[("page", "0")]), 20).is_err());
        assert!(ListQuery::parse(&m(&[("per_page", "101")]), 20).is_err());
        assert!(ListQuery::parse(&m(&[("page", "abc")]), 20).is_err());
        assert!(ListQuery::parse(&m(&[("q", &"x".repeat(101))]), 20).is_err());
        let q = ListQuery::parse(&m(&[("q", " mug "), ("page", "2")]), 20).ok();
        assert_eq!(q.map(|q| (q.q, q.page)), Some((Some("mug".into()), 2)));
    }
}
