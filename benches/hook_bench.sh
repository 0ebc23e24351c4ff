#!/usr/bin/env bash
# Per-event cost of `hermes-operator hook` (the whole process, as Hermes pays it:
# fork + exec + read stdin + decide + record), release build.
#
#   benches/hook_bench.sh [N]        # N invocations per case (default 200)
#   HERMES_OPERATOR_BIN=/path/to/binary SKIP_BUILD=1 benches/hook_bench.sh   # another build
#
# Cases: an operator session's pre_tool_call that is allowed (config parse,
# events.db append; the state.db lookup happens on a session's first event
# only, later ones read its marker file) and one that is blocked, an operator
# post_tool_call, and a native session's pre_tool_call (no database opened).
# The state.db is made by the real Hermes (tests/fixtures/hermes_fixture.py in
# the test venv: $HERMES_OPERATOR_TEST_VENV or ~/.cache/hermes-operator-test/venv-0.19.0).
# Prints the median and p90 wall time per case in milliseconds.
set -euo pipefail

N=${1:-200}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --quiet
fi
bin=${HERMES_OPERATOR_BIN:-$root/target/release/hermes-operator}
venv=${HERMES_OPERATOR_TEST_VENV:-$HOME/.cache/hermes-operator-test/venv-0.19.0}
py="$venv/bin/python"
[ -x "$py" ] || { echo "no Hermes test venv at $venv (run the integration tests once)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
home="$tmp/home"
mkdir -p "$home"
made=$("$py" tests/fixtures/hermes_fixture.py make --db "$home/state.db" \
  --native 200 --operator 200 --users alice,bob --seed 7)
op_id=$(printf '%s' "$made" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["operator_ids"][0])')
native_id=$(printf '%s' "$made" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["native_ids_sample"][0])')

payload() { # event tool session
  printf '{"hook_event_name": "%s", "tool_name": "%s", "tool_input": {"path": "/etc/hostname"}, "session_id": "%s", "cwd": "/tmp", "extra": {"tool_call_id": "call_1", "task_id": "", "turn_id": "t1", "result": "{\\"content\\": \\"hello\\"}", "status": "ok", "duration_ms": 3, "error_type": null}}' "$1" "$2" "$3"
}
payload pre_tool_call read_file "$op_id" >"$tmp/op_allow.json"
payload pre_tool_call terminal "$op_id" >"$tmp/op_block.json"
payload post_tool_call read_file "$op_id" >"$tmp/op_post.json"
payload pre_tool_call terminal "$native_id" >"$tmp/native.json"

# Sanity: the blocked case blocks, the others print nothing.
out=$("$bin" --hermes-home "$home" hook <"$tmp/op_block.json")
case "$out" in *'"decision":"block"'*) ;; *) echo "expected a block, got: $out" >&2; exit 1 ;; esac
[ -z "$("$bin" --hermes-home "$home" hook <"$tmp/native.json")" ] || { echo "native call was answered" >&2; exit 1; }

measure() { # name file
  local name=$1 file=$2 i t0 t1
  : >"$tmp/$name.times"
  for ((i = 0; i < N; i++)); do
    t0=$EPOCHREALTIME
    "$bin" --hermes-home "$home" hook <"$file" >/dev/null
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >>"$tmp/$name.times"
  done
  awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' "$tmp/$name.times" | sort -n >"$tmp/$name.sorted"
  local med p90
  med=$(awk -v n="$N" 'NR == int((n + 1) / 2) { print }' "$tmp/$name.sorted")
  p90=$(awk -v n="$N" 'NR == int(n * 0.9) { print }' "$tmp/$name.sorted")
  printf '%-28s median %7s ms   p90 %7s ms   (n=%d)\n' "$name" "$med" "$p90" "$N"
}

echo "hermes-operator hook, release build, $(nproc) CPUs, $N runs per case"
measure native_pre_tool_call "$tmp/native.json"
measure operator_pre_tool_call_allow "$tmp/op_allow.json"
measure operator_pre_tool_call_block "$tmp/op_block.json"
measure operator_post_tool_call "$tmp/op_post.json"
# Baseline: the cost of starting any process from bash.
: >"$tmp/true.times"
for ((i = 0; i < N; i++)); do t0=$EPOCHREALTIME; /bin/true; t1=$EPOCHREALTIME; echo "$t0 $t1" >>"$tmp/true.times"; done
awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' "$tmp/true.times" | sort -n |
  awk -v n="$N" 'NR == int((n + 1) / 2) { printf "%-28s median %7s ms\n", "baseline /bin/true", $1 }'
events=$("$bin" --hermes-home "$home" --json audit verify | "$py" -c 'import json,sys; print(json.load(sys.stdin)["events"])')
echo "events recorded: $events (chain verified)"
