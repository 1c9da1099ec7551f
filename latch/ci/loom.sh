#!/usr/bin/env bash
# Loom model check of the latch protocol (too slow for every CI run; the exhaustive
# interleaving test in src/model.rs runs with plain `cargo test`).
# Usage: latch/ci/loom.sh   (from the workspace root or anywhere)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test -p pgipc-latch --test loom --release -- --nocapture "$@"
