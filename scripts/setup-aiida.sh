#!/usr/bin/env bash
# Idempotent AiiDA set-up of the embedded default: profile (core.sqlite_dos + ZeroMQ broker) under
# <repo>/.aiida, the localhost computer and the codes from profiles/*.yaml, and a running daemon.
# Usage: scripts/setup-aiida.sh            (profile name: $MLFAIL_PROFILE or "mlfail")
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export AIIDA_PATH="${AIIDA_PATH:-$ROOT/.aiida}"
PROFILE="${MLFAIL_PROFILE:-mlfail}"
VENV="$ROOT/.venv"
VERDI="$VENV/bin/verdi"
export PATH="$VENV/bin:$PATH"
mkdir -p "$AIIDA_PATH"

if ! "$VERDI" profile show "$PROFILE" >/dev/null 2>&1; then
  echo "[setup] creating AiiDA profile '$PROFILE' (core.sqlite_dos + core.zeromq) in $AIIDA_PATH"
  "$VERDI" profile setup core.sqlite_dos -n --profile-name "$PROFILE" --set-as-default \
    --email "mlfail@localhost" --first-name aiida --last-name mlfail --institution aiida-mlfail \
    --broker core.zeromq --filepath "$AIIDA_PATH/storage/$PROFILE" >/dev/null
  "$VERDI" -p "$PROFILE" config set warnings.development_version False >/dev/null 2>&1 || true
  "$VERDI" -p "$PROFILE" config set daemon.default_workers 1 >/dev/null 2>&1 || true
fi

if ! "$VERDI" -p "$PROFILE" computer show localhost >/dev/null 2>&1; then
  echo "[setup] computer localhost (core.direct)"
  mkdir -p "$AIIDA_PATH/work"
  "$VERDI" -p "$PROFILE" computer setup -n --config "$ROOT/profiles/computer-localhost.yaml" \
    --work-dir "$AIIDA_PATH/work" >/dev/null
fi
if ! "$VERDI" -p "$PROFILE" computer test localhost >/dev/null 2>&1; then
  "$VERDI" -p "$PROFILE" computer configure core.local localhost -n \
    --config "$ROOT/profiles/computer-localhost-configure.yaml" >/dev/null
fi

create_code() {  # label executable
  local label=$1 exe=$2
  if "$VERDI" -p "$PROFILE" code show "$label@localhost" >/dev/null 2>&1; then return 0; fi
  echo "[setup] code $label@localhost -> $exe"
  "$VERDI" -p "$PROFILE" code create core.code.installed -n --config "$ROOT/profiles/code-$label.yaml" \
    --filepath-executable "$exe" >/dev/null
}
create_code lammps "$VENV/bin/mlfail-lmp"
create_code gap_fit "$VENV/bin/gap_fit"
create_code quip "$VENV/bin/mlfail-quip"
create_code explore "$VENV/bin/mlfail-explore"
create_code rematch "$VENV/bin/mlfail-rematch"
if command -v cp2k.psmp >/dev/null 2>&1; then
  create_code cp2k "$(command -v cp2k.psmp)"
fi

if ! "$VERDI" -p "$PROFILE" daemon status >/dev/null 2>&1; then
  echo "[setup] starting the AiiDA daemon"
  "$VERDI" -p "$PROFILE" daemon start 2 >/dev/null
else
  # workers keep the modules they imported: restart so that they run the code of this checkout
  echo "[setup] restarting the AiiDA daemon (picks up the current code)"
  "$VERDI" -p "$PROFILE" daemon restart >/dev/null
fi
echo "[setup] AiiDA ready: AIIDA_PATH=$AIIDA_PATH profile=$PROFILE"
