#!/usr/bin/env bash
# Debian packages the project uses, installed only when running as root and missing.
# cp2k (CP2K reference calculations) is optional: installed when available from apt.
set -uo pipefail
PACKAGES=(cp2k)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "[system] not root or no apt-get: skipping ${missing[*]} (optional)"; exit 0
fi
echo "[system] apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || echo "[system] could not install ${missing[*]} (optional, continuing)"
