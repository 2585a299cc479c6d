#!/usr/bin/env bash
# How fast does a bad release go away? On this machine, with the example app, a podman API
# service and a registry of the benchmark's own, and nginx in front:
#   - blue-green and canary: a broken release (its /health answers 503) is deployed after a good
#     one; deploy records the time from the first failed gate measurement to nginx confirming the
#     previous release takes all traffic (`rollback_ms`, read from `deploy history --json`);
#   - `deploy rollback`: the wall-clock time of the whole command, and the time it records;
#   - Kubernetes (kube-sim, the real kubectl): blue-green behind the app's Service; a release
#     whose gate fails after the switch goes back, from the first failed measurement to the Service
#     selecting the old colour, against one `kubectl patch service` timed in the same run (goal:
#     at most 1.5 times that one call).
# ROUNDS (default 5) broken deploys per strategy; medians. Target: blue-green under 1 second.
# The last line is the headline: the blue-green switch-back median in seconds.
set -euo pipefail
rounds=${ROUNDS:-5}
environments="bluegreen canary kube"
# shellcheck source=Benchmarks/example-project.sh
source "$(dirname "$0")/example-project.sh"
printf '.slipway/\nExamples/hello/busybox\nExamples/hello/app/version\n' > .gitignore
# kube-sim, whose pods run in the benchmark's podman; its kubeconfig in the benchmark's directory.
mkdir -p Manifests && cp -r "$root/Manifests/hello" Manifests/hello
"$root/.build/debug/kube-sim" start --state "$work/kube" > "$work/kube-sim.log" 2>&1 &
kube_pid=$!
trap 'kill "$kube_pid" 2>/dev/null; wait "$kube_pid" 2>/dev/null || true; cleanup' EXIT
until [ -s "$work/kube/kubeconfig" ] && grep -q "kubeconfig " "$work/kube-sim.log"; do
  kill -0 "$kube_pid" 2>/dev/null || { cat "$work/kube-sim.log" >&2; exit 1; }
  sleep 0.05
done
export KUBECONFIG=$work/kube/kubeconfig HOME=$work/home
kubectl create namespace hello-production >/dev/null
cat > slipway.yml <<YAML
app: rollbackbench
image: 127.0.0.1:$registry_port/rollbackbench
environments:
  bluegreen:
    target: { docker: { listen: "127.0.0.1:$(free_port)" } }
    strategy: { blue_green: { bake: 1s } }
    gates: [health]
  canary:
    target: { docker: { listen: "127.0.0.1:$(free_port)" } }
    strategy: { canary: { steps: [5, 25, 50, 100] } }
    gates: [health]
  kube:
    target: { kubernetes: { manifests: Manifests/hello/overlays/production, namespace: hello-production } }
    strategy: { blue_green: { bake: 1s } }
    gates: [health, marker]
stages:
  - { name: prepare, run: [Examples/hello/prepare] }
  - { name: build, build: { context: Examples/hello, file: Containerfile, args: { VERSION: "\${VERSION}" }, no_cache: true } }
  - { name: push, push: {} }
  - { name: bluegreen, deploy: bluegreen }
  - { name: canary, deploy: canary }
  - { name: kube, deploy: kube }
gates:
  health: { http: { url: "\${TARGET_URL}/health", status: 200, within: 2s }, every: 100ms, times: 3 }
  # Fails for a release marked bad after the fact (a broken one never becomes ready on Kubernetes).
  marker: { command: [test, "!", -e, ".slipway/\${VERSION}.bad"] }
YAML
git add -A && git commit -qm "feat: hello" && git tag v1.0.0

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
last_ms() { "$deploy" history "$1" --limit 1 --json | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["rollback_ms"] if r.get("rollback_ms") is not None else "")'; }

