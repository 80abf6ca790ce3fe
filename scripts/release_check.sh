#!/usr/bin/env bash
# Release checks: build the collection, install the tarball into a clean virtualenv (ansible-core and the
# runtime libraries only), and prove that ansible-doc works for every module and plugin, that the
# installed inventory plugin parses the shipped topology, that the changelog lints, and that
# ansible-builder can create the execution environment's build context.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=$repo/build/release
python=${PYTHON:-$repo/.venv/bin/python}
rm -rf "$out"
mkdir -p "$out"

version=$(sed -n 's/^version: *//p' galaxy.yml)
.venv/bin/ansible-galaxy collection build --force --output-path "$out" . >/dev/null
tarball=$out/thinkheads-phoenix-$version.tar.gz
test -f "$tarball"
echo "built $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"
if tar -tzf "$tarball" | grep -E '^(\.venv|build|collections|\.ci)/' >/dev/null; then
  echo "error: the tarball contains build or environment directories" >&2
  exit 1
fi

"$python" -m venv "$out/venv"
"$out/venv/bin/pip" install --quiet --disable-pip-version-check -c constraints.txt \
  ansible-core==2.21.5 -r requirements-ee.txt
# An empty ansible.cfg: nothing from the checkout (its ./collections path) may leak into this check.
printf '[defaults]\n' >"$out/ansible.cfg"
export ANSIBLE_CONFIG=$out/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$out/collections ANSIBLE_NOCOLOR=1
cd "$out"
"$out/venv/bin/ansible-galaxy" collection install --no-deps -p "$out/collections" "$tarball" >/dev/null

listing=$("$out/venv/bin/ansible-doc" -l thinkheads.phoenix)
echo "$listing"
modules=$(cd "$repo/plugins/modules" && ls ./*.py | sed 's|^\./||; s|\.py$||')
for module in $modules; do
  grep -q "^thinkheads\.phoenix\.$module " <<<"$listing" || { echo "error: ansible-doc -l lacks $module" >&2; exit 1; }
  "$out/venv/bin/ansible-doc" "thinkheads.phoenix.$module" >/dev/null
done
"$out/venv/bin/ansible-doc" -t inventory thinkheads.phoenix.phoenix >/dev/null
installed=$out/collections/ansible_collections/thinkheads/phoenix
graph=$(ANSIBLE_INVENTORY_ENABLED=thinkheads.phoenix.phoenix ANSIBLE_INVENTORY_UNPARSED_FAILED=1 \
  "$out/venv/bin/ansible-inventory" -i "$installed/inventory/phoenix.yml" --graph)
grep -q -- '--801' <<<"$graph" || { echo "error: the installed inventory plugin's graph lacks 801" >&2; exit 1; }
echo "installed collection: ansible-doc and the inventory plugin work"

cd "$repo"
.venv/bin/antsibull-changelog lint
rm -rf build/ee-src build/ee
mkdir -p build/ee-src
cp "$tarball" build/ee-src/
.venv/bin/ansible-builder create -f execution-environment.yml -c build/ee --output-filename Containerfile >/dev/null
test -f build/ee/Containerfile
echo "ansible-builder create: build/ee/Containerfile"
