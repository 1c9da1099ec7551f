#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that take untrusted input, on the stable toolchain.
#
#   ci/fuzz.sh <target> [seconds] [libFuzzer flags...]   one target, 60 s by default
#   ci/fuzz.sh all [seconds]                              every target in turn
#   ci/fuzz.sh list                                       the target names
#
# Targets (fuzz/fuzz_targets/): startup_packet, frontend_messages, postgresql_conf, query,
# sasl_exchange, hba_conf.
#
# How: libFuzzer through the libfuzzer-sys crate, with the coverage instrumentation turned on
# by stable rustc flags (-C passes=sancov-module and LLVM's -sanitizer-coverage-* options, the
# same ones cargo-fuzz passes), so neither cargo-fuzz nor a nightly compiler is needed. No
# AddressSanitizer: it needs -Z sanitizer (nightly only), and the code fuzzed is safe Rust.
#
# Each run starts from the committed seeds in fuzz/corpus/<target>, copied to a scratch
# directory so the repository stays clean (FUZZ_KEEP_CORPUS=1 keeps and prints it). A crash, a
# failed assertion or a timeout leaves the input in fuzz/artifacts/<target>/ and makes the
# script exit non-zero; replay it with `ci/fuzz.sh <target> 0 fuzz/artifacts/<target>/crash-…`.
# The last line of each run gives the number of executions.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(startup_packet frontend_messages postgresql_conf query sasl_exchange hba_conf)

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 1 ] || usage
target=$1
seconds=${2:-60}
shift $(($# >= 2 ? 2 : 1))
[[ $seconds =~ ^[0-9]+$ ]] || usage

case $target in
    list) printf '%s\n' "${targets[@]}"; exit 0 ;;
    all) ;;
    *) [[ " ${targets[*]} " == *" $target "* ]] || { echo "unknown target '$target'" >&2; usage; } ;;
esac

# libfuzzer-sys compiles libFuzzer's C++ sources.
if ! command -v c++ >/dev/null 2>&1; then
    echo "== installing g++"
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq g++
    else sudo apt-get update -qq && sudo apt-get install -y -qq g++; fi
fi

host=$(rustc -vV | sed -n 's/^host: //p')
# Instrument the fuzzed code for libFuzzer: edge counters, their PC table (for coverage
# reports) and comparison tracing (so the fuzzer learns magic numbers such as protocol codes).
# --target keeps these flags off build scripts and proc macros.
export RUSTFLAGS="${RUSTFLAGS:-} --cfg fuzzing -C passes=sancov-module \
 -C llvm-args=-sanitizer-coverage-level=4 \
 -C llvm-args=-sanitizer-coverage-inline-8bit-counters \
 -C llvm-args=-sanitizer-coverage-pc-table \
 -C llvm-args=-sanitizer-coverage-trace-compares"
export CARGO_TARGET_DIR="$PWD/fuzz/target"
echo "== building fuzz targets ($host, $(rustc --version))"
build=(cargo build --release --manifest-path fuzz/Cargo.toml --target "$host" --bins)
if ! cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null 2>&1; then
    # A crate of the workspace gained a dependency since fuzz/Cargo.lock was written: build
    # anyway (the lock is brought up to date here) rather than skip the fuzzing.
    echo "warning: fuzz/Cargo.lock is out of date; updating it for this build (commit it)" >&2
    "${build[@]}"
else
    "${build[@]}" --locked
fi

run_one() {
    local t=$1 secs=$2
    shift 2
    local bin="fuzz/target/$host/release/$t"
    local scratch
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/pgipc-fuzz-$t.XXXXXX")
    cp -r "fuzz/corpus/$t/." "$scratch/"
    mkdir -p "fuzz/artifacts/$t"
    local log="$scratch.log"
    echo "== fuzz $t for ${secs}s from $(find "fuzz/corpus/$t" -type f | wc -l) seeds"
    local rc start=$SECONDS
    set +e
    if [ $# -gt 0 ] && [ -f "$1" ]; then
        # Replaying given inputs.
        "$bin" -print_final_stats=1 "$@" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    else
        # -timeout: an input taking 10 s is a hang; -rss_limit_mb: a leak or a huge allocation.
        # Lines per corpus change (NEW, REDUCE, NEW_FUNC) and the closing recommended
        # dictionary are left out of the output; the progress ("pulse") lines stay.
        "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="fuzz/artifacts/$t/" "$@" "$scratch" 2>&1 | tee "$log" |
            grep --line-buffered -v -E \
                '^#[0-9]+[[:space:]]+(NEW|REDUCE) |^[[:space:]]+NEW_FUNC|# Uses: [0-9]+$'
        rc=${PIPESTATUS[0]}
    fi
    set -e
    local execs
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
        echo "corpus kept in $scratch"
    else
        rm -rf "$scratch"
    fi
    rm -f "$log"
    if [ "$rc" -ne 0 ]; then
        echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; input in fuzz/artifacts/$t/" >&2
        return 1
    fi
    echo "fuzz $t: ${execs:-?} executions in $((SECONDS - start))s, no crash"
}

if [ "$target" = all ]; then
    failed=0
    for t in "${targets[@]}"; do
        run_one "$t" "$seconds" "$@" || failed=1
    done
    exit "$failed"
fi
run_one "$target" "$seconds" "$@"
