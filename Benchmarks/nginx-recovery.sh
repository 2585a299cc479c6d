#!/usr/bin/env bash
# How long are users refused when nginx's master has been killed? Its orphaned worker keeps the
# port and serves; the next deploy (here `deploy rollback --to`, alternating between two releases)
# finds it by the control socket it holds, stops it and starts a new master. A client on this
# machine asks over a fresh connection each time, without pause, through the whole command.
# ROUNDS (default 5) kills; the figures are the failed requests and the longest run of failures
# (from the first failed request to the next answer) per round. The last line is the headline:
# the longest gap, in milliseconds, over all rounds.
set -euo pipefail
rounds=${ROUNDS:-5}
environments="web"
# shellcheck source=Benchmarks/example-project.sh
source "$(dirname "$0")/example-project.sh"
listen_port=$(free_port)
printf '.slipway/\nExamples/hello/busybox\nExamples/hello/app/version\n' > .gitignore
cat > slipway.yml <<YAML
app: recoverybench
image: 127.0.0.1:$registry_port/recoverybench
environments:
  web:
    target: { docker: { listen: "127.0.0.1:$listen_port" } }
    strategy: rolling
stages:
  - { name: prepare, run: [Examples/hello/prepare] }
  - { name: build, build: { context: Examples/hello, file: Containerfile, args: { VERSION: "\${VERSION}" }, no_cache: true } }
  - { name: push, push: {} }
  - { name: web, deploy: web }
YAML
git add -A && git commit -qm "feat: hello" && git tag v1.0.0
"$deploy" web >/dev/null
echo 1.1.0 > CHANGES && git add -A && git commit -qm "feat: 1.1.0" && git tag v1.1.0
"$deploy" web >/dev/null

# The client: GET / over a new connection until the flag file goes; prints failures and the gap.
cat > "$work/client.py" <<'PY'
import os, socket, sys, time
port, flag = int(sys.argv[1]), sys.argv[2]
failed = ok = 0
gap = longest = 0.0
first_failure = None
while os.path.exists(flag):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /version HTTP/1.0\r\nHost: x\r\n\r\n")
            answer = s.recv(64)
        good = answer.startswith(b"HTTP/1.") and b" 200 " in answer
    except OSError:
        good = False
    now = time.monotonic()
    if good:
        ok += 1
        if first_failure is not None:
            longest = max(longest, now - first_failure)
            first_failure = None
    else:
        failed += 1
        if first_failure is None:
            first_failure = now
print(failed, ok, round(longest * 1000, 1))
PY

longest_all=0
for round in $(seq "$rounds"); do
  master=$(cat .slipway/proxy/web/nginx.pid)
  kill -KILL "$master"
  while kill -0 "$master" 2>/dev/null; do :; done
  flag=$work/running
  touch "$flag"
  python3 "$work/client.py" "$listen_port" "$flag" > "$work/client.out" &
  client=$!
  to=$([ $((round % 2)) -eq 1 ] && echo 1.0.0 || echo 1.1.0)
  "$deploy" rollback web --to "$to" --reason "benchmark round $round" >/dev/null
  rm -f "$flag"
  wait "$client"
  read -r failed ok gap < "$work/client.out"
  echo "round $round: master killed, rollback to $to: $failed of $((failed + ok)) requests refused, longest gap $gap ms"
  longest_all=$(python3 -c "print(max($longest_all, $gap))")
done
echo "nginx recovery gap $longest_all ms"
