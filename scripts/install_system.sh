#!/usr/bin/env bash
# Debian packages the default models and their tests use: flite (fallback voice), pocketsphinx-testdata
# (LibriVox clips for the speech-recognition tests), chromium (the playground's browser tests, driven by
# Playwright with executable_path=/usr/bin/chromium; Playwright's own browser download is never used). Installs only what is missing; needs root for apt-get.
set -euo pipefail
wanted=(flite pocketsphinx-testdata chromium)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: Debian packages ${missing[*]} are missing and cannot be installed here (needs root and apt-get);" \
       "flite voice, LibriVox and playground browser tests will be skipped." >&2
  exit 0
fi
echo "Installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
