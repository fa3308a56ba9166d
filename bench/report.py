"""report.py RESULTS.jsonl [--docs FILE --svg FILE] [--short 0|1] [--rounds N --seconds S]

Turns one bench run into the table (stdout), the verdict line, and — with
--docs — the figures section of docs/benchmarks.md (between the markers
`<!-- bench:begin -->` and `<!-- bench:end -->`; the prose around them is
kept) plus an SVG chart of the ratios."""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("results")
ap.add_argument("--docs")
ap.add_argument("--svg")
ap.add_argument("--short", default="0")
ap.add_argument("--rounds", default="?")
ap.add_argument("--seconds", default="?")
a = ap.parse_args()

R = {}
for line in open(a.results):
    line = line.strip()
    if line:
        d = json.loads(line)
        R[d["key"]] = d["value"]

# every interleaved pair's ratio is the median of its rounds' own ratios (median.py computes
# it and says why); results recorded before it did (no `ratio_of_medians`) get it here
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from median import paired_ratio, round_ratios  # noqa: E402

for v in R.values():
    if isinstance(v, dict) and "all_rps" in v and "ratio_of_medians" not in v:
        paired = paired_ratio(v["all_rps"], v.get("all_static_rps", []))
        v["ratio_of_medians"] = v.get("ratio")
        if paired is not None:
            v["ratio"] = round(paired, 3)


def g(key, *path, default=None):
    v = R.get(key)
    for p in path:
        if not isinstance(v, dict):
            return default
        v = v.get(p)
    return default if v is None else v


def f0(x):
    return "—" if x is None else f"{x:,.0f}"


def f2(x):
    return "—" if x is None else f"{x:.2f}"


rows = []  # (what, ours, limit, ratio, target, met)
targets = []


def target(name, met, figure):
    targets.append((name, met, figure))


for key, label in (("catalog_page", "`GET /` catalog page (no session)"),
                   ("product_page", "`GET /products/{id}`"),
                   ("api_products", "`GET /api/products?per_page=24`"),
                   ("api_me", "`GET /api/me` without a session (401, not cached)")):
    if key in R:
        v = R[key]
        rows.append((label + " through nginx", f"{f0(v['rps'])} rps, p99 {v['p99_ms']} ms",
                     f"{f0(v['static_rps'])} rps (nginx static, same bytes)", f2(v["ratio"]), ""))
        if key != "api_me":
            target(f"{key} ≥ 0.50 of nginx static", v["ratio"] >= 0.5, f"{v['ratio']:.2f}")
for key, label in (("embedded_catalog_page", "embedded `GET /`"),
                   ("embedded_product_page", "embedded `GET /products/{id}`"),
                   ("embedded_api_products", "embedded `GET /api/products`")):
    if key in R:
        v = R[key]
        rows.append((label, f"{f0(v['rps'])} rps, p99 {v['p99_ms']} ms",
                     f"{f0(v['static_rps'])} rps (nginx static, loopback)", f2(v["ratio"]), ""))
if "embedded_catalog_page" in R:
    v = R["embedded_catalog_page"]
    target("embedded GET / ≥ 0.30 of nginx static", v["ratio"] >= 0.3, f"{v['ratio']:.2f}")
for key, label in (("cart_add", "add to cart (`POST /api/cart/items`, WAIT 1 replica)"),
                   ("cart_set", "set quantity (`PUT /api/cart/items/{id}`)")):
    if key in R:
        v = R[key]
        # each round's add against the /api/me run of the same round (they alternate)
        per = round_ratios(v.get("all_rps", []), v.get("all_static_rps", []))
        spread = (f" (median of the rounds' ratios; rounds {min(per):.2f}–{max(per):.2f}; "
                  f"ratio of the medians {v.get('ratio_of_medians', v['ratio']):.2f})") if len(per) > 1 else ""
        rows.append((label, f"{f0(v['rps'])} rps, p99 {v['p99_ms']} ms, {v['errors']} errors",
                     f"{f0(v['static_rps'])} rps (`/api/me` through nginx)", f2(v["ratio"]) + spread, ""))
if "cart_add" in R:
    v = R["cart_add"]
    target("add-to-cart ≥ 3,000 rps or ≥ 0.40 of /api/me", v["rps"] >= 3000 or v["ratio"] >= 0.4,
           f"{v['rps']:.0f} rps, {v['ratio']:.2f}")
