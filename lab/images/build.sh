#!/usr/bin/env bash
# Build the lab's container images, each only when its inputs changed.
#
#   lab/images/build.sh [--force] [--refresh-rootfs] [IMAGE...]
#
# IMAGE is any of: base guest vm hypervisor (default: all, in that order; asking for
# one also builds what it is built on when that is out of date).
#   phoenix-lab/base:bookworm     debootstrap --variant=minbase, then docker import
#   phoenix-lab/guest:latest      lab/images/guest/   (systemd, sshd, python3)
#   phoenix-lab/vm:latest         lab/images/vm/      (guest + dockerd)
#   phoenix-lab/hypervisor:latest lab/images/hypervisor/ (guest + pvesim unit, dnsmasq)
#
# Each image carries the label org.thinkheads.phoenix.lab.hash: a hash of its build
# inputs (its directory here, its parent's hash). A build is skipped ("up to date")
# when the image's label equals the hash computed now. --force rebuilds anyway
# (without Docker's layer cache, so apt fetches current packages).
# The debootstrap tree is kept as a tarball in .cache/lab/rootfs/, keyed by suite,
# mirror, architecture, base/packages and base/prepare-rootfs.sh; --refresh-rootfs
# runs debootstrap again (e.g. to pick up point releases).
# The base image carries that key too (label org.thinkheads.phoenix.lab.rootfs-key):
# while it matches, the image is up to date without the tarball, so a new checkout
# of the same sources reuses the machine's images as they are.
#
# Environment: PHOENIX_LAB_CACHE (default <repo>/.cache/lab),
#   PHOENIX_LAB_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#   PHOENIX_LAB_SKIP_ENGINE=1 (do not run lab/engine/ensure-engine.sh first).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${PHOENIX_LAB_CACHE:-$REPO/.cache/lab}
MIRROR=${PHOENIX_LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
LABEL=org.thinkheads.phoenix.lab.hash
# On the base image: the key of the rootfs it was imported from (rootfs_key).
ROOTFS_LABEL=org.thinkheads.phoenix.lab.rootfs-key
# Bump to rebuild every image after a change in how this script builds them.
RECIPE=1
export DOCKER_BUILDKIT=0

IMAGES=(base guest vm hypervisor)
declare -A TAG=(
    [base]=phoenix-lab/base:$SUITE
    [guest]=phoenix-lab/guest:latest
    [vm]=phoenix-lab/vm:latest
    [hypervisor]=phoenix-lab/hypervisor:latest
)
# Images each one is built from (FROM / COPY --from); their hashes are its inputs.
declare -A PARENTS=(
    [base]=""
    [guest]="base"
    [vm]="guest"
    [hypervisor]="guest vm"
)
declare -A HASH=()

T0=$SECONDS
FORCE=0
REFRESH=0
say() { printf '[%4ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() { printf '[%4ss] ERROR: %s\n' "$((SECONDS - T0))" "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

sha() { sha256sum | cut -c1-64; }

# Hash of every file under a directory: relative path, executable bit, content.
tree_hash() {
    local dir=$1 f
    (
        cd "$dir"
        find . -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' f; do
            printf '%s %s %s\n' "$f" "$([[ -x $f ]] && echo x || echo -)" "$(sha256sum <"$f" | cut -c1-64)"
        done
    ) | sha
}

arch() { dpkg --print-architecture 2>/dev/null || echo amd64; }

include_list() { grep -v '^[[:space:]]*\(#\|$\)' "$HERE/base/packages" | tr -s ' \n' ',' | sed 's/^,//; s/,$//'; }

rootfs_key() {
    printf 'recipe=%s suite=%s mirror=%s arch=%s include=%s prepare=%s\n' \
        "$RECIPE" "$SUITE" "$MIRROR" "$(arch)" "$(include_list)" \
        "$(sha256sum <"$HERE/base/prepare-rootfs.sh" | cut -c1-64)" | sha
}

compute_hash() {
    local name=$1 p input
    if [[ $name == base ]]; then
        # The base image is the rootfs's cache: one built from the same recipe (ROOTFS_LABEL) keeps its hash, so a
        # new checkout (an empty .cache/lab) reuses the machine's images instead of running debootstrap again and
        # rebuilding every image above it. Otherwise the tarball's content hash: a refreshed rootfs rebuilds
        # everything above it.
        if [[ $FORCE == 0 && $REFRESH == 0 && -n $(image_hash "${TAG[base]}") \
              && $(docker image inspect --format "{{ index .Config.Labels \"$ROOTFS_LABEL\" }}" "${TAG[base]}" \
                   2>/dev/null) == "$(rootfs_key)" ]]; then
            HASH[base]=$(image_hash "${TAG[base]}")
            return
        fi
        input="base recipe=$RECIPE rootfs=$(cat "$(tarball_path).sha256" 2>/dev/null || echo none)"
    else
        input="$name recipe=$RECIPE dir=$(tree_hash "$HERE/$name")"
        for p in ${PARENTS[$name]}; do
            input+=" $p=${HASH[$p]}"
        done
    fi
    HASH[$name]=$(printf '%s\n' "$input" | sha)
}

image_hash() {
    docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

tarball_path() {
    local key
    key=$(rootfs_key)
    echo "$CACHE/rootfs/$SUITE-minbase-$(arch)-${key:0:16}.tar"
}

# The rootfs tarball for the current key, made with debootstrap when missing.
rootfs_tarball() {
    local tarball tmp include
    tarball=$(tarball_path)
    if [[ -s $tarball && -s $tarball.sha256 && $REFRESH == 0 ]]; then
        say "base: cached rootfs $(basename "$tarball") ($(du -h "$tarball" | cut -f1))" >&2
        echo "$tarball"
        return
    fi
    if ! command -v debootstrap >/dev/null; then
        say "base: installing debootstrap with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 || {
            apt-get update >/dev/null 2>&1
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null
        } || die "cannot install debootstrap"
    fi
    mkdir -p "$CACHE/rootfs" "$CACHE/logs"
    tmp=$(mktemp -d "$CACHE/rootfs/.debootstrap.XXXXXX")
    # shellcheck disable=SC2064
    trap "umount -R '$tmp/proc' '$tmp/sys' 2>/dev/null || true; rm -rf '$tmp'" EXIT
    include=$(include_list)
    say "base: debootstrap --variant=minbase $SUITE from $MIRROR (log $CACHE/logs/debootstrap.log) ..." >&2
    if ! debootstrap --variant=minbase --arch="$(arch)" ${include:+--include="$include"} \
        "$SUITE" "$tmp/root" "$MIRROR" >"$CACHE/logs/debootstrap.log" 2>&1; then
        tail -n 20 "$CACHE/logs/debootstrap.log" >&2
        die "debootstrap failed (full log: $CACHE/logs/debootstrap.log)"
    fi
    "$HERE/base/prepare-rootfs.sh" "$tmp/root" "$SUITE" "$MIRROR"
    say "base: packing rootfs" >&2
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$tmp/root" -cf "$tmp/rootfs.tar" .
    rm -f "$CACHE/rootfs/$SUITE-minbase-$(arch)-"*.tar*
    sha256sum <"$tmp/rootfs.tar" | cut -c1-64 >"$tmp/rootfs.tar.sha256"
    mv "$tmp/rootfs.tar" "$tarball"
    mv "$tmp/rootfs.tar.sha256" "$tarball.sha256"
    rm -rf "$tmp"
    trap - EXIT
    echo "$tarball"
}

build_base() {
    local tarball
    tarball=$(rootfs_tarball)
    HASH[base]=$(printf '%s\n' "base recipe=$RECIPE rootfs=$(cat "$tarball.sha256")" | sha)
    say "base: docker import -> ${TAG[base]}"
    docker import \
        --change "LABEL $LABEL=${HASH[base]}" \
        --change "LABEL $ROOTFS_LABEL=$(rootfs_key)" \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "ENV LANG=C.UTF-8" \
        --change 'CMD ["/bin/bash"]' \
        "$tarball" "${TAG[base]}" >/dev/null
}

build_dockerfile() {
    local name=$1 log=$CACHE/logs/$1.log
    mkdir -p "$CACHE/logs"
    say "$name: docker build -> ${TAG[$name]} (log $log)"
    local rc=0 nocache=()
    ((FORCE)) && nocache=(--no-cache)
    local context=$HERE/$name
    if [[ $name == vm ]]; then
        # The VM image carries the guest image as an archive for its own dockerd (stacks run it; no registry).
        context=$CACHE/build/vm
        rm -rf "$context"
        mkdir -p "$context/preload"
        cp -a "$HERE/vm/." "$context/"
        say "  vm: docker save ${TAG[guest]} into the build context"
        docker save -o "$context/preload/phoenix-lab-guest.tar" "${TAG[guest]}"
    fi
    docker build "${nocache[@]}" --label "$LABEL=${HASH[$name]}" -t "${TAG[$name]}" "$context" 2>&1 \
        | tee "$log" | while IFS= read -r line; do
            case $line in
                Step\ *) say "  $name: ${line:0:110}" ;;
            esac
        done || rc=$?
    [[ $name == vm ]] && rm -rf "$CACHE/build/vm"
    if ((rc != 0)) || [[ $(image_hash "${TAG[$name]}") != "${HASH[$name]}" ]]; then
        tail -n 25 "$log" >&2
        die "$name: docker build failed (full log: $log)"
    fi
}

build() {
    local name=$1 t=$SECONDS have old
    compute_hash "$name"
    have=$(image_hash "${TAG[$name]}")
    if [[ $FORCE == 0 && $REFRESH == 0 && $have == "${HASH[$name]}" ]]; then
        say "$name: ${TAG[$name]} up to date (${HASH[$name]:0:12})"
        return
    fi
    old=$(docker image inspect --format '{{.Id}}' "${TAG[$name]}" 2>/dev/null || true)
    if [[ $name == base ]]; then build_base; else build_dockerfile "$name"; fi
    # Drop the image this one replaced, unless containers or other images still use it.
    if [[ -n $old && $old != "$(docker image inspect --format '{{.Id}}' "${TAG[$name]}")" ]]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
    say "$name: built ${TAG[$name]} (${HASH[$name]:0:12}) in $((SECONDS - t))s"
}

main() {
    local want=() name p
    while (($#)); do
        case $1 in
            --force) FORCE=1 ;;
            --refresh-rootfs) REFRESH=1 ;;
            -h | --help) usage; exit 0 ;;
            base | guest | vm | hypervisor) want+=("$1") ;;
            *) usage >&2; die "unknown argument: $1" ;;
        esac
        shift
    done
    ((${#want[@]})) || want=("${IMAGES[@]}")

    # Close the set over parents; build in dependency order.
    declare -A need=()
    local changed=1
    for name in "${want[@]}"; do need[$name]=1; done
    while ((changed)); do
        changed=0
        for name in "${!need[@]}"; do
            for p in ${PARENTS[$name]}; do
                [[ -n ${need[$p]:-} ]] || { need[$p]=1; changed=1; }
            done
        done
    done

    if [[ ${PHOENIX_LAB_SKIP_ENGINE:-0} != 1 ]]; then
        "$REPO/lab/engine/ensure-engine.sh"
    fi
    for name in "${IMAGES[@]}"; do
        [[ -n ${need[$name]:-} ]] || continue
        # --refresh-rootfs only concerns the base; children follow its new hash.
        if [[ $name != base ]]; then REFRESH=0; fi
        build "$name"
    done
    say "done: $(for name in "${IMAGES[@]}"; do [[ -n ${need[$name]:-} ]] && printf '%s ' "${TAG[$name]}"; done)"
}

main "$@"
