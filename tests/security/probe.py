#!/usr/bin/env python3
"""Black-box security checks of a running shop (stdlib only): the defects of
issue 11, asked from outside, against the embedded shop or through nginx.

  probe.py BASE_URL [--cacert FILE] [--ops-hidden] [--register-limit N]
                    [--body-timeout S] [--only NAME,...]

  --ops-hidden        /metrics, /heartbeat, /readyz must answer 403/404 (nginx);
                      without it they are the shop's own and the heartbeat cap
                      and the metric labels are checked instead
  --register-limit N  the shop runs with SHOP_REGISTER_LIMIT=N: the (N+1)th
                      sign-up from this client must be refused (0: not checked;
                      run it alone, --only d6_signups, on a shop no other check
                      has registered with: the other checks sign up too)
  --body-timeout S    a body that stops arriving is refused within S seconds

Prints one line per check, "ok <name>: ..." or "FAIL <name>: ...", then a
summary line "security probe: P passed, F failed"; exit 1 on any failure.
Every loop is bounded; only BASE_URL (127.0.0.1) is contacted.
"""

import argparse
import concurrent.futures as cf
import http.client
import json
import socket
import ssl
import sys
import time
import urllib.parse
import uuid

PASSWORD = "correct horse battery"
RESULTS = []


class Http:
    """One client: a cookie jar (name -> value) and raw requests (any method,
    any header, no redirects followed)."""

    def __init__(self, base, ctx, headers=None):
        u = urllib.parse.urlsplit(base)
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80)
        self.base = base.rstrip("/")
        self.ctx = ctx
        self.cookies = {}
        self.extra = headers or {}

    def conn(self, timeout=20):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=20):
        h = dict(self.extra)
        h.update(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            for name, value in r.getheaders():
                if name.lower() == "set-cookie":
                    k, _, v = value.split(";", 1)[0].partition("=")
                    self.cookies[k.strip()] = v.strip()
            r.body = data
            r.set_cookies = [v for n, v in r.getheaders() if n.lower() == "set-cookie"]
            return r
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None):
        return self.request(method, path, body=body if body is not None else {}, headers=headers)

    def login(self, email, password, headers=None):
        return self.json("POST", "/api/login", {"email": email, "password": password}, headers)

    def register(self, email, password=PASSWORD, name="Probe"):
        return self.json("POST", "/api/register", {"email": email, "password": password, "name": name})

    def form_login(self, email, password, nxt):
        page = self.request("GET", "/login").body.decode("utf-8", "replace")
        marker = 'name="csrf_token" value="'
        token = page.split(marker, 1)[1].split('"', 1)[0] if marker in page else ""
        body = urllib.parse.urlencode({"email": email, "password": password, "next": nxt, "csrf_token": token})
        return self.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.base,
        })


def email():
    return f"probe-{uuid.uuid4().hex[:12]}@example.org"


def check(name, ok, detail):
    RESULTS.append(bool(ok))
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)


def fresh_account(args):
    e = email()
    r = Http(args.base, args.ctx).register(e)
    if r.status != 201:
        raise RuntimeError(f"could not register a probe account: {r.status} {r.body[:200]!r}")
    return e


# ------------------------------------------------------------------- checks

def d1_parallel_logins(args):
    e = fresh_account(args)

    def one(_):
        return Http(args.base, args.ctx).login(e, "not the password").status

    with cf.ThreadPoolExecutor(30) as pool:
        statuses = list(pool.map(one, range(30)))
    checked = statuses.count(401)
    check("d1 parallel wrong logins are counted before the hash", checked <= 5 and set(statuses) <= {401, 429},
          f"{checked} of 30 parallel wrong logins were checked (limit 5); statuses {sorted(set(statuses))}")


def d2_forwarding_headers(args):
    e = fresh_account(args)
    c = Http(args.base, args.ctx)
    statuses = []
    for i in range(8):
        fake = f"10.9.{i}.1"
        statuses.append(c.login(e, "not the password", {
            "X-Forwarded-For": fake, "Forwarded": f"for={fake}", "X-Real-IP": fake}).status)
    check("d2 client-sent X-Forwarded-For/Forwarded/X-Real-IP make no new client",
          statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3, f"statuses {statuses}")


def d3_no_lockout(args):
    e = fresh_account(args)
    owner = Http(args.base, args.ctx)
    r = owner.login(e, PASSWORD)
    has_device = "distshop_device" in owner.cookies
    owner.json("POST", "/api/logout")
    attacker = Http(args.base, args.ctx)
    tries = [attacker.login(e, "not the password").status for _ in range(7)]
    right = attacker.login(e, PASSWORD)
    again = owner.login(e, PASSWORD)
    check("d3 an attacker's failures do not lock the owner out",
          r.status == 200 and has_device and tries[-1] == 429 and right.status == 429
          and right.getheader("Retry-After") and again.status == 200,
          f"owner login {r.status} (device cookie: {has_device}); attacker {tries}, then the right password "
          f"{right.status} (Retry-After {right.getheader('Retry-After')}); the owner's browser again: {again.status}")


