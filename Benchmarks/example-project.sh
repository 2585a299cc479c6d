# Sourced by the benchmarks that deploy the example app (rollback.sh, nginx-recovery.sh): builds
# deploy, starts a podman API service and a registry of the benchmark's own, and makes a git
# repository holding the example app, then leaves the shell in it. The caller sets
# `environments` (what to tear down at exit) before sourcing; it gets `root`, `deploy`, `work`,
# `repo`, `registry_port` and `free_port`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

swift build >/dev/null
deploy=$root/.build/debug/deploy
work=$(mktemp -d)
services=$work/services
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
registry_port=$(free_port)
repo=$work/repo
cleanup() {
  if [ -d "$repo" ]; then
    (cd "$repo" && for e in $environments; do "$deploy" teardown "$e" >/dev/null 2>&1 || true; done)
  fi
  SLIPWAY_SERVICES=$services REGISTRY_PORT=$registry_port "$root/scripts/services" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
SLIPWAY_SERVICES=$services REGISTRY_PORT=$registry_port scripts/services start podman registry >/dev/null
eval "$(SLIPWAY_SERVICES=$services REGISTRY_PORT=$registry_port scripts/services env)"
command -v docker >/dev/null || export DOCKER=podman
export CI=true

mkdir -p "$repo/Examples"
cp -r Examples/hello "$repo/Examples/hello"
rm -f "$repo/Examples/hello/busybox" "$repo/Examples/hello/app/broken" "$repo/Examples/hello/app/version"
cd "$repo"
git init -q -b main
git config user.name bench && git config user.email bench@example.com
