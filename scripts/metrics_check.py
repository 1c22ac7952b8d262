"""Parses appauth's /metrics with the Prometheus project's own Python
client, whose OpenMetrics parser is strict (types, units, suffixes, bucket
order, cumulative counts, the closing # EOF), and checks that the traffic
the fuzzer sent was counted. Exits 1 with the reason on any failure."""

import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

url = sys.argv[1]
with urllib.request.urlopen(url) as resp:
    ctype = resp.headers["Content-Type"]
    text = resp.read().decode()
if not ctype.startswith("application/openmetrics-text"):
    sys.exit(f"metrics-check: Content-Type is {ctype!r}")
try:
    families = {f.name: f for f in text_string_to_metric_families(text)}
except Exception as e:  # the parser's errors are plain ValueErrors
    sys.exit(f"metrics-check: the OpenMetrics parser refused /metrics: {e}")

expected = {
    "appauth_tokens_issued": "counter",
    "appauth_token_errors": "counter",
    "appauth_request_duration_seconds": "histogram",
    "appauth_build_info": "gauge",
    "process_cpu_seconds": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
}
for name, kind in expected.items():
    if name not in families:
        sys.exit(f"metrics-check: {name} missing; have {sorted(families)}")
    if families[name].type != kind:
        sys.exit(f"metrics-check: {name} is a {families[name].type}, not a {kind}")

counts = {
    s.labels["route"]: s.value
    for s in families["appauth_request_duration_seconds"].samples
    if s.name.endswith("_count")
}
if counts.get("admin", 0) < 100:
    sys.exit(f"metrics-check: the fuzzer's admin requests were not counted: {counts}")
issued = families["appauth_tokens_issued"].samples[0].value
if issued < 1:
    sys.exit("metrics-check: the token the script fetched was not counted")
print(f"metrics-check: {len(families)} families parsed; requests by route {counts}")
