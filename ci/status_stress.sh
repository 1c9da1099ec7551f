#!/usr/bin/env bash
# The Backend Status Array's torn-read stress test at full size: writer processes rewrite
# their entries with the change-count protocol while reader processes copy and check them,
# 10 million reads in all (the test suite runs 100 000). Release build, so it takes minutes,
# not hours; the closing line counts the reads, writes and torn copies that happened.
#
#   ci/status_stress.sh            10 000 000 reads
#   ci/status_stress.sh N          N reads
set -euo pipefail
cd "$(dirname "$0")/.."
reads=${1:-10000000}
PGIPC_STATUS_STRESS_READS=$reads cargo test --locked --release -p pgipc-backend-status \
    --test torn_reads -- --nocapture --test-threads 1
