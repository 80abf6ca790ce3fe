#!/usr/bin/env bash
# Print the path of a docker client that can create lab containers on the running
# engine, i.e. one that accepts `--network NET --ip IP --mac-address MAC`.
#
# Clients newer than API 1.44 refuse --mac-address with --network against an older
# engine ("specify mac-address per network requires API version 1.44"); Debian 12's
# engine (docker.io 20.10) speaks API 1.41. Debian's own client (/usr/bin/docker,
# from docker.io) matches it, so it is preferred in that case.
# Usage: DOCKER=$(lab/engine/docker-cli.sh) && "$DOCKER" run ...
set -euo pipefail

# $1 >= $2 as versions: "$2 then $1" is already in version order.
ver_ge() { printf '%s\n%s\n' "$2" "$1" | sort -V -C; }

majmin() { sed -E 's/^([0-9]+)\.([0-9]+).*/\1.\2/'; }

server_api=$(docker version --format '{{.Server.APIVersion}}' 2>/dev/null) || {
    echo "docker-cli: no engine answers (run lab/engine/ensure-engine.sh)" >&2
    exit 1
}
server_release=$(docker version --format '{{.Server.Version}}' | majmin)
candidates=()
default=$(command -v docker || true)
[[ -n $default ]] && candidates+=("$default")
for c in /usr/bin/docker /usr/local/bin/docker; do
    [[ -x $c && $c != "$default" ]] && candidates+=("$c")
done
for c in "${candidates[@]}"; do
    client_release=$("$c" version --format '{{.Client.Version}}' 2>/dev/null | majmin) || continue
    [[ -n $client_release ]] || continue
    # Either the engine knows per-network MAC addresses, or the client is no newer than it.
    if ver_ge "$server_api" 1.44 || ver_ge "$server_release" "$client_release"; then
        echo "$c"
        exit 0
    fi
done
echo "docker-cli: no docker client fits engine API $server_api (install Debian's docker.io for /usr/bin/docker)" >&2
exit 1
