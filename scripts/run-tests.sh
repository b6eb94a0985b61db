#!/usr/bin/env bash
# The whole test suite. Tests make their own temporary AiiDA profile (with ZeroMQ broker and daemon).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$ROOT/.venv/bin:$PATH"
cd "$ROOT"
exec "$ROOT/.venv/bin/pytest" -ra --durations=15 "$@" tests
