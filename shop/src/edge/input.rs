//! Parse at the edge: request bodies (JSON or HTML forms) become validated domain values.
//!
//! Handlers never see raw input. A body is read with a hard size limit, parsed into [`Fields`],
//! and each field is converted into a domain type ([`Email`], [`Password`], [`Quantity`], …) whose
//! constructor is the only place that rule lives. Every failure names its field and says, in plain
//! words, what is expected — the API returns it as `fields`, an HTML form shows it next to the input.

use std::collections::HashMap;

use actix_web::{dev::Payload, http::header, web, HttpRequest};
use futures_util::StreamExt;

use crate::{
    domain::{ShippingAddress, ADDRESS_PARTS},
    error::AppError,
};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a body may take when no settings are at hand (the shop's default).
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Read the whole body, refusing more than [`BODY_LIMIT`] bytes (413) and a body that does not
/// finish within `SHOP_BODY_TIMEOUT_MS` (408: a client that stops sending holds nothing for long).
pub async fn read_body(req: &HttpRequest, payload: Payload) -> Result<web::Bytes, AppError> {
    let timeout = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map(|s| s.settings.body_timeout)
        .unwrap_or(BODY_TIMEOUT);
    tokio::time::timeout(timeout, read_body_unbounded(req, payload))
        .await
        .unwrap_or(Err(AppError::RequestTimeout))
}

async fn read_body_unbounded(req: &HttpRequest, mut payload: Payload) -> Result<web::Bytes, AppError> {
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH) {
        let len = len.to_str().ok().and_then(|v| v.parse::<usize>().ok());
        if len.is_some_and(|l| l > BODY_LIMIT) {
            return Err(AppError::PayloadTooLarge);
        }
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("could not read the request body: {e}")))?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub use crate::{
    domain::{Email, Password, PersonName, Quantity},
    error::FieldErrors,
};

/// The fields of a JSON object or an urlencoded form, with typed accessors.
pub enum Fields {
    Json(serde_json::Map<String, serde_json::Value>),
    Form(HashMap<String, String>),
}

impl Fields {
    /// Parse a JSON API body. An empty body counts as `{}`.
    pub fn from_json(body: &[u8]) -> Result<Self, AppError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields::Json(Default::default()));
        }
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(map)) => Ok(Fields::Json(map)),
            Ok(_) => Err(AppError::BadRequest("the request body must be a JSON object".into())),
            Err(e) => Err(AppError::BadRequest(format!("malformed JSON: {e}"))),
        }
    }

    /// Parse an `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Result<Self, AppError> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map(|pairs| Fields::Form(pairs.into_iter().collect()))
            .map_err(|e| AppError::BadRequest(format!("malformed form data: {e}")))
    }

    /// A string field; `Ok(None)` when absent (or JSON null).
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, String> {
        match self {
            Fields::Form(m) => Ok(m.get(name).cloned()),
            Fields::Json(m) => match m.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err("must be a string".into()),
            },
        }
    }

    /// A required string field.
    pub fn str(&self, name: &str) -> Result<String, String> {
        self.opt_str(name)?.ok_or_else(|| "is required".to_string())
    }

    /// An optional integer field: `Ok(None)` when absent, JSON null or an empty form field.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, String> {
        let absent = match self {
            Fields::Form(m) => m.get(name).is_none_or(|v| v.trim().is_empty()),
            Fields::Json(m) => m.get(name).is_none_or(serde_json::Value::is_null),
        };
        if absent {
            Ok(None)
        } else {
            self.int(name).map(Some)
        }
    }

    /// A nested JSON object (`Ok(None)` when absent or null). A form has no nested fields.
    pub fn opt_object(&self, name: &str) -> Result<Option<Fields>, String> {
        match self {
            Fields::Form(_) => Ok(None),
            Fields::Json(m) => match m.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Object(o)) => Ok(Some(Fields::Json(o.clone()))),
                Some(_) => Err("must be an object".into()),
            },
        }
    }

    /// An optional flag: a checked checkbox in a form (any value but empty), a JSON boolean.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, String> {
        match self {
            Fields::Form(m) => Ok(Some(m.get(name).is_some_and(|v| !v.is_empty()))),
            Fields::Json(m) => match m.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err("must be true or false".into()),
            },
        }
    }

    /// A required integer field (a JSON number, or digits in a form).
    pub fn int(&self, name: &str) -> Result<i64, String> {
        match self {
            Fields::Form(m) => match m.get(name).map(|s| s.trim()) {
                None | Some("") => Err("is required".into()),
                Some(s) => s.parse::<i64>().map_err(|_| "must be a whole number".to_string()),
            },
            Fields::Json(m) => match m.get(name) {
                None | Some(serde_json::Value::Null) => Err("is required".into()),
                Some(serde_json::Value::Number(n)) => {
                    n.as_i64().ok_or_else(|| "must be a whole number in range".to_string())
                }
                Some(_) => Err("must be a whole number".into()),
            },
        }
    }
}

/// Collects field errors while a handler validates several fields, then fails once with all.
#[derive(Default)]
pub struct Validator {
    errors: FieldErrors,
}

impl Validator {
    pub fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(msg) => {
                self.errors.entry(field.to_string()).or_insert(msg);
                None
            }
        }
    }

    pub fn errors(&self) -> &FieldErrors {
        &self.errors
    }

    /// `Ok(())` when nothing failed, otherwise a 422 naming every bad field.
    pub fn finish(self) -> Result<(), AppError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self.errors))
        }
    }
}

