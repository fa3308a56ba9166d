//! Cart: per-item lines in the session store (anonymous visitors and accounts alike), priced
//! from the catalog when read. Each change touches one line atomically, so two tabs or two
//! concurrent API calls of one shopper never erase each other's changes.

use std::sync::Arc;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    areas::catalog::{self, Product},
    domain::{CartLine, CartOwner, ProductId, USER_CART_TTL},
    edge::extract::{Form, JsonFields, OptionalIdempotencyKey, ProductInPath},
    edge::input::{idempotency_key, parse_id, Fields, Quantity, Validator},
    edge::session::Session,
    edge::web::{page, query_map, render_status, see_other},
    error::{ApiError, ApiResult, AppError, HtmlError, HtmlResult},
    infra::store::CartAdd,
    state::AppState,
};

/// One line of the cart, priced now.
#[derive(Debug, Serialize, Clone, ToSchema)]
#[schema(as = CartLine)]
pub struct PricedLine {
    #[schema(value_type = i64, minimum = 1)]
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    #[schema(minimum = 1, maximum = 99)]
    pub quantity: i64,
    #[schema(minimum = 0)]
    pub unit_price_cents: i64,
    #[schema(minimum = 0)]
    pub line_total_cents: i64,
    /// The product's stock now (advisory: checkout decides).
    #[schema(minimum = 0)]
    pub stock: i64,
}

/// The cart; lines of products that no longer exist are left out.
#[derive(Debug, Serialize, Clone, ToSchema)]
#[schema(as = Cart)]
pub struct CartView {
    pub items: Vec<PricedLine>,
    #[schema(minimum = 0)]
    pub total_cents: i64,
    #[schema(value_type = String, example = "EUR")]
    pub currency: &'static str,
}

/// The cart with current prices; lines of products that no longer exist are left out.
pub async fn view(state: &AppState, owner: &CartOwner) -> Result<CartView, AppError> {
    priced(state, state.store.cart_get(owner).await?).await
}

/// These lines (a cart as a change left it) with current prices.
pub async fn priced(state: &AppState, lines: Vec<CartLine>) -> Result<CartView, AppError> {
    let ids: Vec<ProductId> = lines.iter().map(|l| l.product_id).collect();
    let products = catalog::cached_many(state, &ids).await?;
    let items: Vec<PricedLine> = lines
        .into_iter()
        .filter_map(|CartLine { product_id: pid, quantity }| {
            let p = products.get(&pid)?;
            Some(PricedLine {
                product_id: pid,
                sku: p.sku.clone(),
                name: p.name.clone(),
                quantity,
                unit_price_cents: p.price_cents,
                line_total_cents: p.price_cents * quantity,
                stock: p.stock,
            })
        })
        .collect();
    let total_cents = items.iter().map(|l| l.line_total_cents).sum();
    Ok(CartView { items, total_cents, currency: "EUR" })
}

fn ttl(state: &AppState, owner: &CartOwner) -> std::time::Duration {
    if owner.is_account() {
        USER_CART_TTL
    } else {
        state.settings.session_ttl
    }
}

async fn product_for_cart(state: &AppState, product_id: ProductId) -> Result<Arc<Product>, AppError> {
    catalog::cached(state, product_id)
        .await?
        .ok_or_else(|| AppError::field("product_id", format!("there is no product with id {product_id}")))
}

fn stock_message(p: &Product, in_cart: i64) -> String {
    match (p.stock, in_cart) {
        (0, _) => format!("“{}” is sold out", p.name),
        (s, 0) => format!("only {s} of “{}” in stock", p.name),
        (s, c) => format!("only {s} of “{}” in stock and {c} already in your cart", p.name),
    }
}

/// Add `quantity` to a line: the line stays within 1..=99 and the stock. With an idempotency
/// key the add is applied at most once, however often the request is repeated. Answers the
/// cart as the add left it.
pub async fn add(
    state: &AppState,
    owner: &CartOwner,
    product_id: ProductId,
    quantity: Quantity,
    op: Option<&str>,
) -> Result<Vec<CartLine>, AppError> {
    let p = product_for_cart(state, product_id).await?;
    let max = p.stock.min(Quantity::MAX);
    if max < 1 {
        return Err(AppError::field("quantity", stock_message(&p, 0)));
    }
    match state.store.cart_add(owner, product_id, quantity.get(), max, false, ttl(state, owner), op).await? {
        (CartAdd::Added(_), lines) => Ok(lines),
        (CartAdd::OverLimit(cur), _) if p.stock >= Quantity::MAX => Err(AppError::field(
            "quantity",
            format!("at most {} of one product per order ({cur} already in your cart)", Quantity::MAX),
        )),
        (CartAdd::OverLimit(cur), _) => Err(AppError::field("quantity", stock_message(&p, cur))),
    }
}

