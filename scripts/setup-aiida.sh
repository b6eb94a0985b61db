#!/usr/bin/env bash
# Idempotent AiiDA set-up of the embedded default: profile (core.sqlite_dos + ZeroMQ broker) under
# <repo>/.aiida, caching of the labelling jobs (scripts/setup-caching.sh), the localhost computer and
# the codes from profiles/*.yaml, and a running daemon.
# When the local SLURM cluster (scripts/slurm-cluster.sh) is up, also the `slurm` computer
# (core.slurm over core.local) and the same codes on it (lammps@slurm, gap_fit@slurm, ...).
# Usage: scripts/setup-aiida.sh            (profile name: $MLFAIL_PROFILE or "mlfail")
#   MLFAIL_SLURM=1  start the local SLURM cluster first and set up the `slurm` computer (error if impossible)
#   MLFAIL_SLURM=0  never set up the `slurm` computer; unset: set it up when the cluster is up
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
  "$VERDI" profile setup core.sqlite_dos -n --config "$ROOT/profiles/profile-default.yaml" \
    --profile-name "$PROFILE" --filepath "$AIIDA_PATH/storage/$PROFILE" >/dev/null
  "$VERDI" -p "$PROFILE" config set warnings.development_version False >/dev/null 2>&1 || true
  "$VERDI" -p "$PROFILE" config set daemon.default_workers 1 >/dev/null 2>&1 || true
fi

# AiiDA caching of the labelling jobs (CP2K and LAMMPS single points): README "Caching"
VERDI="$VERDI" bash "$ROOT/scripts/setup-caching.sh" "$PROFILE"

# what exists already (one verdi call each: a second run is quick)
computers_all=$("$VERDI" -p "$PROFILE" computer list -a -r 2>/dev/null | sed 's/^[* ]*//')
computers_configured=$("$VERDI" -p "$PROFILE" computer list -r 2>/dev/null | sed 's/^[* ]*//')
codes=$("$VERDI" -p "$PROFILE" code list -A -r -P full_label 2>/dev/null)
has() { grep -qxF "$2" <<<"$1"; }

if ! has "$computers_all" localhost; then
  echo "[setup] computer localhost (core.direct)"
  mkdir -p "$AIIDA_PATH/work"
  "$VERDI" -p "$PROFILE" computer setup -n --config "$ROOT/profiles/computer-localhost.yaml" \
    --work-dir "$AIIDA_PATH/work" >/dev/null
fi
if ! has "$computers_configured" localhost; then
  "$VERDI" -p "$PROFILE" computer configure core.local localhost -n \
    --config "$ROOT/profiles/computer-localhost-configure.yaml" >/dev/null
fi

create_code() {  # label executable [computer]
  local label=$1 exe=$2 computer=${3:-localhost}
  if has "$codes" "$label@$computer"; then return 0; fi
  echo "[setup] code $label@$computer -> $exe"
  "$VERDI" -p "$PROFILE" code create core.code.installed -n --config "$ROOT/profiles/code-$label.yaml" \
    --computer "$computer" --filepath-executable "$exe" >/dev/null
}
create_codes() {  # computer
  create_code lammps "$VENV/bin/mlfail-lmp" "$1"
  create_code gap_fit "$VENV/bin/gap_fit" "$1"
  create_code quip "$VENV/bin/mlfail-quip" "$1"
  create_code explore "$VENV/bin/mlfail-explore" "$1"
  create_code rematch "$VENV/bin/mlfail-rematch" "$1"
  if command -v cp2k.psmp >/dev/null 2>&1; then
    create_code cp2k "$(command -v cp2k.psmp)" "$1"
  fi
}
create_codes localhost

# the local SLURM cluster: computer `slurm` and the same codes on it
slurm_up=0
case "${MLFAIL_SLURM:-auto}" in
  1|yes|true)
    bash "$ROOT/scripts/slurm-cluster.sh" start || { echo "[setup] ERROR: MLFAIL_SLURM=1 but the local SLURM cluster does not start" >&2; exit 1; }
    slurm_up=1 ;;
  0|no|false) ;;
  *) bash "$ROOT/scripts/slurm-cluster.sh" status >/dev/null 2>&1 && slurm_up=1 ;;
esac
if [ $slurm_up = 1 ]; then
  eval "$(bash "$ROOT/scripts/slurm-cluster.sh" env)"   # SLURM_CONF for sbatch/squeue of the daemon
  if ! has "$computers_all" slurm; then
    echo "[setup] computer slurm (core.slurm over core.local)"
    mkdir -p "$AIIDA_PATH/work-slurm"
    "$VERDI" -p "$PROFILE" computer setup -n --config "$ROOT/profiles/computer-slurm.yaml" \
      --work-dir "$AIIDA_PATH/work-slurm" >/dev/null
    # poll squeue every 2 s (AiiDA's default is 10 s; a local cluster answers at once)
    "$VENV/bin/python" -c "from aiida import load_profile, orm; load_profile('$PROFILE'); \
orm.load_computer('slurm').set_minimum_job_poll_interval(2.0)"
  fi
  if ! has "$computers_configured" slurm; then
    "$VERDI" -p "$PROFILE" computer configure core.local slurm -n \
      --config "$ROOT/profiles/computer-slurm-configure.yaml" >/dev/null
  fi
  create_codes slurm
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
