//! Inventory: the admin manages the products — creates and edits them, hides them from sale,
//! changes their stock — and every stock change is kept with who made it and when.
//!
//! A stock change is relative (`stock = stock + delta`), as a checkout's is, so a restock never
//! loses a sale that happens at the same moment, nor a sale a restock (see [`repo`]). A product
//! is never deleted (orders name it); hiding takes it off sale.
//!
//! The area's parts: [`repo`] (SQL), `rules` (what may be written, the transactions), [`api`]
//! (JSON), `pages` (HTML); the route tables are here.

use actix_web::web;

pub mod api;
mod pages;
pub mod repo;
mod rules;

pub use repo::{ManagedProduct, StockChange};

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/products", web::get().to(api::api_list))
        .route("/admin/products", web::post().to(api::api_create))
        .route("/admin/products/{id}", web::get().to(api::api_get))
        .route("/admin/products/{id}", web::put().to(api::api_update))
        .route("/admin/products/{id}/stock", web::post().to(api::api_change_stock));
}

pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    // `new` before `{id}`: the literal path wins only if it is registered first
    cfg.route("/admin/products", web::get().to(pages::page_list))
        .route("/admin/products", web::post().to(pages::form_create))
        .route("/admin/products/new", web::get().to(pages::page_new))
        .route("/admin/products/{id}", web::get().to(pages::page_product))
        .route("/admin/products/{id}", web::post().to(pages::form_update))
        .route("/admin/products/{id}/stock", web::post().to(pages::form_stock));
}
