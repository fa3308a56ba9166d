"""Reads wrk's output (with --latency) on stdin; prints one JSON object:
rps, p50_ms, p99_ms, requests, errors (socket errors + non-2xx/3xx)."""
import json
import re
import sys

text = sys.stdin.read()


def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    if not m:
        return None
    n, u = float(m.group(1)), m.group(2)
    return round(n / 1000 if u == "us" else n * 1000 if u == "s" else n, 2)


out = {"rps": 0.0, "p50_ms": None, "p99_ms": None, "requests": 0, "errors": 0}
m = re.search(r"Requests/sec:\s+([\d.]+)", text)
if m:
    out["rps"] = float(m.group(1))
for q, k in (("50%", "p50_ms"), ("99%", "p99_ms")):
    m = re.search(rf"^\s+{q}\s+(\S+)", text, re.M)
    if m:
        out[k] = ms(m.group(1))
m = re.search(r"(\d+) requests in", text)
if m:
    out["requests"] = int(m.group(1))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if m:
    out["errors"] += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    out["errors"] += sum(int(x) for x in m.groups())
if out["rps"] == 0.0:
    out["raw"] = text[-400:]
print(json.dumps(out))
