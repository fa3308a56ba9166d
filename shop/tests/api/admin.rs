use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn admin_confirms_and_ships() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(10).await;
    s.add(p, 1).await;
    let order: Value = s.checkout(&key()).await.json().await.unwrap();
    let id = order["id"].as_i64().unwrap();
    let admin = app.admin().await;
    let (st, placed) = admin.get_json("/api/admin/orders?status=placed").await;
    assert_eq!(st, 200);
    assert!(placed["items"].as_array().unwrap().iter().any(|o| o["id"] == id));
    let (st, e) = error_of(admin.post_json(&format!("/api/admin/orders/{id}/ship"), &json!({})).await).await;
    assert_eq!(st, 409, "ship before confirm: {e}");
    let r = admin.post_json(&format!("/api/admin/orders/{id}/confirm"), &json!({})).await;
    assert_eq!(r.status(), 200);
    let (st, e) = error_of(s.post_json(&format!("/api/orders/{id}/cancel"), &json!({})).await).await;
    assert_eq!(st, 409, "a confirmed order cannot be cancelled: {e}");
    let r = admin.post_json(&format!("/api/admin/orders/{id}/ship"), &json!({})).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "shipped");
    let (_, shipped) = admin.get_json("/api/admin/orders?status=shipped").await;
    assert_eq!(shipped["items"][0]["id"], id);
    let (_, placed) = admin.get_json("/api/admin/orders?status=placed").await;
    assert_eq!(placed["items"].as_array().unwrap().len(), 0);
    let (st, e) = error_of(admin.get("/api/admin/orders?status=lost").await).await;
    assert!(st == 422 && e["error"]["fields"]["status"].is_string());
    let (st, _) = error_of(admin.post_json("/api/admin/orders/999999/confirm", &json!({})).await).await;
    assert_eq!(st, 404);
    let (_, s_view) = s.get_json(&format!("/api/orders/{id}")).await;
    assert_eq!(s_view["status"], "shipped", "the customer sees the status");
}

#[tokio::test]
async fn admin_routes_are_for_admins_only() {
    let app = spawn_app().await;
    let anon = app.shopper();
    let customer = app.customer().await;
    for (who, expected) in [(&anon, 401), (&customer, 403)] {
        let (st, _) = error_of(who.get("/api/admin/orders").await).await;
        assert_eq!(st, expected);
        let (st, _) = error_of(who.post_json("/api/admin/orders/1/confirm", &json!({})).await).await;
        assert_eq!(st, expected);
        let (st, _) = error_of(who.post_json("/api/admin/orders/1/ship", &json!({})).await).await;
        assert_eq!(st, expected);
    }
    assert_eq!(customer.get("/admin/orders").await.status(), 403);
    assert_eq!(anon.get("/admin/orders").await.status(), 303, "pages send anonymous visitors to log in");
}
