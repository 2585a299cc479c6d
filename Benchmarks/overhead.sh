#!/usr/bin/env bash
# What does Slipway cost per step? Runs a 200-step pipeline of `true` through `deploy` (recording
# every step in a fresh SQLite store) and the same 200 commands from a bash loop, several times,
# and prints the median of each and their ratio. Target: ratio under 1.5.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-200}
rounds=${ROUNDS:-15}

swift build -c release --static-swift-stdlib --product deploy >/dev/null
deploy=$PWD/.build/release/deploy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
true_bin=$(type -P true)   # the same external binary in both: bash's builtin would not fork

{
  echo "app: overhead"
  echo "environments: { bench: {} }"
  echo "stages:"
  for i in $(seq 1 "$steps"); do echo "  - { name: s$i, run: [$true_bin] }"; done
} > "$work/pipeline.yml"

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
minimum() { sort -g | head -1; }

deploy_times=()
bash_times=()
for _ in $(seq 1 "$rounds"); do
  rm -f "$work"/state.sqlite*
  start=$(now)
  CI=true "$deploy" bench --pipeline "$work/pipeline.yml" --state "$work/state.sqlite" >/dev/null
  deploy_times+=("$(echo "$(now) - $start" | bc)")

  start=$(now)
  bash -c 'for i in $(seq 1 "$1"); do "$2"; done' _ "$steps" "$true_bin"
  bash_times+=("$(echo "$(now) - $start" | bc)")
done

recorded=$(sqlite3 "$work/state.sqlite" "SELECT count(*) FROM step WHERE outcome = 'succeeded'")
d=$(printf '%s\n' "${deploy_times[@]}" | median)
b=$(printf '%s\n' "${bash_times[@]}" | median)
dmin=$(printf '%s\n' "${deploy_times[@]}" | minimum)
bmin=$(printf '%s\n' "${bash_times[@]}" | minimum)
echo "steps per run:        $steps (recorded as succeeded in the last run: $recorded)"
echo "rounds:               $rounds, alternating"
printf 'deploy (with record): median %.3f s, best %.3f s\n' "$d" "$dmin"
printf 'bash loop:            median %.3f s, best %.3f s\n' "$b" "$bmin"
printf 'ratio of best times:  %.2f\n' "$(echo "$dmin / $bmin" | bc -l)"
printf 'overhead ratio %.2f\n' "$(echo "$d / $b" | bc -l)"