cg, cd, cs = g("checkout_galera", "orders_per_s"), g("checkout_direct_galera", "orders_per_s"), g("checkout_direct_single", "orders_per_s")
if cg is not None:
    rows.append(("checkout through nginx, Galera (16 shoppers)", f"{cg} orders/s, p99 {g('checkout_galera', 'latency', 'p99_ms')} ms", "", "", ""))
if cd is not None and cs:
    ratio = cd / cs if cs else 0
    rows.append(("checkout at one replica: Galera cluster vs one MariaDB node",
                 f"{cd} orders/s", f"{cs} orders/s (single node)", f2(ratio), ""))
    target("checkout ≥ 200 orders/s on Galera", max(cg or 0, cd) >= 200, f"{max(cg or 0, cd)} orders/s")
    target("checkout on Galera ≥ 0.60 of one node", ratio >= 0.6, f"{ratio:.2f}")
for mix in ("browse", "shop"):
    if f"peak_{mix}" in R:
        p, r = R[f"peak_{mix}"], R.get(f"rate_{mix}", {})
        lat = r.get("latency", {})
        rows.append((f"{mix} mix: closed-loop peak (32 connections)", f"{f0(p['rps'])} rps, p99 {p['latency']['p99_ms']} ms, {p['server_errors'] + p['transport_errors']} failed", "", "", ""))
        limit, ratio = "", ""
        st = R.get(f"rate_{mix}_static", {}).get("latency", {})
        if st and lat:
            limit = f"p50 {st.get('p50_ms')} / p99 {st.get('p99_ms')} / p99.9 {st.get('p999_ms')} ms (nginx static, same paths, same rate)"
            # p99 of the limit over ours: like the other ratios, 1.0 is the limit
            ratio = f2(st["p99_ms"] / lat["p99_ms"]) if lat.get("p99_ms") else ""
        rows.append((f"{mix} mix: fixed rate {f0(r.get('target_rps'))} rps (70 % of peak), latency from the scheduled time",
                     f"p50 {lat.get('p50_ms')} / p99 {lat.get('p99_ms')} / p99.9 {lat.get('p999_ms')} ms, {r.get('server_errors', 0) + r.get('transport_errors', 0)} failed",
                     limit, ratio, ""))
        if mix == "browse" and lat:
            target("browse mix p99 < 20 ms at 70 % of peak", lat["p99_ms"] < 20, f"{lat['p99_ms']} ms")
        # the full form: the same pair at lower fractions of the peak (where the tail starts)
        for frac in (50, 25):
            sw, sws = R.get(f"sweep_{mix}_{frac}", {}), R.get(f"sweep_{mix}_{frac}_static", {})
            sl, ssl = sw.get("latency", {}), sws.get("latency", {})
            if sl and ssl:
                rows.append((f"{mix} mix: fixed rate {f0(sw.get('target_rps'))} rps ({frac} % of peak)",
                             f"p50 {sl.get('p50_ms')} / p99 {sl.get('p99_ms')} / p99.9 {sl.get('p999_ms')} ms, {sw.get('server_errors', 0) + sw.get('transport_errors', 0)} failed",
                             f"p50 {ssl.get('p50_ms')} / p99 {ssl.get('p99_ms')} / p99.9 {ssl.get('p999_ms')} ms (nginx static, same paths, same rate)",
                             f2(ssl["p99_ms"] / sl["p99_ms"]) if sl.get("p99_ms") else "", ""))
if "rate_shop_replica_kill" in R:
    r = R["rate_shop_replica_kill"]
    lat = r.get("latency", {})
    failed = r.get("server_errors", 0) + r.get("transport_errors", 0)
    rows.append((f"shop mix at {f0(r.get('target_rps'))} rps while a replica is SIGKILLed",
                 f"p50 {lat.get('p50_ms')} / p99 {lat.get('p99_ms')} / p99.9 {lat.get('p999_ms')} ms, {failed} failed of {r.get('sent')}",
                 "", "", ""))
    target("no failed request at 70 % of peak while a replica is killed", failed == 0, f"{failed} failed")
for n in (1, 2, 3):
    if f"scale_{n}" in R:
        v = R[f"scale_{n}"]
        rows.append((f"shop mix, {n} replica{'s' if n > 1 else ''} (closed loop)", f"{f0(v['rps'])} rps, p99 {v['latency']['p99_ms']} ms", "", "", ""))
