#!/usr/bin/env bash
# The whole test suite. Tests make their own temporary AiiDA profile (with ZeroMQ broker and daemon).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$ROOT/.venv/bin:$PATH"
export AIIDA_PATH="${AIIDA_PATH:-$ROOT/.aiida}"
cd "$ROOT"
exec "$ROOT/.venv/bin/pytest" -ra --durations=15 "$@" tests
