#!/bin/sh
# The issue's 1e5 messages of random sizes (0 .. 4 queue sizes) through 3 workers, every byte
# verified, on both process models (the test suite's trial runs 1e4). About a minute each on a
# shared 2-CPU machine. Usage: ci/test_shm_mq_soak.sh [messages]
set -eu
cd "$(dirname "$0")/.."
PGIPC_SHM_MQ_MESSAGES="${1:-100000}" exec cargo test --locked -p pgipc-tests --test test_shm_mq -- \
    --nocapture "random sizes"
