#!/usr/bin/env bash
# Memory under a slow-header flood: N connections (default 5,000) each trickle a request head of
# HEAD_KB (default 100 KiB, past the 64 KiB bound) over ~8 s, inside server.header_read_timeout_seconds.
# Reports the server's peak and final resident memory, how many connections got 431, and that a normal
# client was served throughout. A bound on heads is what keeps the peak at N x 64 KiB at most instead of
# N x ~400 KiB (hyper's default buffer).
#
# env: CONNS (5000), HEAD_KB (100)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CONNS=${CONNS:-5000}; HEAD_KB=${HEAD_KB:-100}
WORK=$(mktemp -d /tmp/appauth-slowheads.XXXXXX)
ulimit -n $((CONNS * 2 + 1000))
cargo build --release --quiet --bin appauth
mkdir "$WORK/appauth"
(cd "$WORK/appauth" && exec "$ROOT/target/release/appauth" serve --listen 127.0.0.1:18097 >server.log 2>&1) &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
until curl -sf http://127.0.0.1:18097/readyz >/dev/null; do sleep 0.05; done
python3 - "$PID" "$CONNS" "$HEAD_KB" <<'PY'
import socket, sys, time, urllib.request
pid, conns, head_kb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss_mb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
base = rss_mb()
socks = []
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", 18097))
    s.setblocking(False)
    s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ")
    socks.append(s)
chunk = b"a" * 1024
peak, answered431, closed, served = base, 0, 0, 0
alive = list(socks)
for k in range(head_kb):
    still = []
    for s in alive:
        try:
            s.send(chunk)
            still.append(s)
        except (BlockingIOError, InterruptedError):
            still.append(s)
        except OSError:
            closed += 1
    alive = still
    peak = max(peak, rss_mb())
    if k % 10 == 0:
        with urllib.request.urlopen("http://127.0.0.1:18097/healthz", timeout=5) as r:
            served += r.status == 200
    time.sleep(8 / head_kb)
time.sleep(0.5)
peak = max(peak, rss_mb())
for s in socks:
    try:
        data = s.recv(64)
        answered431 += data.startswith(b"HTTP/1.1 431")
    except (BlockingIOError, OSError):
        pass
    s.close()
time.sleep(1)
print(f"connections {conns}, head {head_kb} KiB each: RSS before {base:.0f} MB, peak {peak:.0f} MB, "
      f"after close {rss_mb():.0f} MB; 431 answers {answered431}; a normal client served {served}/{(head_kb + 9) // 10}")
PY
