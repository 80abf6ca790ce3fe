#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info` on this machine; start one if not.
#
# Idempotent: exits 0 at once when `docker info` already works; when a dockerd is
# already running (but not answering yet) it only waits for it. Otherwise, on Debian,
# it installs docker.io when dockerd is missing, then starts dockerd in the background
# with a daemon config suited to the lab machines (no systemd as PID 1, cgroup v1
# hybrid, no registry reachable) and waits until it answers.
#
# Environment (all optional):
#   PHOENIX_LAB_DOCKERD_LOG       dockerd log        (default /var/log/phoenix-lab-dockerd.log)
#   PHOENIX_LAB_DOCKERD_PIDFILE   dockerd pidfile    (default /run/phoenix-lab-dockerd.pid)
#   PHOENIX_LAB_DOCKERD_CONFIG    generated config   (default /etc/phoenix-lab/dockerd.json)
#   PHOENIX_LAB_DOCKER_ROOT       data root          (default /var/lib/docker)
#   PHOENIX_LAB_STORAGE_DRIVER    force a storage driver (default: probed: overlay2,
#                                 else fuse-overlayfs, else vfs)
#   PHOENIX_LAB_ENGINE_TIMEOUT    seconds to wait for `docker info` (default 60)
set -euo pipefail

LOG=${PHOENIX_LAB_DOCKERD_LOG:-/var/log/phoenix-lab-dockerd.log}
PIDFILE=${PHOENIX_LAB_DOCKERD_PIDFILE:-/run/phoenix-lab-dockerd.pid}
CONFIG=${PHOENIX_LAB_DOCKERD_CONFIG:-/etc/phoenix-lab/dockerd.json}
DATA_ROOT=${PHOENIX_LAB_DOCKER_ROOT:-/var/lib/docker}
TIMEOUT=${PHOENIX_LAB_ENGINE_TIMEOUT:-60}
LOCK=/run/phoenix-lab-engine.lock
START=$SECONDS

say() { printf 'ensure-engine: %s\n' "$*" >&2; }
die() {
    say "ERROR: $*"
    if [[ -s $LOG ]]; then
        say "last lines of $LOG (grpc chatter left out):"
        tail -n 400 "$LOG" | grep -v 'module=grpc' | tail -n 20 | sed 's/^/    /' >&2
    fi
    exit 1
}

engine_up() { docker info >/dev/null 2>&1; }

# A dockerd we (or someone) already started: its pid if alive.
running_dockerd() {
    local f pid
    for f in "$PIDFILE" /run/docker.pid /var/run/docker.pid; do
        [[ -r $f ]] || continue
        pid=$(cat "$f" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/comm ]] && [[ $(cat "/proc/$pid/comm") == dockerd ]]; then
            echo "$pid"
            return 0
        fi
    done
    pgrep -o -x dockerd 2>/dev/null || true
}

wait_for_engine() {
    local pid=${1:-} deadline=$((SECONDS + TIMEOUT)) next_note=$((SECONDS + 5))
    say "waiting up to ${TIMEOUT}s for docker info ..."
    until engine_up; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            die "dockerd (pid $pid) exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            die "docker info still fails after ${TIMEOUT}s ($(docker info 2>&1 | tail -n 1))"
        fi
        if ((SECONDS >= next_note)); then
            say "  still waiting ($((SECONDS - START))s) ..."
            next_note=$((SECONDS + 5))
        fi
        sleep 1
    done
    say "engine ready after $((SECONDS - START))s: $(docker info --format 'server {{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}' 2>/dev/null)"
}

# Can the data root's filesystem hold overlayfs upper layers? (No on overlayfs itself,
# e.g. inside a container without a volume for /var/lib/docker.)
overlay_works() {
    mkdir -p "$DATA_ROOT"
    local d ok=1
    d=$(mktemp -d "$DATA_ROOT/.phoenix-overlay-probe.XXXXXX")
    mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/merged"
    if mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
        if touch "$d/merged/probe" 2>/dev/null; then ok=0; fi
        umount "$d/merged" 2>/dev/null || true
    fi
    rm -rf "$d"
    return $ok
}

pick_storage_driver() {
    if [[ -n ${PHOENIX_LAB_STORAGE_DRIVER:-} ]]; then
        echo "$PHOENIX_LAB_STORAGE_DRIVER"
        return
    fi
    # Keep the driver whose images are already there (switching would hide them).
    local used
    for used in overlay2 fuse-overlayfs vfs; do
        if [[ -d $DATA_ROOT/$used ]] && [[ -n $(ls -A "$DATA_ROOT/$used" 2>/dev/null) ]] \
            && [[ -d $DATA_ROOT/image/$used ]]; then
            echo "$used"
            return
        fi
    done
    if overlay_works; then
        echo overlay2
    elif [[ -e /dev/fuse ]] && { command -v fuse-overlayfs >/dev/null || apt_install fuse-overlayfs >&2; }; then
        echo fuse-overlayfs
    else
        echo vfs
    fi
}

