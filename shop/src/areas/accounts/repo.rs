//! Accounts as the database has them.

use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    domain::UserId,
    edge::input::Email,
    edge::session::Role,
    error::AppError,
    infra::db::{self, DbError},
};

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Account {
    #[schema(value_type = i64, minimum = 1)]
    pub id: UserId,
    /// Lower-cased, as registered. No `format` is claimed: the shop accepts internationalised
    /// addresses (`jürgen@bücher.de`), which are not a JSON Schema `email`, and a few that are
    /// not strictly an `idn-email` either (`input::Email` checks plausibility, not RFC 5321).
    #[schema(max_length = 254, example = "ada@example.org")]
    pub email: String,
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    pub role: Role,
}

/// Insert an account; a taken email is a 409. `created_by`: the request id that creates it (see
/// [`Registered::created_by`]).
pub async fn create(
    c: &(impl ConnectionTrait + 'static),
    email: &Email,
    name: &str,
    password_hash: &str,
    role: Role,
    created_by: Option<&str>,
) -> Result<i64, AppError> {
    let r = db::exec(
        c,
        "INSERT INTO users (email, name, password_hash, role, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            email.as_str().into(),
            name.into(),
            password_hash.into(),
            role.as_str().into(),
            db::now_ms().into(),
            created_by.map(str::to_string).into(),
        ],
    )
    .await;
    match r {
        Ok((_, id)) => Ok(id as i64),
        Err(DbError::Unique(_)) => Err(email_taken()),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn email_taken() -> AppError {
    AppError::Conflict { code: "email_taken", message: "an account with this email already exists".into() }
}

/// An account and its password hash (a login's look-up).
pub(super) async fn find_by_email(
    c: &(impl ConnectionTrait + 'static),
    email: &str,
) -> Result<Option<(Account, String)>, DbError> {
    Ok(find_registered(c, email).await?.map(|r| (r.account, r.password_hash)))
}

/// The columns every look-up of an account selects, as an [`Account`].
fn account_of(r: &sea_orm::QueryResult) -> Result<Account, DbError> {
    Ok(Account {
        id: db::get(r, "id")?,
        email: db::get(r, "email")?,
        name: db::get(r, "name")?,
        role: Role::parse(&db::get::<String>(r, "role")?),
    })
}

/// An account as a registration finds it when its email is taken.
pub(super) struct Registered {
    pub(super) account: Account,
    pub(super) password_hash: String,
    /// The `X-Request-Id` of the request that created the account. nginx sends a registration
    /// whose replica died to the next replica with the same id: when the first had committed,
    /// the account the second finds is its own.
    pub(super) created_by: Option<String>,
}

pub(super) async fn find_registered(
    c: &(impl ConnectionTrait + 'static),
    email: &str,
) -> Result<Option<Registered>, DbError> {
    let row = db::one(
        c,
        "SELECT id, email, name, role, password_hash, created_by FROM users WHERE email = ?",
        vec![email.into()],
    )
    .await?;
    row.map(|r| {
        Ok(Registered {
            account: account_of(&r)?,
            password_hash: db::get(&r, "password_hash")?,
            created_by: db::get(&r, "created_by")?,
        })
    })
    .transpose()
}

pub async fn find_by_id(
    c: &(impl ConnectionTrait + 'static),
    id: UserId,
) -> Result<Option<Account>, DbError> {
    let row = db::one(c, "SELECT id, email, name, role FROM users WHERE id = ?", vec![id.into()]).await?;
    row.as_ref().map(account_of).transpose()
}

/// Replace an account's password hash.
pub(super) async fn set_password_hash(
    c: &(impl ConnectionTrait + 'static),
    id: UserId,
    password_hash: &str,
) -> Result<(), DbError> {
    db::exec(c, "UPDATE users SET password_hash = ? WHERE id = ?", vec![password_hash.into(), id.into()])
        .await?;
    Ok(())
}

/// An account's password hash as it is now (`None`: no such account).
pub(super) async fn password_hash_of(
    c: &(impl ConnectionTrait + 'static),
    id: UserId,
) -> Result<Option<String>, DbError> {
    db::one(c, "SELECT password_hash FROM users WHERE id = ?", vec![id.into()])
        .await?
        .map(|r| db::get(&r, "password_hash"))
        .transpose()
}