/// Set a line to exactly `quantity` (idempotent). Answers the cart as the change left it.
pub async fn set(
    state: &AppState,
    owner: &CartOwner,
    product_id: ProductId,
    quantity: Quantity,
) -> Result<Vec<CartLine>, AppError> {
    let p = product_for_cart(state, product_id).await?;
    if quantity.get() > p.stock {
        return Err(AppError::field("quantity", stock_message(&p, 0)));
    }
    Ok(state.store.cart_set(owner, product_id, quantity.get(), ttl(state, owner)).await?)
}

fn parse_line(f: &Fields, with_product: bool) -> Result<(ProductId, Quantity), AppError> {
    let mut v = Validator::default();
    let pid =
        if with_product { v.check("product_id", f.int("product_id").and_then(parse_id)) } else { Some(0) };
    let qty = v.check("quantity", f.int("quantity").and_then(Quantity::new));
    v.finish()?;
    match (pid, qty) {
        (Some(p), Some(q)) => Ok((ProductId(p), q)),
        _ => Err(AppError::BadRequest("product_id and quantity are required".into())),
    }
}

// --- JSON API ------------------------------------------------------------------------------

/// A line to add (documents what `parse_line` reads).
#[derive(ToSchema)]
pub struct CartAddRequest {
    #[schema(minimum = 1, example = 1)]
    pub product_id: i64,
    /// Added to the line; the line stays within 1..=99 and the product's stock.
    #[schema(minimum = 1, maximum = 99, example = 1)]
    pub quantity: i64,
}

/// A line's new quantity (documents what `parse_line` reads).
#[derive(ToSchema)]
pub struct CartSetRequest {
    /// At most the product's stock.
    #[schema(minimum = 1, maximum = 99, example = 2)]
    pub quantity: i64,
}

