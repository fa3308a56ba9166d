//! The OpenAPI document at `/api/openapi.json`: served, OpenAPI 3, complete (every route the
//! `/api` scope registers is described, and nothing else), and every error it documents is the
//! `ApiError` shape. `tests/api-fuzz/run.sh` checks the server against it with schemathesis.

use std::{collections::BTreeSet, path::Path};

use serde_json::Value;

use crate::helpers::*;

type Routes = BTreeSet<(String, String)>;

fn source(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A module's source: `{module}.rs`, or `{module}/mod.rs` for a module split into parts, at
/// the top of `src/` or among the areas (`src/areas/`).
fn module_source(module: &str) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let candidates = [
        format!("{module}.rs"),
        format!("{module}/mod.rs"),
        format!("areas/{module}.rs"),
        format!("areas/{module}/mod.rs"),
    ];
    let found = candidates.iter().find(|c| src.join(c).exists());
    source(found.unwrap_or(&candidates[0]))
}

/// The text from `start` up to the first `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("`{start}` not found")) + start.len();
    let len = text[from..].find(end).unwrap_or_else(|| panic!("`{end}` not found after `{start}`"));
    &text[from..from + len]
}

/// `(METHOD, /api/path)` of every route registered in the `/api` scope, read from the sources:
/// startup.rs says which modules' `configure_api` the scope runs, and each of those lists its
/// routes as `.route("/path", web::method().to(handler))`. A route added there without an
/// `#[utoipa::path]` for it fails `every_api_route_is_documented`.
fn api_routes_in_sources() -> Routes {
    let startup = source("startup.rs");
    let scope = between(&startup, "web::scope(\"/api\")", ".default_service(");
    let modules: Vec<&str> = scope
        .split(".configure(")
        .skip(1)
        .map(|s| s.split("::configure_api").next().unwrap().trim())
        .collect();
    assert!(modules.len() >= 6, "the /api scope's modules, from startup.rs: {modules:?}");
    let mut routes = Routes::new();
    for module in modules {
        let file = module_source(module);
        let body = between(&file, "pub fn configure_api(cfg: &mut web::ServiceConfig) {", "\n}\n");
        assert!(
            !body.contains(".service("),
            "{module}.rs: configure_api registers a service this test cannot read"
        );
        for call in body.split(".route(").skip(1) {
            let path = call
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("{module}.rs: a route without a literal path"));
            let method = between(call, "web::", "(");
            assert!(
                ["get", "post", "put", "delete", "patch"].contains(&method),
                "{module}.rs: route {path} has method {method}"
            );
            routes.insert((method.to_uppercase(), format!("/api{path}")));
        }
    }
    routes
}

async fn document(app: &TestApp) -> Value {
    let r = app.shopper().get("/api/openapi.json").await;
    assert_eq!(r.status(), 200);
    let ct = r.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    r.json().await.unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = vec![];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
                .contains(&method.as_str())
            {
                ops.push((method.to_uppercase(), path.clone(), op));
            }
        }
    }
    ops
}

/// Follow a `$ref` to `#/components/…` (one level: that is all the document uses).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external ref {r}"));
            doc.pointer(pointer).unwrap_or_else(|| panic!("dangling ref {r}"))
        }
        None => v,
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_and_describes_every_api_route() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let in_sources = api_routes_in_sources();
    assert!(in_sources.contains(&("POST".into(), "/api/orders".into())), "{in_sources:?}");
    assert!(in_sources.contains(&("GET".into(), "/api/openapi.json".into())), "{in_sources:?}");
    let documented: Routes = operations(&doc).into_iter().map(|(m, p, _)| (m, p)).collect();
    let undocumented: Vec<_> = in_sources.difference(&documented).collect();
    assert!(undocumented.is_empty(), "routes of the /api scope missing from the document: {undocumented:?}");
    let phantom: Vec<_> = documented.difference(&in_sources).collect();
    assert!(phantom.is_empty(), "documented but not routed: {phantom:?}");
    let mut ids = BTreeSet::new();
    for (m, p, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{m} {p}: no operationId"));
        assert!(ids.insert(id.to_string()), "{m} {p}: operationId {id} used twice");
        // A parameter is text on the wire: it can be absent, never `null` (an optional header
        // documented as nullable had schemathesis send `Idempotency-Key: null`).
        for param in op["parameters"].as_array().into_iter().flatten() {
            let ty = &resolve(&doc, &param["schema"])["type"];
            assert!(
                !ty.as_array().is_some_and(|t| t.contains(&"null".into())),
                "{m} {p}: parameter {} may be null",
                param["name"]
            );
        }
    }
}

