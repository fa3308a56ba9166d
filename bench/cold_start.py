"""cold_start.py CONTAINER: ms from the container's process start to the
shop's "listening" log line (both from Docker's clock)."""
import datetime
import json
import subprocess
import sys

c = sys.argv[1]
started = subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", c],
                         capture_output=True, text=True).stdout.strip()
logs = subprocess.run(["docker", "logs", "--timestamps", c], capture_output=True, text=True)


def parse(ts):
    ts = ts.rstrip("Z")
    head, _, frac = ts.partition(".")
    return datetime.datetime.fromisoformat(head).timestamp() + float("0." + (frac or "0")[:6])


for line in (logs.stdout + logs.stderr).splitlines():
    ts, _, rest = line.partition(" ")
    if '"listening"' in rest or "listening" in rest:
        print(round((parse(ts) - parse(started)) * 1000))
        sys.exit(0)
print("null")
