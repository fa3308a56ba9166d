#!/usr/bin/env python3
"""HTTP client for the cluster test (stdlib only). Talks to nginx on 127.0.0.1.

  shopper.py journey BASE_URL            register, login, cart, checkout (with an
                                         Idempotency-Key, replayed), orders; the
                                         session must work on every replica.
                                         Prints a JSON summary on stdout.
  shopper.py orders BASE_URL EMAIL PASSWORD
                                         prints the order ids of that account (JSON)
  shopper.py load BASE_URL --seconds S --max-requests N [--workers W] [--checkouts]
                                         bounded steady load (an anonymous GET
                                         /api/me: 401, /api/products, a logged-in
                                         GET /api/me);
                                         --checkouts adds a worker that checks out
                                         repeatedly with idempotent retries;
                                         prints JSON counts; exit 1 on any failure
  shopper.py new-replica BASE_URL --known a,b,c --timeout S
                                         polls until a replica not in --known
                                         answers; prints the seconds it took

Every loop is bounded by a request count AND a time limit. Only the given
BASE_URL (127.0.0.1) is contacted.
"""

import argparse
import http.cookiejar
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid


class Client:
    def __init__(self, base, timeout=10.0, jar=None):
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.jar = jar if jar is not None else http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def call(self, method, path, body=None, headers=None):
        """Returns (status, headers, parsed-json-or-text). Never raises for HTTP
        errors; raises for connection problems."""
        data = None
        hdrs = {"Accept": "application/json"}
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = {}  # state-changing API requests must be JSON
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, headers=hdrs, method=method)
        try:
            with self.opener.open(req, timeout=self.timeout) as r:
                status, h, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, h, raw = e.code, e.headers, e.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return status, h, payload


def fail(msg, **ctx):
    print(json.dumps({"ok": False, "error": msg, **ctx}, default=str))
    sys.exit(1)


def expect(cond, msg, **ctx):
    if not cond:
        fail(msg, **ctx)


def journey(base, replicas_expected):
    c = Client(base)
    email = f"shopper-{uuid.uuid4().hex[:12]}@example.test"
    password = "correct-horse-battery-" + uuid.uuid4().hex[:6]
    st, _, body = c.call("POST", "/api/register", {"email": email, "password": password, "name": "Cluster Tester"})
    expect(st == 201, "register", status=st, body=body)
    st, _, body = c.call("POST", "/api/login", {"email": email, "password": password})
    expect(st == 200, "login", status=st, body=body)
    expect(any(True for _ in c.jar), "login set no cookie")
    st, _, me = c.call("GET", "/api/me")
    expect(st == 200 and me.get("email") == email, "me", status=st, body=me)

    st, _, products = c.call("GET", "/api/products?per_page=5")
    expect(st == 200 and products.get("items"), "products", status=st, body=products)
    product = next((p for p in products["items"] if p.get("stock", 0) >= 2), None)
    expect(product is not None, "no product with stock >= 2", body=products)

    add_key = str(uuid.uuid4())
    for _ in range(2):  # the same add twice with one key: must count once
        st, _, cart = c.call("POST", "/api/cart/items", {"product_id": product["id"], "quantity": 2},
                             {"Idempotency-Key": add_key})
        expect(st == 200, "add to cart", status=st, body=cart)
    st, _, cart = c.call("GET", "/api/cart")
    line = next((i for i in cart.get("items", []) if i.get("product_id") == product["id"]), None)
    expect(st == 200 and line and line.get("quantity") == 2, "cart after replayed add", status=st, body=cart)

    order_key = str(uuid.uuid4())
    st, _, order = c.call("POST", "/api/orders", headers={"Idempotency-Key": order_key})
    expect(st == 201 and order.get("id"), "checkout", status=st, body=order)
    st2, _, again = c.call("POST", "/api/orders", headers={"Idempotency-Key": order_key})
    expect(st2 == 200 and again.get("id") == order["id"], "checkout replay must return the same order",
           status=st2, body=again)
    st, _, orders = c.call("GET", "/api/orders")
    items = orders.get("items", orders) if isinstance(orders, dict) else orders
    ids = [o.get("id") for o in items] if isinstance(items, list) else []
    expect(st == 200 and order["id"] in ids, "order list", status=st, body=orders)
    st, _, cart = c.call("GET", "/api/cart")
    expect(st == 200 and not cart.get("items"), "cart emptied by checkout", body=cart)

    # a cart add without a key: nginx gives it its request id as the key (so that
    # its retry on another replica cannot add twice); run.sh finds that key in Redis
    st, h, cart = c.call("POST", "/api/cart/items", {"product_id": product["id"], "quantity": 1})
    expect(st == 200, "keyless add to cart", status=st, body=cart)
    keyless_rid = h.get("X-Request-Id", "")
    st, _, _ = c.call("DELETE", f"/api/cart/items/{product['id']}")
    expect(st == 200, "remove the line again", status=st)

    # the one session, on every replica
    served = {}
    for _ in range(60):
        st, h, me = c.call("GET", "/api/me")
        who = h.get("X-Served-By", "?")
        served.setdefault(who, []).append(st)
        if len(served) >= replicas_expected and all(len(v) >= 3 for v in served.values()):
            break
    bad = {k: v for k, v in served.items() if any(s != 200 for s in v)}
    expect(not bad, "session rejected on some replica", served=served)
    expect(len(served) >= replicas_expected, "session not seen on every replica", served=served,
           replicas_expected=replicas_expected)

    print(json.dumps({
        "ok": True, "email": email, "password": password, "order_id": order["id"],
        "order_total_cents": order.get("total_cents"), "product_id": product["id"],
        "session_ok_on": sorted(served), "requests_per_replica": {k: len(v) for k, v in served.items()},
        "user_id": me.get("id"), "keyless_add_request_id": keyless_rid,
    }))


