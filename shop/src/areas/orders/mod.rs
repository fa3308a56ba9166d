//! Orders: idempotent checkout in one transaction, the customer's orders, cancellation, and the
//! status transitions the admin drives.
//!
//! Checkout inserts the order row FIRST: the unique key (user, idempotency key) is what makes a
//! repeated checkout — a double click, a client retry, nginx retrying on another replica — return
//! the first order instead of creating a second, and it holds across replicas because the database
//! enforces it. Stock is then taken with a conditional `UPDATE … WHERE stock >= qty`, so it can
//! never go below zero, and the whole transaction is retried on a conflict or a lost connection.
//! The cart is only touched after commit.
//!
//! The area's parts: [`repo`] reads orders (SQL), [`rules`] changes them (checkout, cancel, the
//! admin's transitions), [`api`] answers JSON, `pages` renders HTML; the route tables are here.

use actix_web::web;

pub mod api;
mod pages;
pub mod repo;
pub mod rules;

pub use crate::domain::{OrderStatus, STATUSES};
pub use repo::{
    find, find_for_user, list_all, list_for_user, Order, OrderItem, OrderList, API_PER_PAGE, MAX_PER_PAGE,
    PAGE_PER_PAGE,
};
pub use rules::{cancel, checkout, transition, Checkout, Placing};

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders", web::post().to(api::api_checkout))
        .route("/orders", web::get().to(api::api_list))
        .route("/orders/{id}", web::get().to(api::api_get))
        .route("/orders/{id}/cancel", web::post().to(api::api_cancel));
}

pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/checkout", web::get().to(pages::page_checkout))
        .route("/checkout", web::post().to(pages::form_checkout))
        .route("/orders", web::get().to(pages::page_orders))
        .route("/orders/{id}", web::get().to(pages::page_order))
        .route("/orders/{id}/cancel", web::post().to(pages::form_cancel));
}
