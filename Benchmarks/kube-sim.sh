#!/usr/bin/env bash
# kube-sim seen through the real kubectl, as a user of a control plane sees it: the round-trip
# time of `kubectl get` and `kubectl patch` (each a whole kubectl invocation: process start,
# discovery from its disk cache, the requests), and the time from `kubectl apply` of the example
# app (3 replicas, pods running in podman, readiness probes on /health) to `kubectl rollout
# status` done. ROUNDS (default 20) kubectl calls of each kind, ROLLOUTS (default 3) rollouts.
# A user of a real control plane sees about 0.1 s per kubectl call.
# The last line is the headline: the median apply-to-rolled-out time, in seconds.
set -euo pipefail
rounds=${ROUNDS:-20}
rollouts=${ROLLOUTS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/kube-sim-bench-XXXXXX)
services="$work/services"
registry_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SLIPWAY_SERVICES="$services" REGISTRY_PORT="$registry_port"
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill -TERM "$sim_pid" 2>/dev/null && while kill -0 "$sim_pid" 2>/dev/null; do sleep 0.1; done
  "$root/scripts/services" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

[ -x "$root/.build/release/kube-sim" ] || (cd "$root" && swift build -c release --static-swift-stdlib --product kube-sim >/dev/null)
"$root/scripts/services" start >/dev/null
eval "$("$root/scripts/services" env)"
docker=${DOCKER:-$(command -v docker >/dev/null && echo docker || echo podman)}

# The example app's image, in this benchmark's registry.
cp -r "$root/Examples/hello" "$work/hello"
DEPLOY_VERSION=1.0.0 "$work/hello/prepare" >/dev/null
image="127.0.0.1:$registry_port/hello:1.0.0"
(cd "$work/hello" && "$docker" build -q -t "$image" -f Containerfile . >/dev/null 2>&1 && "$docker" push -q "$image" >/dev/null 2>&1)
mkdir -p "$work/manifests"
for file in deployment.yaml service.yaml; do
  sed "s|127.0.0.1:5000/hello:1.0.0|$image|" "$root/Manifests/hello/base/$file" > "$work/manifests/$file"
done

"$root/.build/release/kube-sim" start --state "$work/state" > "$work/kube-sim.log" 2>&1 &
sim_pid=$!
until grep -q "kubeconfig " "$work/kube-sim.log" 2>/dev/null; do
  kill -0 "$sim_pid" || { cat "$work/kube-sim.log"; exit 1; }
  sleep 0.05
done
export KUBECONFIG="$work/state/kubeconfig" HOME="$work/home"
mkdir -p "$HOME"
kubectl create configmap bench --from-literal=n=0 >/dev/null
kubectl get configmap bench >/dev/null   # fills kubectl's discovery cache, as any user's first call does

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: > "$work/get"
: > "$work/patch"
for i in $(seq "$rounds"); do
  start=$(now); kubectl get configmap bench -o name >/dev/null; end=$(now)
  echo "$end - $start" | bc >> "$work/get"
  start=$(now); kubectl patch configmap bench --type=merge -p "{\"data\":{\"n\":\"$i\"}}" >/dev/null; end=$(now)
  echo "$end - $start" | bc >> "$work/patch"
done
printf 'kubectl get   round trip: median %.3f s over %d calls\n' "$(median < "$work/get")" "$rounds"
printf 'kubectl patch round trip: median %.3f s over %d calls\n' "$(median < "$work/patch")" "$rounds"

: > "$work/rollout"
for i in $(seq "$rollouts"); do
  start=$(now)
  kubectl apply -f "$work/manifests" >/dev/null
  kubectl rollout status deployment/hello --timeout=120s >/dev/null
  end=$(now)
  seconds=$(echo "$end - $start" | bc)
  echo "$seconds" >> "$work/rollout"
  printf 'apply to rollout done (3 replicas), round %d: %.2f s\n' "$i" "$seconds"
  kubectl delete -f "$work/manifests" --wait=true >/dev/null
  kubectl wait --for=delete pods -l app=hello --timeout=60s >/dev/null 2>&1 || true
done
printf 'apply to rolled out %.2f s\n' "$(median < "$work/rollout")"
