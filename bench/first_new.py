"""first_new.py BASE KNOWN_NAMES TIMEOUT: polls BASE/api/me through nginx
(no session: a 401 every replica answers itself, never cached; the replicas'
/healthz is internal) until a replica whose X-Served-By (its name, shop-<n>,
or its hostname) is not in KNOWN (whitespace-separated) answers; prints the
wall-clock time (epoch s)."""
import sys
import time
import urllib.error
import urllib.request

base, known, timeout = sys.argv[1], set(sys.argv[2].split()), float(sys.argv[3])
t0 = time.time()
while time.time() - t0 < timeout:
    try:
        try:
            with urllib.request.urlopen(base + "/api/me", timeout=2) as r:
                who = r.headers.get("X-Served-By")
        except urllib.error.HTTPError as e:  # the expected 401
            who = e.headers.get("X-Served-By")
        if who and who not in known:
            print(f"{time.time():.3f}")
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.02)
print(f"{time.time():.3f}")
sys.exit(1)
