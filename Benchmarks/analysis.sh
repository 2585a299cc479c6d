#!/usr/bin/env bash
# How fast does metric analysis catch a release whose error rate rises, and how fast does
# `deploy abort` take one back? On this machine: the example app in podman behind nginx, a
# registry, and a real Prometheus (scraping every second through the file discovery deploy
# writes), all of the benchmark's own; users are a request a 50 ms to `/`.
#   - detection: a canary step at 50 %, gated by the error-rate template (every 1s, failure_limit 1);
#     the benchmark makes the running canary answer 500 (the app's own switch) and measures from
#     that moment to the rollback starting (the gate's deciding measurement, as recorded). Bound:
#     failure_limit × every + one scrape interval, plus one measurement's own time.
#   - abort: `deploy abort` from another process while the canary holds; from the request to the
#     previous release serving all traffic again (as recorded).
# ROUNDS (default 3); medians. The last line is the headline: the detection median in seconds.
set -euo pipefail
rounds=${ROUNDS:-3}
environments="canary"
# shellcheck source=Benchmarks/example-project.sh
source "$(dirname "$0")/example-project.sh"
printf '.slipway/\nExamples/hello/busybox\nExamples/hello/app/version\n' > .gitignore
prometheus_port=$(free_port)
prometheus() { SLIPWAY_SERVICES=$work/prometheus PROMETHEUS_PORT=$prometheus_port SLIPWAY_STATE=$repo/.slipway/state.sqlite "$root/scripts/services" "$@"; }
prometheus start prometheus >/dev/null
trap 'prometheus stop prometheus >/dev/null 2>&1 || true; kill "$users" 2>/dev/null || true; cleanup' EXIT
port=$(free_port)
cat > slipway.yml <<YAML
app: analysisbench
image: 127.0.0.1:$registry_port/analysisbench
prometheus: { url: "http://127.0.0.1:$prometheus_port" }
environments:
  canary:
    target: { docker: { listen: "127.0.0.1:$port" } }
    strategy: { canary: { steps: [50, 100], analysis: [errors] } }
    gates: [health]
stages:
  - { name: prepare, run: [Examples/hello/prepare] }
  - { name: build, build: { context: Examples/hello, file: Containerfile, args: { VERSION: "\${VERSION}" }, no_cache: true } }
  - { name: push, push: {} }
  - { name: canary, deploy: canary }
gates:
  health: { http: { url: "\${TARGET_URL}/health", status: 200, within: 2s } }
  errors: { template: error-rate, metric: hello_requests_total, window: 5s, every: 1s, times: 8, failure_limit: 1, inconclusive_limit: 2 }
YAML
git add -A && git commit -qm "feat: hello" && git tag v1.0.0
( while :; do curl -s -o /dev/null -m 2 "http://127.0.0.1:$port/" || true; sleep 0.05; done ) &
users=$!
"$deploy" canary >/dev/null
sql() { sqlite3 .slipway/state.sqlite "$1"; }
newest() { "${DOCKER:-docker}" ps --format '{{.Names}}' --filter label=io.slipway.app=analysisbench | sort -t r -k 3 | tail -1; }
wait_for() { until grep -q "$1" "$2"; do kill -0 "$3" 2>/dev/null || { cat "$2" >&2; exit 1; }; sleep 0.05; done; }
detection=() abort=()
for round in $(seq "$rounds"); do
  echo "$round" > CHANGES && git add -A && git commit -qm "feat: round $round" && git tag "v1.$round.0"
  # Detection: the error rate rises once the canary takes its 50 %.
  "$deploy" canary > "$work/deploy.log" 2>&1 &
  pid=$!
  wait_for "gate errors at 50%" "$work/deploy.log" "$pid"
  container=$(newest)
  "${DOCKER:-docker}" exec "$container" /bin/busybox touch /tmp/hello/errors
  flipped=$(date +%s.%N)
  status=0; wait "$pid" || status=$?
  [ "$status" -eq 3 ] || { cat "$work/deploy.log" >&2; echo "analysis.sh: deploy exited $status, not 3" >&2; exit 1; }
  run=$(sql "SELECT MAX(id) FROM run")
  decided=$(sql "SELECT MAX(at) FROM gate_measurement WHERE run_id = $run AND gate = 'errors' AND verdict = 'fail'")
  detection+=("$(echo "$decided - $flipped" | bc -l)")
  "$deploy" unpin canary --reason benchmark >/dev/null
  # Abort: held after the 50 % step, aborted from another process.
  "$deploy" canary > "$work/deploy.log" 2>&1 &
  pid=$!
  wait_for "gate errors at 50%" "$work/deploy.log" "$pid"
  run=$(sql "SELECT MAX(id) FROM run")
  "$deploy" pause "$run" --as bench >/dev/null
  wait_for "held at 50%" "$work/deploy.log" "$pid"
  "$deploy" abort "$run" --as bench --reason "benchmark round $round" >/dev/null
  status=0; wait "$pid" || status=$?
  [ "$status" -eq 3 ] || { cat "$work/deploy.log" >&2; echo "analysis.sh: aborted deploy exited $status, not 3" >&2; exit 1; }
  asked=$(sql "SELECT at FROM run_control WHERE run_id = $run AND action = 'abort'")
  back=$(sql "SELECT at FROM event WHERE run_id = $run AND kind = 'rollback'" | head -1)
  abort+=("$(echo "$back - $asked" | bc -l)")
  "$deploy" unpin canary --reason benchmark >/dev/null
  printf 'round %s: detection %.2f s, abort to previous release serving %.2f s\n' "$round" "${detection[-1]}" "${abort[-1]}"
done
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf 'detection (errors start → deciding failed measurement), median of %s: %.2f s (bound: failure_limit 1 × every 1s + scrape 1s + one measurement)\n' "$rounds" "$(printf '%s\n' "${detection[@]}" | median)"
printf 'deploy abort → previous release serving all traffic, median of %s: %.2f s\n' "$rounds" "$(printf '%s\n' "${abort[@]}" | median)"
printf 'detection %.2f s\n' "$(printf '%s\n' "${detection[@]}" | median)"
