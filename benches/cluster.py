#!/usr/bin/env python3
"""Helpers of benches/cluster.sh (standard library only).

propagation ADMIN A B [B ...] N
    Creates one application on instance A, then N times: regenerates its
    secret on A and, from the moment A acknowledged, polls every other
    instance with the *new* secret until it is accepted (and checks that the
    old one is refused there). Prints one JSON object: per-change delays.

writer ADMIN LB SECONDS OUT
    Creates applications through the load balancer for SECONDS, one after
    the other, and writes the ids of every create that was acknowledged
    (201) to OUT; failures are counted by kind.

verify ADMIN OUT INSTANCE [INSTANCE ...]
    Checks that every acknowledged application is present on every instance.
"""
import base64
import http.client
import json
import sys
import time
import urllib.parse
import uuid


class Client:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise


def token_request(client, client_id, secret):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.request(
        "POST",
        "/oauth/token",
        body="grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )


def admin_token(client, admin_file):
    creds = json.load(open(admin_file))
    status, body = token_request(client, creds["clientId"], creds["secret"])
    if status != 200:
        raise SystemExit(f"admin token refused: {status} {body[:200]!r}")
    return json.loads(body)["access_token"]


def api(client, token, method, path, payload=None):
    headers = {"Authorization": f"Bearer {token}"}
    body = None
    if payload is not None:
        body = json.dumps(payload)
        headers["Content-Type"] = "application/json"
    return client.request(method, path, body=body, headers=headers)


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def propagation(admin_file, a, others, n):
    ca = Client(a)
    cos = [Client(o) for o in others]
    token = admin_token(ca, admin_file)
    status, body = api(ca, token, "POST", "/api/v1/apps", {"name": f"propagation-{uuid.uuid4().hex[:12]}"})
    assert status == 201, (status, body)
    app = json.loads(body)
    secret = app["secret"]
    for c in cos:  # the creation itself must have arrived before timing regenerates
        while token_request(c, app["clientId"], secret)[0] != 200:
            time.sleep(0.005)
    delays = []
    for _ in range(n):
        old = secret
        status, body = api(ca, token, "POST", f"/api/v1/apps/{app['id']}/secret", {})
        acknowledged = time.monotonic()
        assert status in (200, 201), (status, body)
        secret = json.loads(body)["secret"]
        for c in cos:
            while True:
                if token_request(c, app["clientId"], secret)[0] == 200:
                    delays.append(time.monotonic() - acknowledged)
                    break
                if time.monotonic() - acknowledged > 10:
                    raise SystemExit("a regenerate did not reach another instance within 10 s")
                time.sleep(0.002)
            refused = token_request(c, app["clientId"], old)[0]
            assert refused == 401, f"the old secret still works on another instance: {refused}"
    ms = [d * 1000 for d in delays]
    print(json.dumps({
        "changes": n,
        "observations": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
    }))


def writer(admin_file, lb, seconds, out):
    c = Client(lb)
    token = admin_token(c, admin_file)
    acked, failures = [], {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            status, body = api(c, token, "POST", "/api/v1/apps", {"name": f"durable-{uuid.uuid4().hex[:16]}"})
        except (OSError, http.client.HTTPException) as e:
            failures[type(e).__name__] = failures.get(type(e).__name__, 0) + 1
            continue
        if status == 201:
            acked.append(json.loads(body)["id"])
        else:
            failures[str(status)] = failures.get(str(status), 0) + 1
    with open(out, "w") as f:
        json.dump(acked, f)
    print(json.dumps({"acknowledged": len(acked), "failed": failures}))


def verify(admin_file, out, instances):
    ids = json.load(open(out))
    lost = {}
    for base in instances:
        c = Client(base)
        token = admin_token(c, admin_file)
        missing = [i for i in ids if api(c, token, "GET", f"/api/v1/apps/{i}")[0] != 200]
        lost[base] = len(missing)
    print(json.dumps({"acknowledged": len(ids), "missing_per_instance": lost}))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "propagation":
        propagation(args[0], args[1], args[2:-1], int(args[-1]))
    elif cmd == "writer":
        writer(args[0], args[1], float(args[2]), args[3])
    elif cmd == "verify":
        verify(args[0], args[1], args[2:])
    else:
        raise SystemExit(__doc__)
