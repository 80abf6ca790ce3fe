#!/usr/bin/env bash
# Build the smallstep tools used by the Step-CA tests from source through the Go module proxy.
#   lab/tools/build-go-tools.sh [step-ca|step|all]      (default: all)
# Binaries land in <repo>/.cache/tools/bin (ignored by git). A binary is rebuilt only when it is missing or
# its stamp file (<bin>.version) records another version than lab/tools/versions.env pins.
# Environment: GO (path of the go binary), PHOENIX_TOOLS_BIN (output folder).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=/dev/null
. "$here/versions.env"

bindir="${PHOENIX_TOOLS_BIN:-$repo/.cache/tools/bin}"
what="${1:-all}"

case "$what" in
  step-ca|step|all) ;;
  -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
  *) echo "usage: $0 [step-ca|step|all]" >&2; exit 2 ;;
esac

find_go() {
  if [ -n "${GO:-}" ] && [ -x "$GO" ]; then echo "$GO"; return; fi
  if [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go; return; fi
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  return 1
}

build() {
  local name="$1" pkg="$2" version="$3"
  local bin="$bindir/$name" stamp="$bindir/$name.version"
  if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ]; then
    echo "==> $name $version: up to date"
    echo "$bin"
    return
  fi
  local go
  if ! go="$(find_go)"; then
    echo "error: Go toolchain not found (looked at \$GO, /usr/local/go/bin/go and PATH)." >&2
    echo "       Install Go >= 1.24 from https://go.dev/dl/ (e.g. into /usr/local/go) and rerun $0." >&2
    exit 1
  fi
  mkdir -p "$bindir"
  echo "==> building $name $version ($pkg) with $("$go" version | cut -d' ' -f3) ..."
  local start=$SECONDS
  rm -f "$stamp"
  if ! CGO_ENABLED=0 GOBIN="$bindir" GOFLAGS="${GOFLAGS:-} -trimpath" "$go" install \
      -ldflags "-s -w -X main.Version=${version#v} -X 'main.BuildTime=go install $version'" "$pkg@$version"; then
    echo "error: go install $pkg@$version failed (is the Go module proxy reachable? GOPROXY=$("$go" env GOPROXY))" >&2
    exit 1
  fi
  echo "$version" > "$stamp"
  echo "==> $name $version built in $((SECONDS - start))s"
  echo "$bin"
}

# One build at a time per output folder: a second run (another lane of `make test`) waits, then finds the tools
# up to date.
mkdir -p "$bindir"
exec 9>"$bindir/.build.lock"
flock 9

if [ "$what" = step-ca ] || [ "$what" = all ]; then
  build step-ca github.com/smallstep/certificates/cmd/step-ca "$STEP_CA_VERSION"
fi
if [ "$what" = step ] || [ "$what" = all ]; then
  build step github.com/smallstep/cli/cmd/step "$STEP_CLI_VERSION"
fi
