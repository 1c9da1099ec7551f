#!/usr/bin/env bash
# Loom model check of the real latch code (tests/loom.rs): the set/reset/wait protocol, and
# postmaster death in a latch-only wait, including the old check-then-publish order, which
# loom must find. It needs `--cfg loom`, hence its own target directory: about 40 s to build
# from cold, under a second to run. .ci/run runs it after `cargo test`; plain `cargo test`
# runs the exhaustive interleaving model of the same protocols (src/model.rs) instead.
# Usage: latch/ci/loom.sh [test-binary args]   (from the workspace root or anywhere)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test --locked -p pgipc-latch --test loom --release -- "$@"
