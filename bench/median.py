"""median.py NAME RUN... -- BASELINE_RUN...: the median run of each side (by rps)
and their ratio, as one JSON object.

The runs alternate (ours, then the limit, round after round), so each round's
two runs saw the same machine; the ratio is the median of the rounds' own
ratios, which cancels the machine's drift from one round to the next (on the
shared 2-core machine a side's rps moves by ±12 % between rounds). The ratio of
the two sides' medians is kept beside it as `ratio_of_medians`."""
import json
import statistics
import sys


def med(runs):
    runs = sorted(runs, key=lambda r: r["rps"])
    return runs[len(runs) // 2]


def round_ratios(ours_rps, base_rps):
    """Each round's ratio (rounds paired in order); empty unless both sides have every round."""
    if len(ours_rps) != len(base_rps):
        return []
    return [a / b for a, b in zip(ours_rps, base_rps) if b]


def paired_ratio(ours_rps, base_rps):
    """The median of the per-round ratios; None without pairs."""
    per = round_ratios(ours_rps, base_rps)
    return statistics.median(per) if per else None


def main(argv):
    name = argv[1]
    rest = argv[2:]
    sep = rest.index("--")
    ours = [json.loads(x) for x in rest[:sep]]
    base = [json.loads(x) for x in rest[sep + 1:]]
    a, b = med(ours), med(base)
    of_medians = round(a["rps"] / b["rps"], 3) if b["rps"] else 0.0
    paired = paired_ratio([r["rps"] for r in ours], [r["rps"] for r in base])
    print(json.dumps({
        "name": name,
        "rps": a["rps"], "p50_ms": a["p50_ms"], "p99_ms": a["p99_ms"], "errors": sum(r["errors"] for r in ours),
        "static_rps": b["rps"], "static_p99_ms": b["p99_ms"],
        "ratio": round(paired, 3) if paired is not None else of_medians,
        "ratio_of_medians": of_medians,
        "rounds": len(ours),
        "all_rps": [r["rps"] for r in ours], "all_static_rps": [r["rps"] for r in base],
    }))


if __name__ == "__main__":
    main(sys.argv)
