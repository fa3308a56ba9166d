//! The areas (layer 6): one job of the shop each, with its rules, its SQL, its JSON handlers and
//! its pages, and its `configure_api` / `configure_pages`. An area may build on another
//! (`cart` prices with `catalog`, `orders` checks out the `cart`, `admin` lists `orders`,
//! `accounts` shows an account's `orders`, `seed` creates the admin through `accounts`), never in
//! a circle.

pub mod accounts;
pub mod admin;
pub mod cart;
pub mod catalog;
pub mod inventory;
pub mod ops;
pub mod orders;
pub mod picture;
pub mod seed;
