#!/usr/bin/env bash
# AiiDA caching of the labelling jobs, idempotently (called by scripts/setup-aiida.sh; README "Caching").
# A CP2K or LAMMPS single point whose inputs (structure/frames, reference parameters, code, resources)
# hash like those of a job that FINISHED OK is not run again: AiiDA links a copy of that job's outputs.
# Failed jobs are never reused (LammpsCalculation.is_valid_cache, workflows.common.forbid_cache_source).
# Usage: scripts/setup-caching.sh PROFILE      (verdi from $VERDI or PATH; AIIDA_PATH as usual)
# Takes effect for the daemon after `verdi daemon restart` (setup-aiida.sh restarts it).
set -euo pipefail
PROFILE=${1:?usage: $0 PROFILE}
VERDI=${VERDI:-verdi}
# the CalcJob entry points whose finished jobs are reused (caching.enabled_for of the profile):
#   aiida.calculations:cp2k            aiida-cp2k's Cp2kCalculation (DFT single points, AIMD)
#   aiida.calculations:mlfail.lammps   our LAMMPS job (classical single points; also sampling / GAP MD,
#                                      deterministic for the same script incl. seed, code and resources)
CACHED_CALCJOBS=(aiida.calculations:cp2k aiida.calculations:mlfail.lammps)

current=$("$VERDI" -p "$PROFILE" config get caching.enabled_for 2>/dev/null || echo '[]')
for identifier in "${CACHED_CALCJOBS[@]}"; do
  if ! grep -qF "'$identifier'" <<<"$current"; then
    echo "[setup] caching enabled for $identifier"
    "$VERDI" -p "$PROFILE" config set --append caching.enabled_for "$identifier" >/dev/null
  fi
done
