#!/usr/bin/env bash
# `cargo test -p <member>` for every workspace member on its own, one after the other, so that a
# feature or dev-dependency a member's tests need but only get through another member's
# (cargo unifies features across the packages of one invocation) fails here instead of hiding.
#
#   ci/each_member.sh              run each member's tests (what the acceptance asks)
#   ci/each_member.sh --no-run     only build each member's tests, benches and examples alone
#
# Prints one line per member (ok / FAILED, and the seconds it took) and a closing
# "each member: N ok, M failed" line; exits non-zero if any member failed. Members come from
# `cargo metadata`, never from a typed list.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=run
[ "${1:-}" = "--no-run" ] && mode=build
members=$(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json,sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
ok=0 failed=0 failures=()
results=()
for m in $members; do
    t0=$(date +%s)
    if [ "$mode" = build ]; then
        cargo test -p "$m" --locked --no-run --all-targets >"/tmp/each_member.$m.log" 2>&1
    else
        cargo test -p "$m" --locked --no-fail-fast >"/tmp/each_member.$m.log" 2>&1
    fi
    rc=$?
    secs=$(($(date +%s) - t0))
    if [ "$rc" -eq 0 ]; then
        ok=$((ok + 1)); results+=("ok      $m (${secs}s)")
    else
        failed=$((failed + 1)); failures+=("$m"); results+=("FAILED  $m (${secs}s, rc $rc)")
        tail -n 40 "/tmp/each_member.$m.log"
    fi
    echo "${results[-1]}"
    rm -f "/tmp/each_member.$m.log"
done
echo "each member ($mode): $ok ok, $failed failed${failures:+: ${failures[*]}}"
[ "$failed" -eq 0 ]
