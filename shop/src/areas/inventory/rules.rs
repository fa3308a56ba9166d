//! What the admin may write of a product, checked field by field, and the writes themselves in
//! transactions.

use crate::{
    domain::{text, ProductId, UserId},
    edge::input::{parse_euros, Fields, Validator},
    error::AppError,
    infra::db::{self, DbError, TxError},
    state::AppState,
};

use super::repo::{self, Change, ManagedProduct, ProductDraft, MAX_STOCK};

/// The dearest price: €100,000.00.
pub const MAX_PRICE_CENTS: i64 = 10_000_000;

fn in_range(n: i64, lo: i64, hi: i64) -> Result<i64, String> {
    if (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be between {lo} and {hi}"))
    }
}

/// How a body names the price: the API in cents (`price_cents`), a form in euros (`price`).
#[derive(Clone, Copy)]
pub enum PriceField {
    Cents,
    Euros,
}

/// A product's fields from a body; every bad one named in one 422.
pub fn parse_draft(f: &Fields, price: PriceField, v: &mut Validator) -> Option<ProductDraft> {
    let name = v.check("name", f.str("name").and_then(|s| text(&s, 1, 200, false)));
    let description = v.check(
        "description",
        f.opt_str("description").and_then(|s| text(&s.unwrap_or_default(), 0, 2000, true)),
    );
    let category = v.check("category", f.str("category").and_then(|s| text(&s, 1, 64, false)));
    let price_cents = match price {
        PriceField::Cents => {
            v.check("price_cents", f.int("price_cents").and_then(|n| in_range(n, 0, MAX_PRICE_CENTS)))
        }
        PriceField::Euros => v.check(
            "price",
            f.str("price").and_then(|s| parse_euros(s.trim())).and_then(|n| in_range(n, 0, MAX_PRICE_CENTS)),
        ),
    };
    let hidden = v.check("hidden", f.flag("hidden")).map(|h| h.unwrap_or(false));
    Some(ProductDraft {
        name: name?,
        description: description?,
        category: category?,
        price_cents: price_cents?,
        hidden: hidden?,
    })
}

/// A new product's SKU (`sku`: optional, 1 to 32 of `[A-Za-z0-9_-]`; made up when absent) and
/// first stock (`stock`: 0 to [`MAX_STOCK`]).
pub fn parse_new(f: &Fields, v: &mut Validator) -> (Option<String>, Option<i64>) {
    let sku = v.check(
        "sku",
        f.opt_str("sku").and_then(|s| match s.as_deref().map(str::trim) {
            None | Some("") => Ok(generated_sku()),
            Some(s)
                if s.len() <= 32
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Ok(s.to_string())
            }
            Some(_) => Err("must be 1 to 32 letters, digits, dashes or underscores".into()),
        }),
    );
    let stock = v.check("stock", f.int("stock").and_then(|n| in_range(n, 0, MAX_STOCK)));
    (sku, stock)
}

pub fn generated_sku() -> String {
    format!("P-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]).to_uppercase()
}

/// A stock change: `delta` (not zero, at most [`MAX_STOCK`] either way) and a `note` (up to 200
/// characters).
pub fn parse_stock_change(f: &Fields, v: &mut Validator) -> Option<(i64, String)> {
    let delta = v.check(
        "delta",
        f.int("delta").and_then(|n| {
            if n == 0 {
                Err("must not be 0".into())
            } else {
                in_range(n, -MAX_STOCK, MAX_STOCK)
            }
        }),
    );
    let note = v.check("note", f.opt_str("note").and_then(|s| text(&s.unwrap_or_default(), 0, 200, false)));
    Some((delta?, note?))
}

/// A transaction that is tried again only when it certainly did not commit (it lost a conflict
/// and was rolled back): a stock change repeated after a lost COMMIT answer would count twice.
async fn in_transaction<T, F, Fut>(state: &AppState, f: F) -> Result<T, AppError>
where
    F: Fn(sea_orm::DatabaseTransaction) -> Fut,
    Fut: std::future::Future<Output = Result<T, TxError>>,
{
    crate::infra::retry::within(
        std::time::Duration::from_secs(3),
        |e| matches!(e, TxError::Db(DbError::Conflict(_))),
        |attempt, e| tracing::warn!(attempt, error = ?e, "a product's transaction lost a conflict; trying again"),
        || async { f(db::begin(&state.db).await?).await },
    )
    .await
    .map_err(AppError::from)
}

/// Create a product; answers it as stored. The same product sent again with its SKU (a resent
/// request whose first answer was lost, a double click on the form, which names a SKU) answers
/// the product made the first time; another product under a taken SKU is a 409.
pub async fn create(
    state: &AppState,
    sku: &str,
    draft: &ProductDraft,
    stock: i64,
    by: UserId,
) -> Result<ManagedProduct, AppError> {
    let made = in_transaction(state, |tx| async move {
        let id = repo::create(&tx, sku, draft, stock, by).await?;
        db::commit(tx).await?;
        Ok(id)
    })
    .await;
    let id = match made {
        Err(e @ AppError::Conflict { .. }) => {
            return match repo::find_by_sku(&state.db, sku).await? {
                Some(p)
                    if p.name == draft.name
                        && p.description == draft.description
                        && p.category == draft.category
                        && p.price_cents == draft.price_cents
                        && p.hidden == draft.hidden =>
                {
                    Ok(p)
                }
                _ => Err(e),
            };
        }
        r => r?,
    };
    state.stock_changed([id]).await;
    tracing::info!(product.id = id.0, user.id = by.0, stock, "product created");
    found(state, id).await
}

/// Write a product's fields (not its stock).
pub async fn update(
    state: &AppState,
    id: ProductId,
    draft: &ProductDraft,
    by: UserId,
) -> Result<ManagedProduct, AppError> {
    if !repo::update(&state.db, id, draft).await? {
        return Err(AppError::NotFound(format!("no product {id}")));
    }
    state.stock_changed([id]).await;
    tracing::info!(product.id = id.0, user.id = by.0, hidden = draft.hidden, "product saved");
    found(state, id).await
}

/// Change a product's stock by `delta`, recorded with `note` and who did it; with `op_key`, at
/// most once per key (see [`repo::change_stock`]).
pub async fn change_stock(
    state: &AppState,
    id: ProductId,
    delta: i64,
    note: &str,
    by: UserId,
    op_key: Option<&str>,
) -> Result<ManagedProduct, AppError> {
    let change = in_transaction(state, |tx| async move {
        let change = repo::change_stock(&tx, id, delta, note, by, op_key).await?;
        if matches!(change, Change::Made(_)) {
            db::commit(tx).await?;
        }
        // a replay: dropping the transaction rolls its stock update back
        Ok(change)
    })
    .await?;
    match change {
        Change::Made(stock) => {
            state.stock_changed([id]).await;
            tracing::info!(product.id = id.0, user.id = by.0, delta, stock, "stock changed");
        }
        Change::Replayed => tracing::info!(product.id = id.0, "stock change sent again: made once already"),
    }
    found(state, id).await
}

async fn found(state: &AppState, id: ProductId) -> Result<ManagedProduct, AppError> {
    repo::find(&state.db, id).await?.ok_or_else(|| AppError::NotFound(format!("no product {id}")))
}