def orders(base, email, password):
    c = Client(base)
    st, _, body = c.call("POST", "/api/login", {"email": email, "password": password})
    expect(st == 200, "login", status=st, body=body)
    st, _, body = c.call("GET", "/api/orders")
    items = body.get("items", body) if isinstance(body, dict) else body
    expect(st == 200 and isinstance(items, list), "orders", status=st, body=body)
    print(json.dumps({"ok": True, "order_ids": sorted(o["id"] for o in items)}))


def load(base, seconds, max_requests, workers, checkouts=False):
    """Steady bounded load; every unexpected answer (anything but 2xx, and but 401 for the
    anonymous /api/me) or connection error is a failure."""
    login = Client(base)
    email = f"load-{uuid.uuid4().hex[:12]}@example.test"
    password = "load-test-password-" + uuid.uuid4().hex[:6]
    st, _, _ = login.call("POST", "/api/register", {"email": email, "password": password, "name": "Load"})
    expect(st == 201, "load: register", status=st)
    st, _, _ = login.call("POST", "/api/login", {"email": email, "password": password})
    expect(st == 200, "load: login", status=st)

    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    stats = {"sent": 0, "ok": 0, "failed": 0, "served_by": {}, "failures": [], "max_latency_ms": 0.0}
    # (path, anonymous): the anonymous GET /api/me is the cheapest request a replica answers
    # itself (401, never cached), in place of /healthz, which nginx keeps internal
    paths = [("/api/me", True), ("/api/products?per_page=5", False), ("/api/me", False)]

    def worker(idx):
        c = Client(base, timeout=10.0, jar=login.jar)  # one session, valid on every replica
        anon = Client(base, timeout=10.0)
        i = idx
        while time.monotonic() < deadline:
            with lock:
                if stats["sent"] >= max_requests:
                    return
                stats["sent"] += 1
            path, anonymous = paths[i % len(paths)]
            i += 1
            t0 = time.monotonic()
            try:
                st, h, _ = (anon if anonymous else c).call("GET", path, headers={"X-Request-Id": f"load-{uuid.uuid4().hex}"})
                ok = st == 401 if anonymous else 200 <= st < 300
                err = None if ok else f"HTTP {st}"
                who = h.get("X-Served-By", "?")
            except Exception as e:  # connection refused/reset, timeout
                err, who = f"{type(e).__name__}: {e}", "-"
            ms = (time.monotonic() - t0) * 1000
            with lock:
                stats["max_latency_ms"] = max(stats["max_latency_ms"], round(ms, 1))
                if err is None:
                    stats["ok"] += 1
                    stats["served_by"][who] = stats["served_by"].get(who, 0) + 1
                else:
                    stats["failed"] += 1
                    if len(stats["failures"]) < 20:
                        stats["failures"].append({"path": path, "error": err, "t": round(time.time(), 3)})
            time.sleep(0.01)

    checkout = {"keys_ok": 0, "keys_failed": 0, "attempts_failed": 0, "errors": []}

    def checkout_worker():
        """Checks out one item again and again; each order under its own
        Idempotency-Key, retried with the SAME key (as a client should) up to
        8 times. At the end the account must hold exactly one order per key
        that succeeded: no order lost, none doubled by a retry."""
        c = Client(base, timeout=10.0, jar=login.jar)
        st, _, prods = c.call("GET", "/api/products?per_page=50")
        if st != 200:
            checkout["errors"].append(f"products: HTTP {st}")
            return
        pid = max(prods["items"], key=lambda p: p.get("stock", 0))["id"]
        n = 0
        while time.monotonic() < deadline and n < max(1, max_requests // 20):
            n += 1
            key = str(uuid.uuid4())
            done = False
            for attempt in range(8):
                try:
                    st, _, _ = c.call("PUT", f"/api/cart/items/{pid}", {"quantity": 1})
                    if st == 200:
                        st, _, _ = c.call("POST", "/api/orders", headers={"Idempotency-Key": key})
                    if st in (200, 201):
                        done = True
                        break
                    err = f"HTTP {st}"
                except Exception as e:
                    err = f"{type(e).__name__}: {e}"
                with lock:
                    checkout["attempts_failed"] += 1
                    if len(checkout["errors"]) < 10:
                        checkout["errors"].append({"error": err, "t": round(time.time(), 3)})
                time.sleep(0.5)
            with lock:
                checkout["keys_ok" if done else "keys_failed"] += 1
            time.sleep(0.2)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(workers)]
    if checkouts:
        threads.append(threading.Thread(target=checkout_worker, daemon=True))
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    stats["seconds"] = round(time.monotonic() - t0, 1)
    stats["ok_flag"] = stats["failed"] == 0 and stats["ok"] > 0
    if checkouts:
        st, _, body = login.call("GET", "/api/orders")
        items = body.get("items", body) if isinstance(body, dict) else body
        checkout["orders_in_account"] = len(items) if st == 200 and isinstance(items, list) else None
        checkout["consistent"] = checkout["orders_in_account"] == checkout["keys_ok"] and checkout["keys_failed"] == 0
        stats["checkout"] = checkout
        stats["ok_flag"] = stats["ok_flag"] and checkout["consistent"]
    print(json.dumps(stats))
    sys.exit(0 if stats["ok_flag"] else 1)


