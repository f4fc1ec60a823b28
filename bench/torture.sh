#!/usr/bin/env bash
# The long crash-torture run of the notifier (issue #21): the test of tests/it/torture.rs with
# 100 kill -9 (or $1) at seeded random moments. Prints the summary line the test writes.
# Needs python3-aiosmtpd (as the test suite does). About 6 s per crash.
set -euo pipefail
cd "$(dirname "$0")/.."
CRASHES=${1:-100}
SEED=${2:-2026}
THONGSUOT_TORTURE_CRASHES=$CRASHES THONGSUOT_TORTURE_SEED=$SEED CI=1 \
  cargo test --locked --test it -- torture:: --nocapture 2>&1 | grep -E "^torture:|test result|panicked|lost|never told"