def d4_d5_next(args):
    cases = [("/\t/evil.example", "/"), ("/\n/evil.example", "/"), ("/\\evil.example", "/"),
             ("//evil.example", "/"), ("https://evil.example/", "/"), ("/cart\r\nSet-Cookie: x=1", "/"),
             ("/cart\0", "/"), ("/orders?x=1", "/orders?x=1"), ("/products/käse", "/products/k%C3%A4se")]
    bad = []
    for nxt, want in cases:
        e = fresh_account(args)
        c = Http(args.base, args.ctx)
        r = c.form_login(e, PASSWORD, nxt)
        loc = r.getheader("Location")
        if r.status != 303 or loc != want:
            bad.append(f"{nxt!r} -> {r.status} {loc!r}")
    check("d4/d5 next after login stays on this site, never a 500", not bad,
          f"{len(cases)} values of next" + (f"; wrong: {bad}" if bad else ""))


def d6_flood(args):
    e = fresh_account(args)
    owner = Http(args.base, args.ctx)
    owner.login(e, PASSWORD)

    def flood(i):
        t = time.monotonic()
        try:
            s = Http(args.base, args.ctx).login(f"nobody-{uuid.uuid4().hex[:8]}@example.org", "guess guess").status
        except OSError as ex:
            s = f"{type(ex).__name__}"
        return s, time.monotonic() - t

    with cf.ThreadPoolExecutor(60) as pool:
        futs = [pool.submit(flood, i) for i in range(150)]
        time.sleep(0.3)
        t = time.monotonic()
        real = owner.login(e, PASSWORD).status
        real_took = time.monotonic() - t
        results = [f.result() for f in futs]
    statuses = [s for s, _ in results]
    slowest = max(t for _, t in results)
    ok = real == 200 and real_took < 3 and all(s in (401, 429, 503) for s in statuses) and slowest < 10
    check("d6 a hashing flood is answered fast; a real shopper still logs in", ok,
          f"150 parallel logins to unknown accounts: {statuses.count(401)} checked, {statuses.count(429)} 429, "
          f"{statuses.count(503)} 503, other {[s for s in statuses if s not in (401, 429, 503)][:5]}, "
          f"slowest {slowest:.2f} s; the real shopper (known device): {real} in {real_took:.2f} s")


def d6_signups(args):
    if args.register_limit:
        c = Http(args.base, args.ctx)
        statuses = [c.register(email()).status for _ in range(args.register_limit + 1)]
        check("d6 sign-ups per client address are limited",
              statuses[:-1] == [201] * args.register_limit and statuses[-1] == 429, f"statuses {statuses}")


def d7_headers(args):
    c = Http(args.base, args.ctx)
    bad = []
    for path in ["/", "/login", "/api/products", "/nothing/here", "/api/nothing"]:
        r = c.request("GET", path)
        csp = r.getheader("Content-Security-Policy") or ""
        if ("frame-ancestors 'none'" not in csp or r.getheader("X-Content-Type-Options") != "nosniff"
                or not r.getheader("Referrer-Policy")):
            bad.append(f"{path}: csp={csp!r} nosniff={r.getheader('X-Content-Type-Options')!r} "
                       f"referrer={r.getheader('Referrer-Policy')!r}")
    check("d7 security headers on every answer", not bad, "5 pages and API answers" + (f"; {bad}" if bad else ""))


def d8_secure_cookie(args):
    if not args.base.startswith("https://"):
        return
    e = fresh_account(args)
    c = Http(args.base, args.ctx)
    r = c.login(e, PASSWORD)
    secure = all("; secure" in v.lower() for v in r.set_cookies)
    hsts = r.getheader("Strict-Transport-Security")
    check("d8 over HTTPS the cookies are Secure and HSTS is sent", r.status == 200 and secure and r.set_cookies and hsts,
          f"login {r.status}; Set-Cookie {[v.split(';')[0].split('=')[0] + ': ' + ('Secure' if 'secure' in v.lower() else 'NOT secure') for v in r.set_cookies]}; HSTS {hsts!r}")


