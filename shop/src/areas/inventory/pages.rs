//! The admin's product pages: the list, a new product, a product's form, its stock and history.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::{
    domain::ProductId,
    edge::extract::{Form, PageAdmin},
    edge::input::{euros, idempotency_key, path_id, Paging, Validator},
    edge::session::{CurrentUser, Session},
    edge::web::{insert_pager, page, query_map, render, render_form, see_other},
    error::{AppError, HtmlError, HtmlResult},
    state::AppState,
};

use super::{
    api::HISTORY,
    repo::{self, ManagedProduct},
    rules::{self, PriceField},
};

const PAGE_PER_PAGE: u64 = 50;
const MAX_PER_PAGE: u64 = 200;

/// The errors a form shows beside itself (the rest are error pages).
fn shown_with_form(e: &AppError) -> bool {
    matches!(e, AppError::Validation(_) | AppError::Conflict { .. })
}

pub(super) async fn page_list(
    state: web::Data<AppState>,
    session: Session,
    _: PageAdmin,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let q = query_map(&req)?;
    let paging = Paging::parse(&q, PAGE_PER_PAGE, MAX_PER_PAGE)?;
    let (products, total) = repo::list(&state.db, paging).await?;
    let (mut ctx, _) = page(&state, &session, "Admin: products").await?;
    ctx.insert("products", &products);
    insert_pager(&mut ctx, paging, total, |n| {
        format!("/admin/products?{}", paging.page_query(n, PAGE_PER_PAGE))
    });
    ctx.insert("notice", &q.get("notice").and_then(|n| crate::edge::web::notice(n)));
    Ok(render("admin/products.html", &ctx)?)
}

/// What a product form shows in its fields.
fn form_values(p: &ManagedProduct) -> HashMap<&'static str, String> {
    HashMap::from([
        ("name", p.name.clone()),
        ("description", p.description.clone()),
        ("category", p.category.clone()),
        ("price", euros(p.price_cents)),
        ("hidden", if p.hidden { "on".into() } else { String::new() }),
    ])
}

/// What was entered in a product form (to show it again with the errors).
fn entered(f: &crate::edge::input::Fields) -> HashMap<&'static str, String> {
    ["name", "description", "category", "price", "hidden", "stock", "sku", "delta", "note"]
        .into_iter()
        .map(|k| (k, f.opt_str(k).ok().flatten().unwrap_or_default()))
        .collect()
}

/// The new-product form (`error`: why the last try failed).
async fn new_page(
    state: &AppState,
    session: &Session,
    values: HashMap<&'static str, String>,
    error: Option<&AppError>,
) -> HtmlResult<HttpResponse> {
    let (mut ctx, _) = page(state, session, "Admin: new product").await?;
    ctx.insert("product", &Option::<ManagedProduct>::None);
    ctx.insert("form", &values);
    Ok(render_form("admin/product.html", &mut ctx, error)?)
}

pub(super) async fn page_new(
    state: web::Data<AppState>,
    session: Session,
    _: PageAdmin,
) -> HtmlResult<HttpResponse> {
    // a SKU made up now, in the form: sending the form twice makes one product (see rules::create)
    let values = HashMap::from([("stock", "0".to_string()), ("sku", rules::generated_sku())]);
    new_page(&state, &session, values, None).await
}

pub(super) async fn form_create(
    state: web::Data<AppState>,
    session: Session,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    let admin = admin_of(&state, &session, "/admin/products/new").await?;
    let mut v = Validator::default();
    let draft = rules::parse_draft(&f, PriceField::Euros, &mut v);
    let (sku, stock) = rules::parse_new(&f, &mut v);
    let result = match (v.finish(), draft, sku, stock) {
        (Ok(()), Some(draft), Some(sku), Some(stock)) => {
            rules::create(&state, &sku, &draft, stock, admin.id).await
        }
        (Err(e), ..) => Err(e),
        _ => Err(AppError::BadRequest("the product is incomplete".into())),
    };
    match result {
        Ok(p) => Ok(see_other(&format!("/admin/products/{}?notice=product_created", p.id))),
        Err(e) if shown_with_form(&e) => new_page(&state, &session, entered(&f), Some(&e)).await,
        Err(e) => Err(HtmlError(e)),
    }
}

