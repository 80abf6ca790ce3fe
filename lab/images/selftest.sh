#!/usr/bin/env bash
# Prove the lab images work: run guest, vm and hypervisor containers with the lab's
# flags (run-flags) on an internal test network with static IPs and MACs, then check
# systemd, SSH key login from this host, python3 over SSH, dockerd inside the vm (and
# a nested container), pvesim and dnsmasq in the hypervisor. Removes everything it made.
#
#   lab/images/selftest.sh [--quick]     (--quick: skip the nested container in the vm)
#
# Builds the images first (cached: a no-op when they are up to date).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NET=phoenix-imgtest
SUBNET=10.99.0.0/24
PREFIX=phoenix-imgtest
QUICK=0
[[ ${1:-} == --quick ]] && QUICK=1

T0=$SECONDS
PASS=0
FAIL=0
say() { printf '[%4ss] %s\n' "$((SECONDS - T0))" "$*"; }
ok() { PASS=$((PASS + 1)); say "PASS $*"; }
bad() { FAIL=$((FAIL + 1)); say "FAIL $*"; }
check() { # check DESCRIPTION COMMAND...
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$what${out:+: ${out//$'\n'/ | }}"; else bad "$what: ${out//$'\n'/ | }"; fi
}

"$REPO/lab/engine/ensure-engine.sh"
PHOENIX_LAB_SKIP_ENGINE=1 "$HERE/build.sh"
DOCKER=$("$REPO/lab/engine/docker-cli.sh")
say "docker client for lab containers: $DOCKER"
mapfile -t FLAGS < <(grep -v '^[[:space:]]*\(#\|$\)' "$HERE/run-flags")

WORK=$(mktemp -d /tmp/phoenix-imgtest.XXXXXX)
CONTAINERS=("$PREFIX-guest" "$PREFIX-vm" "$PREFIX-hypervisor")
cleanup() {
    local c
    for c in "${CONTAINERS[@]}"; do
        docker rm -f -v "$c" >/dev/null 2>&1 || true
    done
    docker network rm "$NET" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
cleanup
mkdir -p "$WORK"

ssh-keygen -q -t ed25519 -N '' -C phoenix-imgtest -f "$WORK/id"
SSH=(ssh -i "$WORK/id" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o ConnectTimeout=5)
docker network create --internal --subnet "$SUBNET" "$NET" >/dev/null
say "network $NET ($SUBNET, internal)"

start() { # start NAME IMAGE IP MAC [extra docker args...]
    local name=$1 image=$2 ip=$3 mac=$4
    shift 4
    "$DOCKER" run -d --name "$name" --hostname "${name#"$PREFIX"-}" \
        --network "$NET" --ip "$ip" --mac-address "$mac" \
        "${FLAGS[@]}" -e PHOENIX_SSH_AUTHORIZED_KEY="$(cat "$WORK/id.pub")" "$@" "$image" >/dev/null
    say "started $name ($image, $ip, $mac)"
}

wait_systemd() { # wait_systemd NAME: prints the final state
    local name=$1 state='' deadline=$((SECONDS + 90))
    while ((SECONDS < deadline)); do
        state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
        case $state in running | degraded) break ;; esac
        sleep 1
    done
    echo "$state"
    if [[ $state == degraded ]]; then
        docker exec "$name" systemctl --failed --no-legend --plain >&2 || true
    fi
    [[ $state == running || $state == degraded ]]
}

wait_ssh() { # wait_ssh IP
    local deadline=$((SECONDS + 30))
    until "${SSH[@]}" "root@$1" true 2>/dev/null; do
        ((SECONDS < deadline)) || { "${SSH[@]}" "root@$1" true; return 1; }
        sleep 1
    done
}

check_guest_basics() { # NAME IP MAC
    local name=$1 ip=$2 mac=$3
    check "$name: systemd is-system-running" wait_systemd "$name"
    check "$name: MAC address" sh -c "docker exec $name cat /sys/class/net/eth0/address | grep -qx $mac && echo $mac"
    check "$name: SSH key login from the host" wait_ssh "$ip"
    check "$name: python3 over SSH" "${SSH[@]}" "root@$ip" \
        'python3 -c "import sys, apt; print(sys.version.split()[0], \"(python3-apt ok)\")"'
    check "$name: sshd refuses passwords" sh -c "docker exec $name sshd -T | grep -Ei '^(permitrootlogin|passwordauthentication) ' | sort | tr '\n' ' ' | grep -q 'passwordauthentication no permitrootlogin without-password' && echo key-only"
}

start "$PREFIX-guest" phoenix-lab/guest:latest 10.99.0.10 02:42:0a:63:00:0a
start "$PREFIX-vm" phoenix-lab/vm:latest 10.99.0.11 02:42:0a:63:00:0b
start "$PREFIX-hypervisor" phoenix-lab/hypervisor:latest 10.99.0.12 02:42:0a:63:00:0c \
    -v "$REPO/lab/pvesim:/opt/pvesim:ro"

check_guest_basics "$PREFIX-guest" 10.99.0.10 02:42:0a:63:00:0a
check_guest_basics "$PREFIX-vm" 10.99.0.11 02:42:0a:63:00:0b
check_guest_basics "$PREFIX-hypervisor" 10.99.0.12 02:42:0a:63:00:0c

check "host keys differ per container" sh -c "
    a=\$(docker exec $PREFIX-guest ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)
    b=\$(docker exec $PREFIX-vm ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)
    [ \"\$a\" != \"\$b\" ] && echo distinct"
check "machine ids differ per container" sh -c "
    a=\$(docker exec $PREFIX-guest cat /etc/machine-id); b=\$(docker exec $PREFIX-vm cat /etc/machine-id)
    [ -n \"\$a\" ] && [ \"\$a\" != \"\$b\" ] && echo distinct"

# vm: dockerd as a systemd service.
# shellcheck disable=SC2016 # expanded on the vm
check "vm: docker info over SSH" "${SSH[@]}" root@10.99.0.11 '
    for i in $(seq 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
    systemctl is-active docker.service >/dev/null &&
    docker info --format "dockerd {{.ServerVersion}}, storage {{.Driver}}, swarm {{.Swarm.LocalNodeState}}"'
if ((QUICK == 0)); then
    check "vm: nested container (base image loaded over SSH)" sh -c "
        docker save phoenix-lab/base:bookworm | ${SSH[*]} root@10.99.0.11 docker load -q >/dev/null &&
        ${SSH[*]} root@10.99.0.11 'docker run --rm phoenix-lab/base:bookworm cat /etc/debian_version'"
fi

# hypervisor: pvesim from /opt/pvesim, dnsmasq installed but off, docker client.
check "hypervisor: pvesim.service answers on :8006" sh -c "
    for i in \$(seq 30); do
        code=\$(curl -sk -o /dev/null -w '%{http_code}' https://10.99.0.12:8006/api2/json/version) || true
        [ \"\$code\" = 401 ] && { echo \"HTTP 401 without a token (expected)\"; exit 0; }
        sleep 1
    done
    docker exec $PREFIX-hypervisor journalctl -u pvesim --no-pager | tail -5; exit 1"
check "hypervisor: dnsmasq installed, not enabled" sh -c "
    docker exec $PREFIX-hypervisor sh -c 'command -v dnsmasq >/dev/null && ! systemctl is-enabled -q dnsmasq && echo disabled'"
check "hypervisor: python3-cryptography, python3-yaml, docker client" "${SSH[@]}" root@10.99.0.12 \
    'python3 -c "import cryptography, yaml, docker; print(\"cryptography\", cryptography.__version__)" && docker --version'

say "$PASS passed, $FAIL failed (${SECONDS}s total); cleaning up"
((FAIL == 0))
