"""median.py NAME RUN... -- BASELINE_RUN...: the median run of each side (by rps)
and their ratio, as one JSON object."""
import json
import statistics
import sys

name = sys.argv[1]
rest = sys.argv[2:]
sep = rest.index("--")
ours = [json.loads(x) for x in rest[:sep]]
base = [json.loads(x) for x in rest[sep + 1:]]


def med(runs):
    runs = sorted(runs, key=lambda r: r["rps"])
    return runs[len(runs) // 2]


a, b = med(ours), med(base)
print(json.dumps({
    "name": name,
    "rps": a["rps"], "p50_ms": a["p50_ms"], "p99_ms": a["p99_ms"], "errors": sum(r["errors"] for r in ours),
    "static_rps": b["rps"], "static_p99_ms": b["p99_ms"],
    "ratio": round(a["rps"] / b["rps"], 3) if b["rps"] else 0.0,
    "rounds": len(ours),
    "all_rps": [r["rps"] for r in ours], "all_static_rps": [r["rps"] for r in base],
}))
