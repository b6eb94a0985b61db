#!/usr/bin/env bash
# `ruff check`, then the whole test suite. Tests make their own temporary AiiDA profile (with ZeroMQ broker and daemon).
# The local one-node SLURM cluster (scripts/slurm-cluster.sh) is started first so that the SLURM
# tests (tests/integration/test_slurm.py) run: in CI (CI=true) a cluster that cannot start is an
# error; elsewhere the SLURM tests are skipped with the reason. The cluster is left running (like
# the daemon): `scripts/slurm-cluster.sh stop` or `make stop` stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$ROOT/.venv/bin:$PATH"
export AIIDA_PATH="${AIIDA_PATH:-$ROOT/.aiida}"
cd "$ROOT"
# Lint first (configuration: [tool.ruff] in pyproject.toml): any finding fails the run before the tests start.
echo "[test] ruff check aiida_mlfail tests workflows benchmarks"
"$ROOT/.venv/bin/ruff" check aiida_mlfail tests workflows benchmarks
if [ "${MLFAIL_SLURM:-auto}" != 0 ]; then
  if bash "$ROOT/scripts/slurm-cluster.sh" start; then
    eval "$(bash "$ROOT/scripts/slurm-cluster.sh" env)"
  elif [ "${CI:-}" = true ]; then
    echo "[test] ERROR: the local SLURM cluster does not start (CI=true: the SLURM tests must run)" >&2
    exit 1
  else
    echo "[test] the local SLURM cluster does not start: the SLURM tests will be skipped"
  fi
fi
exec "$ROOT/.venv/bin/pytest" -ra --durations=30 "$@" tests
