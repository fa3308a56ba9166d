#!/usr/bin/env python3
"""Figures of one failover scenario run against its targets (markdown on stdout).

    figures.py NAME REPORT_DIR SIM_EXIT CHECK_EXIT

Reads summary.json, timeline.csv, fault.log and check.out of the report. A
hard target not reached is printed as MISSED (scenario.sh then fails): every
invariant (no lost or duplicate order, no lost session or cart change, the
database checks) and zero failed requests when only a shop replica is lost.
A soft target (timings, error budgets of backend failovers) not reached is
printed as "missed (soft)": visible in the figures, not a failed run.
"""
import csv
import json
import re
import sys

name, d, sim_rc, check_rc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = json.load(open(f"{d}/summary.json"))
rows = list(csv.DictReader(open(f"{d}/timeline.csv")))
try:
    faultlog = open(f"{d}/fault.log").read()
except OSError:
    faultlog = ""
try:
    check = open(f"{d}/check.out").read()
except OSError:
    check = ""

e = s["errors"]
v = s["violations"]
req = s["requests"]
failed = e["network"] + e["timeout"] + e["5xx"] + e["4xx-unexpected"]
pct = 100.0 * failed / max(1, req)
faults = sorted(s.get("faults", []), key=lambda f: f["t_s"])
t_fault = faults[0]["t_s"] if faults else None


def err(r):
    return sum(int(r[k]) for k in ("err_network", "err_timeout", "err_5xx", "err_4xx_unexpected"))


err_secs = [int(r["second"]) for r in rows if err(r) > 0]
window = (err_secs[-1] - err_secs[0] + 1) if err_secs else 0
recovery = (err_secs[-1] + 1 - t_fault) if (err_secs and t_fault is not None) else 0.0
# seconds after the fault in which nothing succeeded although shoppers were busy
zero_ok = 0
if t_fault is not None:
    zero_ok = sum(1 for r in rows if int(r["second"]) >= int(t_fault) and int(r["ok"]) == 0 and int(r["active_shoppers"] or 0) > 0)
writes = [ep for ep in s["endpoints"] if ep["endpoint"].split()[0] in ("POST", "PUT", "DELETE")
          and not ep["endpoint"].endswith(("/login", "/register", "/logout"))]
max_write_ms = max((ep["latency"]["max_ms"] for ep in writes), default=0.0)
statuses5 = {}
for ep in s["endpoints"]:
    for st, n in ep["statuses"].items():
        if st.startswith("5"):
            statuses5[st] = statuses5.get(st, 0) + n
m = re.search(r"check: (\d+) invariants, (\d+) held, (\d+) violated", check)
inv = f"{m.group(2)}/{m.group(1)} held" if m else "no result"

out = []
miss = []
soft_miss = []


def row(what, target, measured, okay, hard=True):
    verdict = "met" if okay else ("MISSED" if hard else "missed (soft)")
    out.append(f"| {what} | {target} | {measured} | {verdict} |")
    if not okay:
        (miss if hard else soft_miss).append(what)


lost = v["lost-order"] + v["duplicate-order"]
out.append(f"### {name} — {d.rstrip('/').split('/')[-1]}\n")
out.append(f"{req} requests in {s['elapsed_s']:.0f}s ({s['load_model']}), {s['orders_acknowledged']} orders acknowledged; "
           f"errors: network {e['network']}, timeout {e['timeout']}, 5xx {e['5xx']} {statuses5 or ''}, 4xx-unexpected {e['4xx-unexpected']}; "
           f"first fault at t={t_fault if t_fault is not None else '-'}s; error seconds {err_secs[:1] and err_secs[0]}..{err_secs[-1:] and err_secs[-1]}\n")
out.append("| figure | target | measured | |")
out.append("|---|---|---|---|")
row("lost sessions", "0", v["lost-session"], v["lost-session"] == 0)
row("lost / duplicate orders", "0 / 0", f"{v['lost-order']} / {v['duplicate-order']}", lost == 0)
row("content violations", "0", v["content"], v["content"] == 0)
row("database invariants (check, 3 Galera nodes compared)", "all hold", inv, check_rc == 0)
fr = f"{failed} of {req} ({pct:.2f} %)"
if name in ("shop-kill", "shop-stop", "rolling-restart", "scale", "shop-freeze", "shop-sigstop", "shop-db-hang", "ramp", "shop-500"):
    row("failed requests", "0", fr, failed == 0)
if name in ("shop-freeze", "shop-sigstop"):
    mm = re.search(r"no longer frozen \(([\d.]+)s after the freeze\)", faultlog)
    row("frozen replica restarted by the manager", "<= 10 s", f"{mm.group(1)} s" if mm else "never",
        bool(mm) and float(mm.group(1)) <= 10)
