-- 3: shipping addresses, hidden products, the stock's history (SQLite)
-- the address columns are nullable: orders placed before, and API checkouts without an
-- address, have none; `stock_changes` is append-only (who changed a stock, when, by how much)

ALTER TABLE orders ADD COLUMN ship_name TEXT;

ALTER TABLE orders ADD COLUMN ship_street TEXT;

ALTER TABLE orders ADD COLUMN ship_postcode TEXT;

ALTER TABLE orders ADD COLUMN ship_city TEXT;

ALTER TABLE orders ADD COLUMN ship_country TEXT;

ALTER TABLE products ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS stock_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id INTEGER NOT NULL,
    delta INTEGER NOT NULL,
    stock_after INTEGER NOT NULL,
    reason TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    user_id INTEGER,
    created_at INTEGER NOT NULL,
    op_key TEXT
);

CREATE INDEX IF NOT EXISTS ix_stock_changes_product ON stock_changes (product_id, id);

CREATE UNIQUE INDEX IF NOT EXISTS uq_stock_changes_op ON stock_changes (product_id, op_key);
