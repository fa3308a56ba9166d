//! The OpenAPI 3.1 description of the JSON API, generated from the code and served at
//! `GET /api/openapi.json`.
//!
//! Each handler of the `/api` scope carries a `#[utoipa::path]` annotation next to it: its
//! parameters, request body, every status it can answer and the body of each. The request
//! bodies are parsed by hand (through [`crate::edge::input::Fields`], so every bad field is named in a
//! 422), so their shapes are small documentation structs beside the handlers, with the same
//! limits as the parsers in [`crate::edge::input`]. Responses are the types the handlers serialise.
//!
//! What the whole scope does is added here, once, like the code does it once: the API guard
//! ([`crate::edge::web::api_guard`]) answers 403 to a foreign `Origin` on every state-changing request
//! and 415 to one that is not `application/json` (but `DELETE`); a body that does not arrive in
//! time is a 408. `shop/tests/api/openapi.rs`
//! checks that every route of the scope is described and that every error is an [`ApiError`];
//! `tests/api-fuzz/run.sh` has schemathesis check the server against this document.

use std::sync::LazyLock;

use actix_web::{web, HttpResponse};
use utoipa::{
    openapi::{
        path::Operation,
        security::{ApiKey, ApiKeyValue, SecurityScheme},
        ContentBuilder, HttpMethod, Ref, RefOr, ResponseBuilder,
    },
    Modify, OpenApi,
};

use crate::{
    areas::accounts,
    areas::admin,
    areas::cart,
    areas::catalog,
    areas::inventory,
    areas::orders,
    edge::session::COOKIE_NAME,
    error::{ApiError, AppError},
};

/// The name of the session-cookie security scheme in the document (the annotations' `security`
/// lists name it as a literal: the macro takes no constant there).
pub const SESSION_SCHEME: &str = "session";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "distshop JSON API",
        description = "The shop's JSON API: catalog, accounts, cart, orders and the admin's order \
            actions and product management. State-changing requests (POST, PUT, DELETE) must not carry a foreign `Origin`, \
            and POST and PUT need `Content-Type: application/json`, even without a body. Errors are \
            always `{\"error\": {\"code\", \"message\", \"fields\"?}}` (schema `ApiError`). The \
            session is the `distshop_session` cookie, set by `POST /api/login` (and by any request \
            that needs an anonymous cart)."
    ),
    paths(
        catalog::api_list,
        catalog::api_get,
        catalog::api_categories,
        accounts::api::api_register,
        accounts::api::api_login,
        accounts::api::api_logout,
        accounts::api::api_me,
        accounts::api::api_change_password,
        cart::api_get,
        cart::api_add,
        cart::api_set,
        cart::api_remove,
        orders::api::api_checkout,
        orders::api::api_list,
        orders::api::api_get,
        orders::api::api_cancel,
        admin::api_list,
        admin::api_confirm,
        admin::api_ship,
        inventory::api::api_list,
        inventory::api::api_create,
        inventory::api::api_get,
        inventory::api::api_update,
        inventory::api::api_change_stock,
        openapi_json,
    ),
    components(schemas(ApiError)),
    modifiers(&ScopeWide),
    tags(
        (name = "catalog", description = "Products and categories (no session needed)"),
        (name = "accounts", description = "Register, log in and out, who am I"),
        (name = "cart", description = "The visitor's cart (anonymous or the account's)"),
        (name = "orders", description = "Checkout and the customer's orders"),
        (name = "admin", description = "Orders by status, confirm and ship; products, their stock and its history (admin accounts only)"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

pub use crate::edge::web::EmptyBody;

/// The session cookie scheme and the API guard's answers (see the module docs).
struct ScopeWide;

impl Modify for ScopeWide {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SESSION_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE_NAME,
                "The session: a signed random id (HttpOnly, SameSite=Lax), set by POST /api/login",
            ))),
        );
        let error_response = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ApiError"))).build(),
                )
                .build()
        };
        components.responses.insert(
            "ForeignOrigin".into(),
            error_response("The request's `Origin` is not this site (CSRF protection)").into(),
        );
        components.responses.insert(
            "BodyTimeout".into(),
            error_response("The request body did not arrive within `SHOP_BODY_TIMEOUT_MS` (10 s)").into(),
        );
        components.responses.insert(
            "NotJson".into(),
            error_response("State-changing requests need `Content-Type: application/json`").into(),
        );
        for item in doc.paths.paths.values_mut() {
            for (method, op) in [
                (HttpMethod::Post, item.post.as_mut()),
                (HttpMethod::Put, item.put.as_mut()),
                (HttpMethod::Patch, item.patch.as_mut()),
                (HttpMethod::Delete, item.delete.as_mut()),
            ] {
                let Some(op) = op else { continue };
                add_response(op, "403", "ForeignOrigin");
                if method != HttpMethod::Delete {
                    add_response(op, "415", "NotJson");
                    add_response(op, "408", "BodyTimeout");
                }
            }
        }
    }
}

/// Add a reference to a shared response, unless the operation documents that status itself
/// (then its own description must mention the guard's reason too).
fn add_response(op: &mut Operation, status: &str, shared: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(shared)));
}

/// The document, serialised once.
static DOCUMENT: LazyLock<Result<web::Bytes, String>> =
    LazyLock::new(|| ApiDoc::openapi().to_json().map(web::Bytes::from).map_err(|e| e.to_string()));

/// This document (OpenAPI 3.1, JSON).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document of this API", body = Object)),
)]
async fn openapi_json() -> Result<HttpResponse, AppError> {
    match &*DOCUMENT {
        Ok(body) => Ok(crate::edge::web::json_bytes(body.clone())),
        Err(e) => Err(AppError::Unexpected(anyhow::anyhow!("the OpenAPI document: {e}"))),
    }
}

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json));
}
