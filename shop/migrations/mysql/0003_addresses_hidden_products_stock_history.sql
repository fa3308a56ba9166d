-- 3: shipping addresses, hidden products, the stock's history (MariaDB)
-- the address columns are nullable: orders placed before, and API checkouts without an
-- address, have none; `stock_changes` is append-only (who changed a stock, when, by how much);
-- a change sent again with its operation key runs into uq_stock_changes_op (NULLs never collide)

ALTER TABLE orders ADD COLUMN IF NOT EXISTS ship_name VARCHAR(100) NULL,
    ADD COLUMN IF NOT EXISTS ship_street VARCHAR(200) NULL,
    ADD COLUMN IF NOT EXISTS ship_postcode VARCHAR(16) NULL,
    ADD COLUMN IF NOT EXISTS ship_city VARCHAR(100) NULL,
    ADD COLUMN IF NOT EXISTS ship_country VARCHAR(56) NULL;

ALTER TABLE products ADD COLUMN IF NOT EXISTS hidden BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE IF NOT EXISTS stock_changes (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    product_id BIGINT NOT NULL,
    delta BIGINT NOT NULL,
    stock_after BIGINT NOT NULL,
    reason VARCHAR(16) NOT NULL,
    note VARCHAR(200) NOT NULL DEFAULT '',
    user_id BIGINT NULL,
    created_at BIGINT NOT NULL,
    op_key VARCHAR(64) NULL,
    KEY ix_stock_changes_product (product_id, id),
    UNIQUE KEY uq_stock_changes_op (product_id, op_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