if "replica_memory" in R:
    m = R["replica_memory"]["max_mib"]
    rows.append(("largest replica's memory under the shop mix", f"{m} MiB", "", "", ""))
    target("shop RSS ≤ 50 MB under load", m * 1.048576 <= 50, f"{m * 1.048576:.1f} MB")
if "scale_to_serving" in R:
    v = R["scale_to_serving"]
    rows.append(("`--scale` to the new replica answering through nginx", f"{v['seconds']} s", "", "", ""))
    rows.append(("new replica: process start to listening", f"{v['process_start_to_listening_ms']} ms", "", "", ""))

met = sum(1 for t in targets if t[1])
# when the run recorded its results (a report made again later keeps the run's time)
when = datetime.datetime.fromtimestamp(os.path.getmtime(a.results), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
except OSError:
    commit = "?"

lines = []
lines.append(f"Run {when}, commit `{commit}`, {os.cpu_count()} cores, {platform.machine()}; "
             f"{'short (CI) form' if a.short == '1' else 'full form'}: wrk -t2 -c32, {a.rounds} round(s) of {a.seconds} s per pair, "
             "each pair interleaved (ours, then the limit); figures: the median run of each side; "
             "ratios: the median of the rounds' own ratios"
             + (f" (the cart: {R['cart_add']['rounds']} rounds)." if "cart_add" in R else "."))
lines.append("")
lines.append("| what | distshop | the limit, same run | ratio |")
lines.append("|---|---|---|---|")
for what, ours, limit, ratio, _ in rows:
    lines.append(f"| {what} | {ours} | {limit} | {ratio} |")
lines.append("")
lines.append("| target | measured | met |")
lines.append("|---|---|---|")
for name, ok, fig in targets:
    lines.append(f"| {name} | {fig} | {'yes' if ok else '**no**'} |")
lines.append("")
verdict = f"bench verdict: {met} of {len(targets)} targets met"
lines.append(f"`{verdict}`")
table = "\n".join(lines)
print(table)

if a.svg:
    bars = [(k, R[k]["ratio"]) for k in ("catalog_page", "product_page", "api_products", "api_me",
                                          "embedded_catalog_page", "embedded_product_page", "embedded_api_products",
                                          "cart_add", "cart_set") if k in R]
    W, bh, gap, left = 760, 26, 10, 230
    H = 60 + len(bars) * (bh + gap) + 30
    scale = (W - left - 60) / max(1.0, max([b[1] for b in bars] + [1.0]))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="13">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="24" font-size="15" font-weight="bold">distshop vs its limit, same run ({when})</text>',
           '<text x="10" y="44" fill="#555">ratio of requests/s: pages and API vs nginx static (same bytes, same path); cart vs /api/me through nginx; red: under its target</text>']
    y = 60
    for k, r in bars:
        w = max(1, r * scale)
        need = {"api_me": 0.0, "cart_set": 0.0, "cart_add": 0.4}.get(k, 0.3 if k.startswith("embedded") else 0.5)
        color = "#2a7" if r >= need else "#c33"
        svg.append(f'<text x="{left - 8}" y="{y + bh * 0.7}" text-anchor="end">{k.replace("_", " ")}</text>')
        svg.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bh}" fill="{color}"/>')
        svg.append(f'<text x="{left + w + 6:.1f}" y="{y + bh * 0.7}">{r:.2f}</text>')
        y += bh + gap
    for t, label in ((0.5, "0.5 target (stack pages)"), (1.0, "1.0 = the limit")):
        x = left + t * scale
        svg.append(f'<line x1="{x:.1f}" y1="54" x2="{x:.1f}" y2="{y}" stroke="#888" stroke-dasharray="4 3"/>')
        svg.append(f'<text x="{x - 3:.1f}" y="{y + 16}" fill="#555" font-size="11" text-anchor="end">{label}</text>')
    svg.append("</svg>")
    os.makedirs(os.path.dirname(a.svg), exist_ok=True)
    open(a.svg, "w").write("\n".join(svg) + "\n")

if a.docs:
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    try:
        doc = open(a.docs).read()
    except FileNotFoundError:
        doc = f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin not in doc:
        doc += f"\n{begin}\n{end}\n"
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    img = "\n\n![ratios](img/benchmarks.svg)\n" if a.svg else "\n"
    doc = f"{head}{begin}\n{table}{img}{end}{tail}"
    open(a.docs, "w").write(doc)

print(verdict)