apt_install() {
    command -v apt-get >/dev/null || die "dockerd is missing and this is not a Debian-like system: install Docker yourself"
    say "installing $* with apt-get ..."
    export DEBIAN_FRONTEND=noninteractive
    local apt_log=/var/log/phoenix-lab-apt.log
    if ! apt-get install -y --no-install-recommends "$@" >"$apt_log" 2>&1; then
        say "apt-get install failed; running apt-get update and retrying"
        apt-get update >>"$apt_log" 2>&1 || true
        apt-get install -y --no-install-recommends "$@" >>"$apt_log" 2>&1 \
            || { tail -n 20 "$apt_log" >&2; die "apt-get install $* failed (full log: $apt_log)"; }
    fi
}

# Docker programs nat/filter rules; the nf_tables iptables fails on kernels without
# nf_tables, where the legacy one may still work.
ensure_iptables() {
    if iptables -t nat -S >/dev/null 2>&1 && iptables -t filter -S >/dev/null 2>&1; then
        return
    fi
    if command -v iptables-legacy >/dev/null && iptables-legacy -t nat -S >/dev/null 2>&1; then
        say "iptables (nf_tables) does not work on this kernel; switching to iptables-legacy"
        update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
        update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
        return
    fi
    die "neither iptables-nft nor iptables-legacy can list the nat table: dockerd cannot set up networks"
}

# Many systemd containers each take several inotify instances; the kernel default (128)
# runs out after a handful of guests ("Failed to allocate manager object").
raise_limits() {
    local kv file want cur
    for kv in fs/inotify/max_user_instances=8192 fs/inotify/max_user_watches=524288; do
        file=/proc/sys/${kv%%=*} want=${kv#*=}
        [[ -r $file ]] || continue
        cur=$(cat "$file")
        if ((cur < want)); then
            { echo "$want" >"$file"; } 2>/dev/null || say "warning: could not raise ${kv%%=*} (now $cur)"
        fi
    done
}

ensure_cgroups() {
    if [[ -z $(ls -A /sys/fs/cgroup 2>/dev/null) ]]; then
        say "nothing mounted at /sys/fs/cgroup; mounting cgroup2"
        mount -t cgroup2 cgroup2 /sys/fs/cgroup || die "cannot mount cgroups: dockerd needs them"
    fi
}

write_config() {
    local driver=$1
    mkdir -p "$(dirname "$CONFIG")"
    cat >"$CONFIG.tmp" <<JSON
{
  "data-root": "$DATA_ROOT",
  "storage-driver": "$driver",
  "iptables": true,
  "ip-forward": true,
  "registry-mirrors": [],
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "3"},
  "features": {"buildkit": false}
}
JSON
    mv "$CONFIG.tmp" "$CONFIG"
}

main() {
    # Cheap and harmless when already done; the lab needs it whoever started the engine.
    if ((EUID == 0)); then raise_limits; fi
    if engine_up; then
        say "docker info works: nothing to do"
        exit 0
    fi
    if ((EUID != 0)); then
        die "docker info fails and starting an engine needs root (run: sudo $0)"
    fi
    # One starter at a time; whoever waited on the lock finds the engine up.
    exec 9>"$LOCK"
    flock -w $((TIMEOUT + 120)) 9 || die "another ensure-engine.sh holds $LOCK"
    if engine_up; then
        say "docker info works: nothing to do"
        exit 0
    fi

    local pid
    pid=$(running_dockerd || true)
    if [[ -n $pid ]]; then
        say "dockerd already running (pid $pid), not starting another"
        wait_for_engine "$pid"
        exit 0
    fi

    if ! command -v dockerd >/dev/null; then
        apt_install docker.io iptables ca-certificates
        command -v dockerd >/dev/null || die "dockerd still missing after installing docker.io"
        # On a systemd machine the package starts the engine itself.
        if engine_up; then
            say "docker.io installed and its engine answers"
            exit 0
        fi
    fi

    # A systemd machine: let systemd run the packaged service.
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null \
        && systemctl cat docker.service >/dev/null 2>&1; then
        say "starting docker.service with systemctl"
        systemctl start docker.service || die "systemctl start docker.service failed (see journalctl -u docker)"
        wait_for_engine
        exit 0
    fi

    ensure_cgroups
    ensure_iptables
    local driver
    driver=$(pick_storage_driver)
    write_config "$driver"
    say "starting dockerd (storage driver $driver, config $CONFIG, log $LOG)"

    rm -f "$PIDFILE"
    mkdir -p "$(dirname "$LOG")"
    {
        printf '\n===== %s ensure-engine: starting dockerd =====\n' "$(date -Is)"
    } >>"$LOG"
    # setsid: dockerd outlives this shell and its terminal.
    setsid dockerd --config-file "$CONFIG" --pidfile "$PIDFILE" </dev/null >>"$LOG" 2>&1 9>&- &
    pid=$!
    wait_for_engine "$pid"
}

main "$@"
