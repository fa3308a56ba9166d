//! Accounts: register, log in, log out, who am I, the account page and password changes — with argon2id hashes, session rotation,
//! anonymous-cart merge at login and login throttling counted in the session store (so the limit
//! holds across replicas).
//!
//! The area's parts: `hasher` (argon2 on its own threads), [`repo`] (SQL), `rules` (register,
//! log in), [`api`] (JSON), `pages` (HTML); the route tables are here.

use actix_web::web;

pub mod api;
mod hasher;
mod pages;
pub mod repo;
mod rules;

pub use hasher::hash_password;
pub use repo::{create, find_by_id, Account};

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/register", web::post().to(api::api_register))
        .route("/login", web::post().to(api::api_login))
        .route("/logout", web::post().to(api::api_logout))
        .route("/me", web::get().to(api::api_me))
        .route("/me/password", web::post().to(api::api_change_password));
}

pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(pages::page_login))
        .route("/login", web::post().to(pages::form_login))
        .route("/register", web::get().to(pages::page_register))
        .route("/register", web::post().to(pages::form_register))
        .route("/logout", web::post().to(pages::form_logout))
        .route("/account", web::get().to(pages::page_account))
        .route("/account/password", web::post().to(pages::form_password));
}