if name == "ramp":
    out_lines = [line for line in faultlog.splitlines() if "scaled out" in line and "into the ramp" in line]
    outs = [m.groups() for m in (re.search(r"scaled out (\d) -> (\d) \((\d+)s into the ramp; (.*)\)", line) for line in out_lines) if m]
    p99s = [float(x) for o in outs for x in re.findall(r"p99 (\d+) ms", o[3])]
    row("scaled out during the ramp", ">= 1 step", f"{len(outs)} step(s): " + ", ".join(f"{a}->{b} at {t} s" for a, b, t, _ in outs) if outs else "none",
        bool(outs))
    row("p99 the manager measured when it scaled out", "< 200 ms", ", ".join(f"{p:.0f} ms" for p in p99s) or "not in the manager's note",
        bool(p99s) and all(p < 200 for p in p99s))
    mm = re.search(r"back at (\d+) replicas (\d+)s after the ramp; (\d+) reversal", faultlog)
    row("back to 3 replicas after the ramp", "<= 120 s", f"{mm.group(2)} s" if mm else "no", bool(mm))
    row("no flapping (no step against the load's direction)", "0", mm.group(3) if mm else "n/a", bool(mm) and mm.group(3) == "0")
if name == "shop-500":
    mm = re.search(r"replaced by the manager \(([\d.]+)s after it started answering 500\)", faultlog)
    row("bad replica replaced by the manager", "<= 15 s", f"{mm.group(1)} s" if mm else "never",
        bool(mm) and float(mm.group(1)) <= 15)
if name == "shop-db-hang":
    mm = re.search(r"restarted \(([\d.]+)s after its database calls began to hang\)", faultlog)
    row("replica with hanging database calls restarted by the manager", "<= 15 s", f"{mm.group(1)} s" if mm else "never",
        bool(mm) and float(mm.group(1)) <= 15)
elif name == "redis-master-kill":
    row("failed requests", "<= 0.5 %", fr, pct <= 0.5, hard=False)
    mm = re.search(r"served by (\S+) \(([\d.]+)s after the kill\)", faultlog)
    row("slot failed over (promotion seen)", "-", f"{mm.group(1)} after {mm.group(2)} s" if mm else "not seen", True)
    row("recovered (last error - kill)", "<= 5 s", f"{recovery:.1f} s" if err_secs else "no errors", recovery <= 5, hard=False)
elif name == "galera-kill":
    row("failed requests", "(not a target)", fr, True)
    row("write stall (slowest write request)", "<= 6 s", f"{max_write_ms / 1000:.2f} s", max_write_ms <= 6000, hard=False)
    mm = re.search(r"rejoined by (\S+) \((\d+)s after the kill\)", faultlog)
    row("rejoin", "IST", f"{mm.group(1)}, Synced {mm.group(2)} s after the kill" if mm else "not seen", bool(mm) and mm.group(1) == "IST", hard=False)
elif name == "db-kill":
    non503 = {k: n for k, n in statuses5.items() if k != "503"}
    row("every 5xx a clean 503", "yes", f"5xx statuses {statuses5 or 'none'}", not non503, hard=False)
    row("failed requests", "(not a target)", fr + f"; network {e['network']}, timeout {e['timeout']}", True)
    row("recovered (last error - kill)", "back by itself", f"{recovery:.1f} s" if err_secs else "no errors", True)
elif name == "tour":
    row("failed requests", "(several faults; see each scenario)", fr, True)
elif name in ("nginx-kill", "whole-restart"):
    row("failed requests", "(not a target: the entry point is down)", fr, True)
    mm = re.search(r"healthy again \((\d+)s", faultlog)
    row("back healthy", "by itself", f"{mm.group(1)} s" if mm else "see fault.log", bool(mm), hard=name == "whole-restart")
if name == "scale":
    # first request of each replica that served nothing before the first fault marker
    reps = [k for k in rows[0].keys() if k.startswith("replica:")]
    before = {k for k in reps if any(int(r[k] or 0) > 0 for r in rows if t_fault is not None and int(r["second"]) < t_fault)}
    healthy6 = next((f["t_s"] for f in faults if re.search(r"shop = 6 healthy", f["label"])), None)
    new = []
    for k in reps:
        if k in before:
            continue
        first = next((int(r["second"]) for r in rows if int(r[k] or 0) > 0), None)
        if first is not None:
            new.append((k[8:], first))
    if healthy6 is not None and new:
        worst = max(f - healthy6 for _, f in new)
        row("new replicas serve after all 6 healthy", "<= 2 s",
            f"{len(new)} new, first requests at t={[f for _, f in new]} (all healthy at t={healthy6:.1f}); worst {worst:+.1f} s", worst <= 2,
            hard=False)
    else:
        row("new replicas serve", "<= 2 s", f"{len(new)} new replicas seen", False, hard=False)
out.append(f"| seconds after the fault with 0 successful requests | - | {zero_ok} | |")
out.append(f"| slowest write (POST/PUT/DELETE cart/orders) | - | {max_write_ms:.0f} ms | |")
out.append(f"| simulator verdict / check exit | pass / 0 | {'pass' if s['verdict']['pass'] else 'FAIL'} ({sim_rc}) / {check_rc} | |")
out.append("")
out.append("Fault steps: " + "; ".join(f"t={f['t_s']:.1f}s {f['label']}" for f in faults))
out.append("")
if not miss and sim_rc == 0 and check_rc == 0:
    result = "all hard targets met" + (f"; soft targets missed: {', '.join(soft_miss)}" if soft_miss else "; all soft targets met")
else:
    result = "MISSED " + ", ".join(miss) + (f" (sim exit {sim_rc}, check exit {check_rc})" if sim_rc or check_rc else "")
    if soft_miss:
        result += f"; soft targets missed: {', '.join(soft_miss)}"
out.append("RESULT: " + result)
print("\n".join(out))