#[tokio::test]
async fn every_documented_error_is_the_api_error_shape() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let error = &doc["components"]["schemas"]["ApiError"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    let detail = &error["properties"]["error"];
    assert_eq!(detail["required"], serde_json::json!(["code", "message"]), "{detail}");
    assert_eq!(detail["properties"]["fields"]["additionalProperties"]["type"], "string", "{detail}");
    let scheme = &doc["components"]["securitySchemes"]["session"];
    assert_eq!(
        (&scheme["type"], &scheme["in"], &scheme["name"]),
        (&"apiKey".into(), &"cookie".into(), &shop::edge::session::COOKIE_NAME.into()),
        "{scheme}"
    );
    for (m, p, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{m} {p}: no responses"));
        assert!(responses.keys().any(|s| s.starts_with('2')), "{m} {p}: no success response");
        for (status, response) in responses {
            let response = resolve(&doc, response);
            assert!(response["description"].is_string(), "{m} {p} {status}: no description");
            if status.as_str() >= "400" {
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ApiError",
                    "{m} {p} {status}: the error body must be ApiError, is {response}"
                );
            }
        }
        // What the API guard and the session answer must be there too.
        let has = |s: &str| responses.contains_key(s);
        if m != "GET" {
            assert!(has("403"), "{m} {p}: no 403 (foreign Origin)");
        }
        if m == "POST" || m == "PUT" {
            assert!(has("415"), "{m} {p}: no 415 (not JSON)");
            assert!(op["requestBody"]["content"]["application/json"].is_object(), "{m} {p}: no JSON body");
        }
        let requires_session = op["security"]
            .as_array()
            .is_some_and(|alts| !alts.iter().any(|a| a.as_object().is_some_and(|o| o.is_empty())));
        if requires_session {
            assert!(has("401"), "{m} {p}: needs a session but documents no 401");
        }
    }
}

/// The errors the server really sends fit the documented schema's required parts.
#[tokio::test]
async fn real_errors_have_the_documented_shape() {
    let app = spawn_app().await;
    let s = app.shopper();
    let (st, e) = error_of(s.post_json("/api/cart/items", &serde_json::json!({"quantity": 0})).await).await;
    assert_eq!(st, 422);
    assert!(
        e["error"]["fields"]["quantity"].is_string() && e["error"]["fields"]["product_id"].is_string(),
        "{e}"
    );
    let (st, e) = error_of(s.get("/api/products/0").await).await;
    assert_eq!(st, 404);
    assert!(e["error"].get("fields").is_none(), "no fields key outside validation errors: {e}");
}

/// The shop registers internationalised addresses, and answers them back (`Account`, the
/// admin's orders): the document must not claim they are JSON Schema `email`s, which are ASCII
/// only. It did, and `POST /api/register` with `Jürgen@Bücher.de` answered a body that broke
/// its own documented schema.
#[tokio::test]
async fn internationalised_emails_fit_the_document() {
    let app = spawn_app().await;
    let r = app.shopper().register("Jürgen@Bücher.de", PASSWORD, "Jürgen").await;
    assert_eq!(r.status(), 201);
    let account: Value = r.json().await.unwrap();
    assert_eq!(account["email"], "jürgen@bücher.de");
    let doc = document(&app).await;
    let text = doc.to_string();
    assert!(!text.contains(r#""format":"email""#), "an ASCII-only email format is claimed somewhere");
    let register = &doc["components"]["schemas"]["RegisterRequest"]["properties"]["email"];
    assert_eq!(register["format"], "idn-email", "{register}");
}
