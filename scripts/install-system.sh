#!/usr/bin/env bash
# Debian packages the project uses, installed only when running as root and missing.
#   scripts/install-system.sh         cp2k (CP2K reference calculations), optional: a failure is not an error
#   scripts/install-system.sh slurm   slurm-wlm + munge for the local test cluster (scripts/slurm-cluster.sh);
#                                     required: exits non-zero when they cannot be installed
set -uo pipefail
GROUP="${1:-optional}"
case "$GROUP" in
  optional) PACKAGES=(cp2k); REQUIRED=0 ;;
  slurm) PACKAGES=(slurm-wlm munge); REQUIRED=1 ;;
  *) echo "usage: $0 [slurm]" >&2; exit 2 ;;
esac
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if [ $REQUIRED = 1 ]; then echo "[system] not root or no apt-get: cannot install ${missing[*]}" >&2; exit 1; fi
  echo "[system] not root or no apt-get: skipping ${missing[*]} (optional)"; exit 0
fi
echo "[system] apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  exit 0
fi
if [ $REQUIRED = 1 ]; then echo "[system] could not install ${missing[*]}" >&2; exit 1; fi
echo "[system] could not install ${missing[*]} (optional, continuing)"
