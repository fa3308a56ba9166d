//! `shop seed`: the catalog (from `data/catalog.csv`, compiled in) and the admin account.
//!
//! Idempotent: products are matched by SKU and only missing ones are inserted (existing rows,
//! whose stock orders have changed, are left alone); the admin is created only if absent.

use sea_orm::DatabaseConnection;

use crate::{
    areas::accounts,
    edge::input::Email,
    edge::session::Role,
    error::AppError,
    infra::db::{self, DbError},
    settings::Settings,
};

const CATALOG_CSV: &str = include_str!("../../data/catalog.csv");

#[derive(Debug, serde::Deserialize)]
pub struct SeedProduct {
    pub sku: String,
    pub category: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// The compiled-in catalog.
pub fn catalog() -> anyhow::Result<Vec<SeedProduct>> {
    let mut r = csv::Reader::from_reader(CATALOG_CSV.as_bytes());
    Ok(r.deserialize().collect::<Result<Vec<SeedProduct>, _>>()?)
}

#[derive(Debug, Default)]
pub struct SeedReport {
    pub products_inserted: usize,
    pub products_existing: usize,
    /// Set when an admin account was created now; the password if it was generated.
    pub admin_created: Option<Option<String>>,
}

/// Insert the catalog products that are not there yet, in one transaction.
pub async fn seed_products(
    db: &DatabaseConnection,
    products: &[SeedProduct],
) -> Result<(usize, usize), DbError> {
    let existing: std::collections::HashSet<String> = db::all(db, "SELECT sku FROM products", vec![])
        .await?
        .iter()
        .map(|r| db::get::<String>(r, "sku"))
        .collect::<Result<_, _>>()?;
    let missing: Vec<&SeedProduct> = products.iter().filter(|p| !existing.contains(&p.sku)).collect();
    if !missing.is_empty() {
        let tx = db::begin(db).await?;
        let now = db::now_ms();
        for chunk in missing.chunks(50) {
            let marks = vec!["(?, ?, ?, ?, 'EUR', ?, ?, ?)"; chunk.len()].join(", ");
            let mut vals = vec![];
            for p in chunk {
                vals.extend([
                    p.sku.clone().into(),
                    p.name.clone().into(),
                    p.description.clone().into(),
                    p.price_cents.into(),
                    p.stock.into(),
                    p.category.clone().into(),
                    now.into(),
                ]);
            }
            db::exec(
                &tx,
                &format!(
                    "INSERT INTO products (sku, name, description, price_cents, currency, stock, category, created_at) VALUES {marks}"
                ),
                vals,
            )
            .await?;
        }
        db::commit(tx).await?;
    }
    Ok((missing.len(), products.len() - missing.len()))
}

fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..16).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect()
}

/// Create the admin account if it does not exist.
pub async fn ensure_admin(
    db: &DatabaseConnection,
    settings: &Settings,
) -> Result<Option<Option<String>>, AppError> {
    let exists =
        db::one(db, "SELECT id FROM users WHERE email = ?", vec![settings.admin_email.clone().into()])
            .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let (password, generated) = match &settings.admin_password {
        Some(p) => (p.clone(), false),
        None => (random_password(), true),
    };
    let hash = accounts::hash_password(password.clone()).await?;
    let email =
        Email::parse(&settings.admin_email).map_err(|m| AppError::BadRequest(format!("admin email {m}")))?;
    match accounts::create(db, &email, "Administrator", &hash, Role::Admin, None).await {
        Ok(_) => Ok(Some(generated.then_some(password))),
        // Created concurrently by another seeder: fine.
        Err(AppError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Seed everything.
pub async fn run(db: &DatabaseConnection, settings: &Settings) -> anyhow::Result<SeedReport> {
    let products = catalog()?;
    let (inserted, existing) = seed_products(db, &products).await?;
    let admin_created =
        ensure_admin(db, settings).await.map_err(|e| anyhow::anyhow!("creating the admin: {e}"))?;
    Ok(SeedReport { products_inserted: inserted, products_existing: existing, admin_created })
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalog_is_big_and_clean() -> anyhow::Result<()> {
        let c = super::catalog()?;
        assert!(c.len() >= 200, "{}", c.len());
        let skus: std::collections::HashSet<_> = c.iter().map(|p| &p.sku).collect();
        assert_eq!(skus.len(), c.len(), "duplicate SKUs");
        let cats: std::collections::HashSet<_> = c.iter().map(|p| &p.category).collect();
        assert!(cats.len() >= 5);
        assert!(c.iter().all(|p| p.price_cents > 0 && p.stock >= 0 && !p.name.is_empty()));
        Ok(())
    }
}
