#!/bin/sh
# check_metrics.sh DEMO PROMTOOL - start metrics_demo on a free port, scrape /metrics and
# validate it with `promtool check metrics` (lint included), check /status, /healthz, an
# extra path and 404, then stop the demo with SIGTERM and expect a clean exit.
# Fails (exit 1) on any problem, including any line promtool prints.
set -u
demo=$1
promtool=$2
dir=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -x "$promtool" ] || fail "promtool not found at '$promtool' (Debian package prometheus)"

# promtool must catch a bad exposition, or a pass below would prove nothing.
printf '# HELP demo_requests Requests\n# TYPE demo_requests counter\ndemo_requests 1\n' \
    > "$dir/bad.txt"
if "$promtool" check metrics < "$dir/bad.txt" > "$dir/bad.out" 2>&1; then
    fail "promtool accepted a counter without _total: the check is not working"
fi

"$demo" --port-file "$dir/port" --seconds 120 2> "$dir/demo.log" &
pid=$!
i=0
while [ ! -s "$dir/port" ]; do
    i=$((i + 1))
    [ $i -le 100 ] || fail "demo did not report its port within 10 s: $(cat "$dir/demo.log")"
    kill -0 "$pid" 2>/dev/null || fail "demo exited early: $(cat "$dir/demo.log")"
    sleep 0.1
done
port=$(cat "$dir/port")
base="http://127.0.0.1:$port"
sleep 0.5 # let the worker record some requests

curl -sS --noproxy '*' -f -D "$dir/headers" -o "$dir/metrics" "$base/metrics" \
    || fail "GET /metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$dir/headers" \
    || fail "content type: $(cat "$dir/headers")"
if ! "$promtool" check metrics < "$dir/metrics" > "$dir/promtool.out" 2>&1; then
    cat "$dir/promtool.out" >&2
    fail "promtool check metrics reported problems"
fi
if [ -s "$dir/promtool.out" ]; then
    cat "$dir/promtool.out" >&2
    fail "promtool check metrics printed something"
fi
echo "promtool check metrics: OK ($(grep -c '^# TYPE' "$dir/metrics") families)"

for want in \
    '^# TYPE spline_demo_requests_total counter$' \
    '^spline_demo_requests_total{method="Read",code="OK"} [0-9]' \
    '^spline_demo_requests_total{method="Echo \\"quoted\\"",code="OK"} ' \
    '^# TYPE spline_demo_request_duration_seconds histogram$' \
    '^spline_demo_request_duration_seconds_bucket{method="Write",le="+Inf"} [1-9]' \
    '^spline_demo_request_size_bytes_bucket{method="Read",le="4096"} [0-9]' \
    '^# TYPE spline_demo_request_duration_quantiles_seconds summary$' \
    '^spline_demo_request_duration_quantiles_seconds{method="Read",quantile="0.99"} [0-9]' \
    '^spline_build_info{component="demo",version="[^"]*",commit="[^"]*"} 1$' \
    '^process_cpu_seconds_total [0-9]' \
    '^process_resident_memory_bytes [1-9]' \
    '^process_open_fds [1-9]' \
    '^process_start_time_seconds [1-9]'; do
    grep -q "$want" "$dir/metrics" || fail "no line matching $want in /metrics"
done

status=$(curl -sS --noproxy '*' -f "$base/status") || fail "GET /status"
echo "$status" | grep -q '"component":"demo"' || fail "/status: $status"
echo "$status" | grep -q '"served":[1-9]' || fail "/status: $status"
[ "$(curl -sS --noproxy '*' -f "$base/healthz")" = "ok" ] || fail "/healthz"
curl -sS --noproxy '*' -f "$base/demo" | grep -q '^served [1-9]' || fail "/demo"
code=$(curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' "$base/nope")
[ "$code" = 404 ] || fail "/nope gave $code, not 404"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "demo exited $rc after SIGTERM: $(cat "$dir/demo.log")"
echo "metrics integration: OK"
