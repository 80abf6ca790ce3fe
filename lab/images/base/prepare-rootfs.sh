#!/usr/bin/env bash
# Tidy a fresh debootstrap tree before it is packed for `docker import`.
# Usage: prepare-rootfs.sh ROOTFS SUITE MIRROR
set -euo pipefail
root=$1 suite=$2 mirror=$3

cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
SOURCES

# Docker supplies these per container.
rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
: >"$root/etc/resolv.conf"

# No downloaded packages or package lists in the image: Dockerfiles run apt-get update.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/* \
    "$root"/tmp/* "$root"/var/tmp/*
mkdir -p "$root/var/lib/apt/lists/partial"

# Keep apt's caches small inside image builds.
cat >"$root/etc/apt/apt.conf.d/90phoenix-lab" <<'APT'
Acquire::Languages "none";
APT::Install-Suggests "false";
Dpkg::Use-Pty "0";
APT
