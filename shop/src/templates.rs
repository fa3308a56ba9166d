//! The page templates (embedded in the binary) and the one renderer every page goes through.
//!
//! At the bottom of the shop so that the error type can render its HTML page without knowing
//! about requests or state: [`error_page`] needs nothing but the compiled templates and the
//! process's name ([`crate::replica::name`], for the footer). Templates are
//! compiled once at start (a broken template stops the process, not a request) and autoescape
//! everything (`.html` names).

use std::{collections::HashMap, sync::OnceLock};

use tera::{Context, Tera};

static TEMPLATES: OnceLock<Tera> = OnceLock::new();

const TEMPLATE_FILES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("catalog/list.html", include_str!("../templates/catalog/list.html")),
    ("catalog/product.html", include_str!("../templates/catalog/product.html")),
    ("accounts/login.html", include_str!("../templates/accounts/login.html")),
    ("accounts/register.html", include_str!("../templates/accounts/register.html")),
    ("accounts/account.html", include_str!("../templates/accounts/account.html")),
    ("cart/cart.html", include_str!("../templates/cart/cart.html")),
    ("orders/checkout.html", include_str!("../templates/orders/checkout.html")),
    ("orders/list.html", include_str!("../templates/orders/list.html")),
    ("orders/detail.html", include_str!("../templates/orders/detail.html")),
    ("admin/orders.html", include_str!("../templates/admin/orders.html")),
    ("admin/products.html", include_str!("../templates/admin/products.html")),
    ("admin/product.html", include_str!("../templates/admin/product.html")),
];

pub const STYLE_CSS: &str = include_str!("../static/style.css");

/// `1234` → `€12.34`.
pub fn format_money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let euros = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in euros.chars().enumerate() {
        if i > 0 && (euros.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}€{grouped}.{:02}", c % 100)
}

fn money_filter(v: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let cents = v.as_i64().ok_or_else(|| tera::Error::msg("money: expects an integer number of cents"))?;
    Ok(tera::Value::String(format_money(cents)))
}

/// Compile the templates once. Called at start; a failure stops the process.
pub fn init_templates() -> anyhow::Result<&'static Tera> {
    if let Some(t) = TEMPLATES.get() {
        return Ok(t);
    }
    let mut tera = Tera::default();
    tera.add_raw_templates(TEMPLATE_FILES.to_vec())?;
    tera.register_filter("money", money_filter);
    Ok(TEMPLATES.get_or_init(|| tera))
}

/// Render a template; `None` before [`init_templates`] ran.
pub fn render(name: &str, ctx: &Context) -> Option<tera::Result<String>> {
    TEMPLATES.get().map(|t| t.render(name, ctx))
}

/// The error page; falls back to plain HTML if even that cannot render.
pub fn error_page(status: u16, title: &str, message: &str) -> String {
    let mut ctx = Context::new();
    ctx.insert("status", &status);
    ctx.insert("title", title);
    ctx.insert("message", message);
    // no user: `null`, as for a visitor
    ctx.insert("user", &Option::<()>::None);
    ctx.insert("csrf_token", "");
    ctx.insert("cart_count", &0);
    ctx.insert("served_by", &crate::replica::name());
    TEMPLATES.get().and_then(|t| t.render("error.html", &ctx).ok()).unwrap_or_else(|| {
        format!(
            "<!doctype html><title>{status}</title><h1>{status} {title}</h1><p>{}</p>",
            tera::escape_html(message)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money() {
        assert_eq!(format_money(0), "€0.00");
        assert_eq!(format_money(1999), "€19.99");
        assert_eq!(format_money(123456789), "€1,234,567.89");
        assert_eq!(format_money(-5), "-€0.05");
    }
}