/// A shipping address from `f`: each part read from the field `key(part)` and a bad one
/// reported to `v` as `error(part)` (a form's `ship_city`, the API's `shipping_address.city`).
pub fn address(
    f: &Fields,
    key: impl Fn(&str) -> String,
    error: impl Fn(&str) -> String,
    v: &mut Validator,
) -> Option<ShippingAddress> {
    let parts: Vec<String> = ADDRESS_PARTS
        .iter()
        .filter_map(|part| {
            v.check(&error(part), f.str(&key(part)).and_then(|raw| ShippingAddress::check_part(part, &raw)))
        })
        .collect();
    parts.try_into().ok().map(ShippingAddress::from_parts)
}

/// Which page of a list: `page` (from 1) and `per_page`, from a query string (422 `fields`
/// when out of range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    pub page: u64,
    pub per_page: u64,
}

impl Paging {
    pub const MAX_PAGE: u64 = 10_000;

    /// The paging of a query string on its own: 422 naming `page` and/or `per_page` when bad.
    pub fn parse(
        m: &HashMap<String, String>,
        default_per_page: u64,
        max_per_page: u64,
    ) -> Result<Self, AppError> {
        let mut v = Validator::default();
        let paging = Self::read(m, default_per_page, max_per_page, &mut v);
        v.finish()?;
        Ok(paging)
    }

    /// The paging of a query string whose other parameters `v` checks too (one 422 names every
    /// bad one); a bad value reads as its default.
    pub fn read(
        m: &HashMap<String, String>,
        default_per_page: u64,
        max_per_page: u64,
        v: &mut Validator,
    ) -> Self {
        let num = |name: &str, default: u64, max: u64| -> Result<u64, String> {
            match m.get(name).map(|s| s.trim()) {
                None | Some("") => Ok(default),
                Some(s) => match s.parse::<u64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(format!("must be a whole number from 1 to {max}")),
                },
            }
        };
        let page = v.check("page", num("page", 1, Self::MAX_PAGE)).unwrap_or(1);
        let per_page =
            v.check("per_page", num("per_page", default_per_page, max_per_page)).unwrap_or(default_per_page);
        Paging { page, per_page }
    }

    /// `LIMIT`, as SQL binds it (SQLite has no unsigned 64-bit integers).
    pub fn limit(&self) -> i64 {
        self.per_page as i64
    }

    /// `OFFSET`: the rows before this page.
    pub fn skip(&self) -> i64 {
        ((self.page - 1) * self.per_page) as i64
    }

    /// The query-string tail of page `n` with this page size: `page=n`, and `&per_page=…` when
    /// it is not `default_per_page` (a pager keeps the size the visitor chose).
    pub fn page_query(&self, n: u64, default_per_page: u64) -> String {
        if self.per_page == default_per_page {
            format!("page={n}")
        } else {
            format!("page={n}&per_page={}", self.per_page)
        }
    }

    /// How many pages `total` rows make (at least 1).
    pub fn pages(&self, total: i64) -> u64 {
        (total.max(0) as u64).div_ceil(self.per_page).max(1)
    }
}

/// A price in euros as a visitor types it (`12`, `12.5`, `12.50`), in cents.
pub fn parse_euros(s: &str) -> Result<i64, String> {
    let bad = || "must be an amount in euros like 12 or 12.50".to_string();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || whole.len() > 7
        || frac.len() > 2
        || !(whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
    Ok(whole * 100 + frac)
}

/// A price in cents as euros with two decimals (`1250` → `12.50`), as a visitor types it.
pub fn euros(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A positive database id from a field or path segment.
pub fn parse_id(n: i64) -> Result<i64, String> {
    if n >= 1 {
        Ok(n)
    } else {
        Err("must be a positive id".into())
    }
}

/// A path id like `/api/products/{id}`: anything but a positive integer is a 404, not a 500.
pub fn path_id(raw: &str, what: &str) -> Result<i64, AppError> {
    raw.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| AppError::NotFound(format!("no such {what}")))
}

/// An idempotency key: 8 to 64 characters of `[A-Za-z0-9_-]`.
pub fn idempotency_key(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if (8..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(s.to_string())
    } else {
        Err("must be 8 to 64 characters of letters, digits, '-' or '_' (a UUID works)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Ada@Example.ORG ").map(Email::into_inner), Ok("ada@example.org".into()));
        for bad in ["", "plain", "@x.org", "a@b", "a@.org", "a b@x.org", "a@x..org", "<script>@x.org"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@x.org", "a".repeat(300))).is_err());
    }

    #[test]
    fn quantities() {
        assert!(Quantity::new(1).is_ok() && Quantity::new(99).is_ok());
        for bad in [0, -1, 100, i64::MAX, i64::MIN] {
            assert!(Quantity::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_and_names() {
        assert!(Password::parse("123456789").is_err());
        assert!(Password::parse("1234567890").is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(PersonName::parse("  ").is_err());
        assert!(PersonName::parse("Ada\u{0}").is_err());
        assert!(PersonName::parse(&"n".repeat(101)).is_err());
    }

    #[test]
    fn json_fields_are_typed() -> Result<(), AppError> {
        let f = Fields::from_json(br#"{"q":"3","n":3,"f":1.5,"big":1e40}"#)?;
        assert!(f.int("q").is_err());
        assert_eq!(f.int("n"), Ok(3));
        assert!(f.int("f").is_err() && f.int("big").is_err() && f.int("missing").is_err());
        assert!(Fields::from_json(b"[1]").is_err());
        assert!(Fields::from_json(b"{bad").is_err());
        Ok(())
    }
}