/// A product's page: its form, its stock form and its history.
async fn product_page(
    state: &AppState,
    session: &Session,
    id: ProductId,
    values: Option<HashMap<&'static str, String>>,
    notice: Option<&str>,
    error: Option<&AppError>,
) -> HtmlResult<HttpResponse> {
    let product = repo::find(&state.db, id)
        .await?
        .ok_or_else(|| AppError::NotFound("There is no such product.".into()))?;
    let history = repo::history(&state.db, id, HISTORY).await?;
    let (mut ctx, _) = page(state, session, &format!("Admin: {}", product.name)).await?;
    ctx.insert("form", &values.unwrap_or_else(|| form_values(&product)));
    ctx.insert("product", &Some(&product));
    ctx.insert("history", &history);
    ctx.insert("op_key", &uuid::Uuid::new_v4().to_string());
    ctx.insert("notice", &notice.and_then(crate::edge::web::notice));
    Ok(render_form("admin/product.html", &mut ctx, error)?)
}

pub(super) async fn page_product(
    state: web::Data<AppState>,
    session: Session,
    _: PageAdmin,
    id: web::Path<String>,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let id = ProductId(path_id(&id, "product")?);
    let q = query_map(&req)?;
    product_page(&state, &session, id, None, q.get("notice").map(String::as_str), None).await
}

/// The admin of a form post; without a login, to the login page and back to `back`.
async fn admin_of(state: &AppState, session: &Session, back: &str) -> Result<CurrentUser, AppError> {
    let user = session.login_first(&state.store, back).await?;
    if user.is_admin() {
        Ok(user)
    } else {
        Err(AppError::Forbidden("this needs an admin account".into()))
    }
}

pub(super) async fn form_update(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    let id = ProductId(path_id(&id, "product")?);
    let admin = admin_of(&state, &session, &format!("/admin/products/{id}")).await?;
    let mut v = Validator::default();
    let draft = rules::parse_draft(&f, PriceField::Euros, &mut v);
    let result = match (v.finish(), draft) {
        (Ok(()), Some(draft)) => rules::update(&state, id, &draft, admin.id).await,
        (Err(e), _) => Err(e),
        _ => Err(AppError::BadRequest("the product is incomplete".into())),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/admin/products/{id}?notice=product_saved"))),
        Err(e) if shown_with_form(&e) => {
            product_page(&state, &session, id, Some(entered(&f)), None, Some(&e)).await
        }
        Err(e) => Err(HtmlError(e)),
    }
}

pub(super) async fn form_stock(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    let id = ProductId(path_id(&id, "product")?);
    let admin = admin_of(&state, &session, &format!("/admin/products/{id}")).await?;
    let mut v = Validator::default();
    let change = rules::parse_stock_change(&f, &mut v);
    // the form's operation key: a double click or a resent post changes the stock once
    let op_key =
        v.check("op_key", f.opt_str("op_key").and_then(|k| k.map(|k| idempotency_key(&k)).transpose()));
    let result = match (v.finish(), change, op_key) {
        (Ok(()), Some((delta, note)), Some(op_key)) => {
            rules::change_stock(&state, id, delta, &note, admin.id, op_key.as_deref()).await
        }
        (Err(e), ..) => Err(e),
        _ => Err(AppError::BadRequest("the change is incomplete".into())),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/admin/products/{id}?notice=restocked"))),
        // the product form shows the product as stored; the stock form what was entered
        Err(e) if shown_with_form(&e) => {
            let product = repo::find(&state.db, id).await?;
            let mut values = product.as_ref().map(form_values).unwrap_or_default();
            values.insert("delta", f.opt_str("delta").ok().flatten().unwrap_or_default());
            values.insert("note", f.opt_str("note").ok().flatten().unwrap_or_default());
            product_page(&state, &session, id, Some(values), None, Some(&e)).await
        }
        Err(e) => Err(HtmlError(e)),
    }
}
