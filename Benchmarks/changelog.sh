#!/usr/bin/env bash
# How fast is a changelog over a long range? Builds a repository of 100,000 commits with
# `git fast-import`, then times `deploy changelog` over a 50,000-commit range against
# `git log --oneline A..B`, and prints both times, the ratio and deploy's peak memory.
# Target: no slower than git itself (ratio at most 1.0).
# Then many tags: TAGS (default 3,000) version tags over twice as many commits, HEAD a few
# commits past the last; `deploy changelog` (which finds the version and the base among the
# tags) against `git describe --tags`, in the full repository and in a shallow clone of it.
set -euo pipefail
cd "$(dirname "$0")/.."
commits=${COMMITS:-100000}
from=$((commits / 4))
to=$((from + commits / 2))
rounds=${ROUNDS:-5}

swift build -c release --static-swift-stdlib --product deploy >/dev/null
deploy=$PWD/.build/release/deploy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo=$work/repo
git init -q -b main "$repo"

# A fast-import stream: COMMITS commits in a line (a file changes every commit, Conventional
# Commit subjects), then the tags named on the command line as NAME:COMMIT.
stream() {
  python3 - "$@" <<'PY'
import sys
commits, tags = int(sys.argv[1]), [arg.split(":") for arg in sys.argv[2:]]
out = sys.stdout
kinds = ["feat(api): add endpoint", "fix(core): handle empty input", "docs: explain the option", "chore: tidy"]
for i in range(1, commits + 1):
    message = f"{kinds[i % len(kinds)]} {i}\n".encode()
    content = f"line {i}\n".encode()
    out.write(f"commit refs/heads/main\nmark :{i}\n")
    out.write(f"author Dev <dev@example.com> {1700000000 + i} +0000\ncommitter Dev <dev@example.com> {1700000000 + i} +0000\n")
    out.write(f"data {len(message)}\n{message.decode()}")
    if i > 1:
        out.write(f"from :{i - 1}\n")
    out.write(f"M 100644 inline src/file{i % 50}.txt\ndata {len(content)}\n{content.decode()}\n")
for name, mark in tags:
    out.write(f"reset refs/tags/{name}\nfrom :{mark}\n\n")
PY
}
# Two version tags bound the measured range.
stream "$commits" "v1.0.0:$from" "v2.0.0:$to" > "$work/stream"
git -C "$repo" fast-import --quiet < "$work/stream"
git -C "$repo" checkout -q v2.0.0
range=$(git -C "$repo" rev-list --count v1.0.0..v2.0.0)

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# Times `deploy changelog` and `git log --oneline` over the range, alternating, ROUNDS times;
# prints both medians (the outputs go to changelog$1.md and git$1.log).
range_times() {
  local times=() git_times=()
  for _ in $(seq 1 "$rounds"); do
    start=$(now)
    (cd "$repo" && "$deploy" changelog --since v1.0.0 > "$work/changelog$1.md")
    times+=("$(echo "$(now) - $start" | bc)")
    start=$(now)
    git -C "$repo" log --oneline v1.0.0..v2.0.0 > "$work/git$1.log"
    git_times+=("$(echo "$(now) - $start" | bc)")
  done
  echo "$(printf '%s\n' "${times[@]}" | median) $(printf '%s\n' "${git_times[@]}" | median)"
}
read -r d g <<< "$(range_times "")"
peak=$(cd "$repo" && /usr/bin/time -f %M "$deploy" changelog --since v1.0.0 2>&1 >/dev/null | tail -1)
git_peak=$(/usr/bin/time -f %M git -C "$repo" log --oneline v1.0.0..v2.0.0 2>&1 >/dev/null | tail -1)
listed=$(grep -c '^- ' "$work/changelog.md")
echo "repository:           $commits commits; range v1.0.0..v2.0.0: $range commits ($listed listed by deploy)"
printf 'deploy changelog:     %.3f s (median of %d), peak memory %d MiB\n' "$d" "$rounds" "$((peak / 1024))"
printf 'git log --oneline:    %.3f s (median of %d), peak memory %d MiB\n' "$g" "$rounds" "$((git_peak / 1024))"

# The same range once the repository has git's commit-graph file (what `git gc` and `git
# maintenance` write; fast-import writes none): git log reads parents and dates from it instead of
# inflating each commit; deploy reads each commit's message either way.
git -C "$repo" commit-graph write --reachable
read -r gd gg <<< "$(range_times -graph)"
cmp -s "$work/changelog.md" "$work/changelog-graph.md" || echo "warning: the changelog differs with the commit-graph file"
printf 'with a commit-graph:  deploy changelog %.3f s, git log --oneline %.3f s (medians of %d), ratio %.2f\n' "$gd" "$gg" "$rounds" "$(echo "$gd / $gg" | bc -l)"
rm -f "$repo/.git/objects/info/commit-graph"
rm -rf "$repo/.git/objects/info/commit-graphs"

# Many tags.
tags=${TAGS:-3000}
tagged=$work/tagged
git init -q -b main "$tagged"
# v0.1.0, v0.2.0 … on every second commit, HEAD three commits past the last (one argument each:
# the splitting is wanted).
# shellcheck disable=SC2046
stream $((tags * 2 + 3)) $(for t in $(seq 1 "$tags"); do echo "v$((t / 100)).$((t % 100)).0:$((t * 2))"; done) > "$work/tags-stream"
git -C "$tagged" fast-import --quiet < "$work/tags-stream"
git -C "$tagged" checkout -q main
git -C "$tagged" pack-refs --all
git clone -q --depth 200 --no-single-branch "file://$tagged" "$work/shallow"
git -C "$work/shallow" fetch -q --depth 200 --tags origin 2>/dev/null || true
many() {
  local directory=$1 times=() git_times=()
  for _ in $(seq 1 "$rounds"); do
    start=$(now)
    (cd "$directory" && "$deploy" changelog > /dev/null 2>&1)
    times+=("$(echo "$(now) - $start" | bc)")
    start=$(now)
    git -C "$directory" describe --tags > /dev/null 2>&1 || true
    git_times+=("$(echo "$(now) - $start" | bc)")
  done
  echo "$(printf '%s\n' "${times[@]}" | median) $(printf '%s\n' "${git_times[@]}" | median)"
}
read -r full_deploy full_git <<< "$(many "$tagged")"
read -r shallow_deploy shallow_git <<< "$(many "$work/shallow")"
printf 'many tags (%d):       deploy changelog %.3f s, git describe --tags %.3f s (medians of %d)\n' "$tags" "$full_deploy" "$full_git" "$rounds"
printf 'same, shallow clone:  deploy changelog %.3f s, git describe --tags %.3f s\n' "$shallow_deploy" "$shallow_git"
printf 'many-tags ratio %.2f (deploy changelog / git describe)\n' "$(echo "$full_deploy / $full_git" | bc -l)"
printf 'changelog ratio %.2f\n' "$(echo "$d / $g" | bc -l)"