"$deploy" bluegreen >/dev/null
"$deploy" canary >/dev/null
"$deploy" kube >/dev/null
bluegreen=() canary=() command_s=() recorded=()
for round in $(seq "$rounds"); do
  Examples/hello/break >/dev/null
  git add -A && git commit -qm "feat: broken $round" && git tag "v1.$round.1"
  for environment in bluegreen canary; do
    status=0
    "$deploy" "$environment" >/dev/null || status=$?
    [ "$status" -eq 3 ] || { echo "rollback.sh: deploy $environment exited $status, not 3 (rolled back)" >&2; exit 1; }
    ms=$(last_ms "$environment")
    "$deploy" unpin "$environment" --reason benchmark >/dev/null
    if [ "$environment" = bluegreen ]; then bluegreen+=("$ms"); else canary+=("$ms"); fi
  done
  git rm -q Examples/hello/app/broken && git commit -qm "fix: mended $round" && git tag "v1.$round.2"
  "$deploy" bluegreen >/dev/null
  # deploy rollback: back to the release before the one just deployed.
  started=$(date +%s.%N)
  "$deploy" rollback bluegreen --reason "benchmark round $round" >/dev/null
  ended=$(date +%s.%N)
  command_s+=("$(echo "$ended - $started" | bc -l)")
  recorded+=("$(last_ms bluegreen)")
  "$deploy" unpin bluegreen --reason benchmark >/dev/null
  "$deploy" bluegreen --release "1.$round.2" >/dev/null
  echo "round $round: blue-green ${bluegreen[-1]} ms, canary ${canary[-1]} ms, deploy rollback $(printf '%.3f' "${command_s[-1]}") s (${recorded[-1]} ms recorded)"
done

# Kubernetes: a release marked bad after its switch goes back; then one `kubectl patch service`
# (the Service pointed again at the colour it already selects: the same request) timed alone.
kube=() patch=()
for round in $(seq "$rounds"); do
  echo "$round" > CHANGES
  git add -A && git commit -qm "feat: kube $round" && git tag "v2.$round.0"
  touch ".slipway/2.$round.0.bad"
  status=0
  "$deploy" kube >/dev/null || status=$?
  [ "$status" -eq 3 ] || { echo "rollback.sh: deploy kube exited $status, not 3 (rolled back)" >&2; exit 1; }
  kube+=("$(last_ms kube)")
  "$deploy" unpin kube --reason benchmark >/dev/null
  colour=$(kubectl get service hello -n hello-production -o jsonpath='{.spec.selector.slipway\.dev/colour}')
  started=$(date +%s.%N)
  kubectl patch service hello -n hello-production --type=merge -p "{\"spec\":{\"selector\":{\"slipway.dev/colour\":\"$colour\"}}}" -o name >/dev/null
  ended=$(date +%s.%N)
  patch+=("$(echo "($ended - $started) * 1000" | bc -l)")
  printf 'kube round %s: blue-green switch back %s ms, one kubectl patch service %.0f ms\n' "$round" "${kube[-1]}" "${patch[-1]}"
done

bg=$(printf '%s\n' "${bluegreen[@]}" | median)
cn=$(printf '%s\n' "${canary[@]}" | median)
cmd=$(printf '%s\n' "${command_s[@]}" | median)
rec=$(printf '%s\n' "${recorded[@]}" | median)
echo "first failed gate measurement → previous release serving all traffic (median of $rounds):"
echo "  blue-green  $bg ms"
echo "  canary      $cn ms"
printf 'deploy rollback, whole command (median of %s): %.3f s (%s ms from start to switch, as recorded)\n' "$rounds" "$cmd" "$rec"
kb=$(printf '%s\n' "${kube[@]}" | median)
kp=$(printf '%s\n' "${patch[@]}" | median)
printf 'kubernetes blue-green switch back %s ms; one kubectl patch service %.0f ms: ratio %.2f (goal 1.5 or less)\n' "$kb" "$kp" "$(echo "$kb / $kp" | bc -l)"
printf 'blue-green switch back %.3f s\n' "$(echo "$bg / 1000" | bc -l)"
