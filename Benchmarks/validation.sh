#!/usr/bin/env bash
# How long does `deploy validate` take on large and hostile files? A pipeline of STAGES stages
# (default 20,000, each deploying an undeclared environment: one error each) and a 9-level YAML
# alias bomb used as a key and as a value. Validation must stay linear and bounded.
#   DEPLOY=path/to/deploy Benchmarks/validation.sh   (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
stages=${STAGES:-20000}
if [ -z "${DEPLOY:-}" ]; then
  swift build -c release --static-swift-stdlib --product deploy >/dev/null
  DEPLOY=$PWD/.build/release/deploy
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

{
  echo "app: big"
  echo "stages:"
  for i in $(seq 1 "$stages"); do echo "  - { name: s$i, deploy: env$i }"; done
} > "$work/big.yml"
half=$((stages / 2))
{
  echo "app: big"
  echo "stages:"
  for i in $(seq 1 "$half"); do echo "  - { name: s$i, deploy: env$i }"; done
} > "$work/half.yml"

seconds() { local s e; s=$(date +%s.%N); "$DEPLOY" validate "$1" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
full=$(seconds "$work/big.yml")
part=$(seconds "$work/half.yml")
keys=$(seconds Tests/Corpus/alias-bomb-keys.yml)
values=$(seconds Tests/Corpus/alias-bomb-values.yml)
printf 'validate %d stages:       %.2f s\n' "$stages" "$full"
printf 'validate %d stages:       %.2f s (ratio %.2f: 2.0 is linear)\n' "$half" "$part" "$(echo "$full / $part" | bc -l)"
printf 'alias bomb as a key:      %.3f s\n' "$keys"
printf 'alias bomb as a value:    %.3f s\n' "$values"
printf 'validation of %d stages %.2f s\n' "$stages" "$full"