def new_replica(base, known, timeout):
    c = Client(base, timeout=5.0)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < timeout and n < 100000:
        n += 1
        try:
            _, h, _ = c.call("GET", "/api/me")  # no session: 401, answered by a replica itself
            who = h.get("X-Served-By")
            if who and who not in known:
                print(json.dumps({"ok": True, "seconds": round(time.monotonic() - t0, 2), "replica": who}))
                return
        except Exception:
            pass
        time.sleep(0.05)
    fail("no new replica answered", seconds=timeout)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    j = sub.add_parser("journey")
    j.add_argument("base")
    j.add_argument("--replicas", type=int, default=3)
    o = sub.add_parser("orders")
    o.add_argument("base")
    o.add_argument("email")
    o.add_argument("password")
    lo = sub.add_parser("load")
    lo.add_argument("base")
    lo.add_argument("--seconds", type=float, required=True)
    lo.add_argument("--max-requests", type=int, required=True)
    lo.add_argument("--workers", type=int, default=4)
    lo.add_argument("--checkouts", action="store_true",
                    help="one more worker checks out repeatedly (idempotent retries) and the order count is verified")
    nr = sub.add_parser("new-replica")
    nr.add_argument("base")
    nr.add_argument("--known", default="")
    nr.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    for url in [a.base]:
        if not (url.startswith("http://127.0.0.1:") or url.startswith("http://localhost:")):
            fail("refusing a base URL that is not on 127.0.0.1", base=url)
    if a.cmd == "journey":
        journey(a.base, a.replicas)
    elif a.cmd == "orders":
        orders(a.base, a.email, a.password)
    elif a.cmd == "load":
        load(a.base, min(a.seconds, 600), min(a.max_requests, 200000), max(1, min(a.workers, 32)), a.checkouts)
    else:
        new_replica(a.base, set(filter(None, a.known.split(","))), min(a.timeout, 600))


if __name__ == "__main__":
    main()