/// The visitor's cart (the account's when logged in, else the session's).
#[utoipa::path(
    get,
    path = "/api/cart",
    operation_id = "getCart",
    tag = "cart",
    security((), ("session" = [])),
    responses(
        (status = 200, description = "The cart, priced now", body = CartView),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_get(state: web::Data<AppState>, session: Session) -> ApiResult<HttpResponse> {
    let owner = session.cart_owner(&state.store).await?;
    Ok(HttpResponse::Ok().json(view(&state, &owner).await?))
}

/// Add to a line. With an `Idempotency-Key` the add happens at most once, so a retry is safe.
#[utoipa::path(
    post,
    path = "/api/cart/items",
    operation_id = "addToCart",
    tag = "cart",
    request_body = CartAddRequest,
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[A-Za-z0-9_-]{8,64}$",
        description = "Optional: the same key again adds nothing more (a fresh UUID per add)")),
    security((), ("session" = [])),
    responses(
        (status = 200, description = "The cart after the add", body = CartView,
            headers(("Set-Cookie" = String, description = "A new anonymous session cookie, for a visitor without one"))),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "No such product, a quantity out of range or over the stock, or a bad `Idempotency-Key`; `fields` names each", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_add(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    JsonFields(f): JsonFields,
) -> ApiResult<HttpResponse> {
    let (pid, qty) = parse_line(&f, true)?;
    // after the body's fields (see edge::extract)
    let OptionalIdempotencyKey(op) = OptionalIdempotencyKey::of(&req)?;
    let owner = session.cart_owner(&state.store).await?;
    let lines = add(&state, &owner, pid, qty, op.as_deref()).await?;
    Ok(HttpResponse::Ok().json(priced(&state, lines).await?))
}

/// Set a line to a quantity (idempotent).
#[utoipa::path(
    put,
    path = "/api/cart/items/{product_id}",
    operation_id = "setCartLine",
    tag = "cart",
    request_body = CartSetRequest,
    params(("product_id" = i64, Path, minimum = 1, example = 1, description = "Product id")),
    security((), ("session" = [])),
    responses(
        (status = 200, description = "The cart after the change", body = CartView),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 404, description = "`product_id` is not a positive integer", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "No such product, or a quantity out of range or over the stock; `fields` names each", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_set(
    state: web::Data<AppState>,
    session: Session,
    ProductInPath(pid): ProductInPath,
    JsonFields(f): JsonFields,
) -> ApiResult<HttpResponse> {
    let (_, qty) = parse_line(&f, false)?;
    let owner = session.cart_owner(&state.store).await?;
    let lines = set(&state, &owner, pid, qty).await?;
    Ok(HttpResponse::Ok().json(priced(&state, lines).await?))
}

/// Remove a line (idempotent: removing a line that is not there is no error).
#[utoipa::path(
    delete,
    path = "/api/cart/items/{product_id}",
    operation_id = "removeCartLine",
    tag = "cart",
    params(("product_id" = i64, Path, minimum = 1, example = 1, description = "Product id")),
    security((), ("session" = [])),
    responses(
        (status = 200, description = "The cart after the change", body = CartView),
        (status = 404, description = "`product_id` is not a positive integer", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_remove(
    state: web::Data<AppState>,
    session: Session,
    ProductInPath(pid): ProductInPath,
) -> ApiResult<HttpResponse> {
    let owner = session.cart_owner(&state.store).await?;
    state.store.cart_remove(&owner, pid).await?;
    Ok(HttpResponse::Ok().json(view(&state, &owner).await?))
}

// --- HTML ----------------------------------------------------------------------------------

async fn cart_page(
    state: &AppState,
    session: &Session,
    error: Option<String>,
    notice: Option<&str>,
    status: StatusCode,
) -> HtmlResult<HttpResponse> {
    let owner = session.cart_owner(&state.store).await?;
    let lines = state.store.cart_get(&owner).await?;
    let cart = priced(state, lines.clone()).await?;
    // lines of products no longer sold (hidden by the admin): not in the total and left out of
    // an order, but shown, so the shopper sees why the header counts them and can remove them
    let gone: Vec<&CartLine> =
        lines.iter().filter(|l| !cart.items.iter().any(|i| i.product_id == l.product_id)).collect();
    let (mut ctx, _) = page(state, session, "Your cart").await?;
    ctx.insert("cart", &cart);
    ctx.insert("gone", &gone);
    ctx.insert("error", &error);
    ctx.insert("notice", &notice);
    Ok(render_status(status, "cart/cart.html", &ctx)?)
}

async fn page_cart(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let q = query_map(&req)?;
    cart_page(
        &state,
        &session,
        None,
        q.get("notice").and_then(|n| crate::edge::web::notice(n)),
        StatusCode::OK,
    )
    .await
}

async fn form_add(state: web::Data<AppState>, session: Session, Form(f): Form) -> HtmlResult<HttpResponse> {
    let owner = session.cart_owner(&state.store).await?;
    let result = match parse_line(&f, true) {
        Ok((pid, qty)) => {
            let op = f.opt_str("op").ok().flatten().and_then(|k| idempotency_key(&k).ok());
            add(&state, &owner, pid, qty, op.as_deref()).await.map(|_| pid)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other("/cart?notice=added")),
        Err(e @ AppError::Validation(_)) => {
            // Show the product page again with the message, if the product exists.
            let pid = f.int("product_id").ok().filter(|p| *p > 0);
            let product = match pid {
                Some(p) => catalog::get(&state.db, ProductId(p)).await?,
                None => None,
            };
            let Some(p) = product else { return Err(HtmlError(e)) };
            let (mut ctx, _) = page(&state, &session, &p.name).await?;
            ctx.insert("max_qty", &p.stock.clamp(0, Quantity::MAX));
            ctx.insert("product", &p);
            ctx.insert("op", &uuid::Uuid::new_v4().to_string());
            ctx.insert("notice", &Option::<String>::None);
            ctx.insert("error", &Some(e.public_message()));
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, "catalog/product.html", &ctx)?)
        }
        Err(e) => Err(HtmlError(e)),
    }
}

async fn form_update(
    state: web::Data<AppState>,
    session: Session,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    let owner = session.cart_owner(&state.store).await?;
    let result = match parse_line(&f, true) {
        Ok((pid, qty)) => set(&state, &owner, pid, qty).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other("/cart?notice=updated")),
        Err(e @ AppError::Validation(_)) => {
            cart_page(&state, &session, Some(e.public_message()), None, StatusCode::UNPROCESSABLE_ENTITY)
                .await
        }
        Err(e) => Err(HtmlError(e)),
    }
}

async fn form_remove(
    state: web::Data<AppState>,
    session: Session,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    let pid = f.int("product_id").and_then(parse_id).map_err(|m| AppError::field("product_id", m))?;
    let pid = ProductId(pid);
    let owner = session.cart_owner(&state.store).await?;
    state.store.cart_remove(&owner, pid).await?;
    Ok(see_other("/cart?notice=removed"))
}

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/cart", web::get().to(api_get))
        .route("/cart/items", web::post().to(api_add))
        .route("/cart/items/{product_id}", web::put().to(api_set))
        .route("/cart/items/{product_id}", web::delete().to(api_remove));
}

pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/cart", web::get().to(page_cart))
        .route("/cart/add", web::post().to(form_add))
        .route("/cart/update", web::post().to(form_update))
        .route("/cart/remove", web::post().to(form_remove));
}