def d9_ops(args):
    c = Http(args.base, args.ctx)
    if args.ops_hidden:
        got, bare = {}, []
        for p in ["/metrics", "/heartbeat", "/readyz", "/healthz"]:
            r = c.request("GET", p, timeout=5)
            got[p] = r.status
            if r.getheader("X-Content-Type-Options") != "nosniff" or not r.getheader("Content-Security-Policy"):
                bare.append(p)
        check("d9 operational endpoints are not reachable from outside", all(s in (403, 404) for s in got.values()),
              f"{got}")
        check("d7 nginx's own answers carry the security headers too", not bare,
              "the 404s of the operational endpoints" + (f"; without: {bare}" if bare else ""))
        return
    # the shop's own: heartbeat streams are capped
    socks = []
    try:
        statuses = []
        for _ in range(9):
            conn = c.conn(5)
            conn.request("GET", "/heartbeat?interval_ms=1000")
            r = conn.getresponse()
            statuses.append(r.status)
            socks.append(conn)
        check("d9 heartbeat streams are capped", statuses[:8] == [200] * 8 and statuses[8] == 503,
              f"9 streams opened: {statuses}")
    finally:
        for s in socks:
            s.close()


def d10_slow_body(args):
    u = urllib.parse.urlsplit(args.base)
    port = u.port or (443 if u.scheme == "https" else 80)
    raw = socket.create_connection((u.hostname, port), timeout=args.body_timeout + 10)
    s = args.ctx.wrap_socket(raw, server_hostname=u.hostname) if u.scheme == "https" else raw
    t = time.monotonic()
    try:
        s.sendall((f"POST /api/login HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json\r\n"
                   "Content-Length: 100\r\n\r\n{\"email\":").encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                break
        took = time.monotonic() - t
        first = data.split(b"\r\n", 1)[0].decode(errors="replace")
        # nginx ends such a request with a 408 (it may also just close); the shop answers 408
        ok = took <= args.body_timeout + 3 and (first == "" or " 408" in first)
        check("d10 a body that never finishes is cut off", ok,
              f"{first or 'connection closed'} after {took:.1f} s (bound {args.body_timeout} s)")
    except OSError as ex:
        check("d10 a body that never finishes is cut off", False, f"{type(ex).__name__} after {time.monotonic() - t:.1f} s")
    finally:
        s.close()


def d11_methods(args):
    c = Http(args.base, args.ctx)
    # letters only: nginx refuses a method with digits itself (400)
    statuses = {c.request(f"PROBE{chr(65 + i)}", "/api/cart/items").status for i in range(20)}
    known = c.request("DELETE", "/api/products").status
    detail = f"20 invented methods: {sorted(statuses)}; DELETE /api/products: {known}"
    ok = statuses == {405} and known == 405
    if not args.ops_hidden:
        metrics = c.request("GET", "/metrics").body.decode()
        ok = ok and "PROBE" not in metrics
        detail += f"; invented methods in /metrics: {'PROBE' in metrics}"
    check("d11 unknown methods are 405 and make no metric series", ok, detail)


def origin(args):
    e = fresh_account(args)
    c = Http(args.base, args.ctx)
    c.login(e, PASSWORD)
    u = urllib.parse.urlsplit(args.base)
    other_scheme = ("http" if u.scheme == "https" else "https") + "://" + u.netloc
    port = u.port or (443 if u.scheme == "https" else 80)
    bad = [other_scheme, args.base + "/evil", f"{u.scheme}://{u.hostname}:{port + 1}", "null",
           f"{u.scheme}://evil.example"]
    items = json.loads(c.request("GET", "/api/products").body)["items"]
    pid = next(i["id"] for i in items if i.get("stock", 1) > 0)
    got = {o: c.json("POST", "/api/cart/items", {"product_id": pid, "quantity": 1}, {"Origin": o}).status for o in bad}
    own = c.json("POST", "/api/cart/items", {"product_id": pid, "quantity": 1}, {"Origin": args.base}).status
    check("origin is compared exactly (scheme, host, port)", all(s == 403 for s in got.values()) and own == 200,
          f"foreign {got}; own {own}")


CHECKS = [d1_parallel_logins, d2_forwarding_headers, d3_no_lockout, d4_d5_next, d6_flood, d6_signups, d7_headers,
          d8_secure_cookie, d9_ops, d10_slow_body, d11_methods, origin]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("--cacert")
    p.add_argument("--ops-hidden", action="store_true")
    p.add_argument("--register-limit", type=int, default=0)
    p.add_argument("--body-timeout", type=float, default=10.0)
    p.add_argument("--only", default="")
    args = p.parse_args()
    args.base = args.base.rstrip("/")
    args.ctx = ssl.create_default_context(cafile=args.cacert) if args.cacert else ssl.create_default_context()
    only = [o for o in args.only.split(",") if o]
    for fn in CHECKS:
        if only and not any(fn.__name__.startswith(o) for o in only):
            continue
        try:
            fn(args)
        except Exception as ex:  # a check that cannot even run is a failure, with its reason
            check(fn.__name__, False, f"{type(ex).__name__}: {ex}")
    failed = RESULTS.count(False)
    print(f"security probe: {RESULTS.count(True)} passed, {failed} failed ({args.base})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
