//! The in-process store of the embedded mode: one map of hashes with lifetimes behind one lock,
//! for one shop process. Each operation is one critical section, which makes it as atomic as the
//! Lua script it stands for (`lua/*.lua`); `tests/store_contract.rs` holds both to the same cases.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{cart_lines, Backend, CartAdd, LineAdd, StoreResult, OP_TTL};
use crate::domain::{CartLine, ProductId};

/// A hash (a set is a hash of empty values) and when it expires.
struct Entry {
    fields: HashMap<String, String>,
    expires: Instant,
}

type Map = HashMap<String, Entry>;

#[derive(Clone, Default)]
pub struct MemoryStore {
    map: Arc<Mutex<Map>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `f` on the live (unexpired) entries. No await inside: the lock is never held across
    /// one, and a poisoned lock (a panic elsewhere) still serves.
    fn with<T>(&self, f: impl FnOnce(&mut Map) -> T) -> T {
        let mut guard = self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if guard.len() > 10_000 {
            guard.retain(|_, e| e.expires > now);
        }
        guard.retain(|_, e| e.expires > now || e.fields.is_empty());
        f(&mut guard)
    }
}

fn new_entry(ttl: Duration) -> Entry {
    Entry { fields: HashMap::new(), expires: Instant::now() + ttl }
}

/// An add's outcome as the operation marker keeps it (the form `cart_add.lua` writes).
fn encode_outcome(o: &CartAdd) -> String {
    match o {
        CartAdd::Added(n) => format!("1:{n}"),
        CartAdd::OverLimit(n) => format!("0:{n}"),
    }
}

fn decode_outcome(s: &str) -> CartAdd {
    let (ok, n) = s.split_once(':').unwrap_or(("0", "0"));
    let n = n.parse().unwrap_or(0);
    if ok == "1" {
        CartAdd::Added(n)
    } else {
        CartAdd::OverLimit(n)
    }
}

fn lines_of(map: &Map, key: &str) -> Vec<CartLine> {
    cart_lines(map.get(key).map(|e| e.fields.clone()).unwrap_or_default())
}

impl Backend for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn hash_get(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        Ok(self.with(|map| {
            map.get(key).filter(|e| e.expires > Instant::now()).map(|e| e.fields.clone()).unwrap_or_default()
        }))
    }

    async fn hash_put(&self, key: &str, fields: &[(&str, String)], ttl: Duration) -> StoreResult<()> {
        let fields = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        self.with(|map| map.insert(key.to_string(), Entry { fields, expires: Instant::now() + ttl }));
        Ok(())
    }

    async fn hash_set_existing(&self, key: &str, field: &str, value: &str) -> StoreResult<()> {
        self.with(|map| {
            if let Some(e) = map.get_mut(key).filter(|e| !e.fields.is_empty()) {
                e.fields.insert(field.to_string(), value.to_string());
            }
        });
        Ok(())
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.with(|map| map.remove(key));
        Ok(())
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        self.with(|map| {
            let e = map.entry(key.to_string()).or_insert_with(|| new_entry(Duration::ZERO));
            e.fields.insert(member.to_string(), String::new());
            e.expires = e.expires.max(Instant::now() + ttl);
        });
        Ok(())
    }

    async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        Ok(self.with(|map| map.get(key).map(|e| e.fields.keys().cloned().collect()).unwrap_or_default()))
    }

    async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        self.with(|map| map.get_mut(key).map(|e| e.fields.remove(member)));
        Ok(())
    }

    async fn cart_add(
        &self,
        key: &str,
        add: LineAdd,
        op_key: Option<String>,
    ) -> StoreResult<(CartAdd, Vec<CartLine>)> {
        let LineAdd { product_id, delta, max, clamp, ttl } = add;
        Ok(self.with(|map| {
            if let Some(done) = op_key.as_ref().and_then(|k| map.get(k)).and_then(|e| e.fields.get("r")) {
                return (decode_outcome(done), lines_of(map, key));
            }
            let e = map.entry(key.to_string()).or_insert_with(|| new_entry(ttl));
            let field = product_id.to_string();
            let cur: i64 = e.fields.get(&field).and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut new = cur + delta;
            let outcome = if new > max && !clamp {
                CartAdd::OverLimit(cur)
            } else {
                new = new.min(max);
                if new <= 0 {
                    e.fields.remove(&field);
                } else {
                    e.fields.insert(field, new.to_string());
                }
                e.expires = Instant::now() + ttl;
                CartAdd::Added(new.max(0))
            };
            if let Some(k) = op_key {
                let fields = HashMap::from([("r".to_string(), encode_outcome(&outcome))]);
                map.insert(k, Entry { fields, expires: Instant::now() + OP_TTL });
            }
            (outcome, lines_of(map, key))
        }))
    }

    async fn cart_set(
        &self,
        key: &str,
        product_id: ProductId,
        quantity: i64,
        ttl: Duration,
    ) -> StoreResult<Vec<CartLine>> {
        Ok(self.with(|map| {
            let e = map.entry(key.to_string()).or_insert_with(|| new_entry(ttl));
            e.fields.insert(product_id.to_string(), quantity.to_string());
            e.expires = Instant::now() + ttl;
            cart_lines(e.fields.clone())
        }))
    }

    async fn cart_remove(&self, key: &str, product_id: ProductId) -> StoreResult<()> {
        self.with(|map| map.get_mut(key).map(|e| e.fields.remove(&product_id.to_string())));
        Ok(())
    }

    async fn cart_take(&self, key: &str, op_key: &str, lines: &[CartLine]) -> StoreResult<()> {
        self.with(|map| {
            if map.contains_key(op_key) {
                return;
            }
            let fields = HashMap::from([("r".to_string(), "1".to_string())]);
            map.insert(op_key.to_string(), Entry { fields, expires: Instant::now() + OP_TTL });
            if let Some(e) = map.get_mut(key) {
                for &CartLine { product_id, quantity } in lines {
                    let f = product_id.to_string();
                    let cur: i64 = e.fields.get(&f).and_then(|v| v.parse().ok()).unwrap_or(0);
                    if cur - quantity <= 0 {
                        e.fields.remove(&f);
                    } else {
                        e.fields.insert(f, (cur - quantity).to_string());
                    }
                }
            }
        });
        Ok(())
    }

    async fn count_event(&self, key: &str, window: Duration, limit: i64) -> StoreResult<(i64, Duration)> {
        Ok(self.with(|map| {
            let e = map.entry(key.to_string()).or_insert_with(|| new_entry(window));
            let had = e.fields.get("n").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            let n = if had >= limit {
                limit + 1
            } else {
                e.fields.insert("n".into(), (had + 1).to_string());
                if had == 0 {
                    // the first event starts the window, also after count_undo took the count
                    // back to 0 (count_event.lua: PEXPIRE when HINCRBY answers 1)
                    e.expires = Instant::now() + window;
                }
                had + 1
            };
            (n, e.expires.saturating_duration_since(Instant::now()))
        }))
    }

    async fn count_undo(&self, key: &str) -> StoreResult<()> {
        self.with(|map| {
            if let Some(e) = map.get_mut(key) {
                let n = e.fields.get("n").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                e.fields.insert("n".into(), (n - 1).max(0).to_string());
            }
        });
        Ok(())
    }
}
