#!/usr/bin/env bash
# Builds a Debian bookworm image with Python 3.11 from Debian's package archive alone
# (debootstrap, then `docker import`), for machines that reach no image registry. The
# Dockerfile takes it as BASE_IMAGE; the container tests build the PostgreSQL image on it too.
#   docker/base-image.sh [TAG]            (default aelle-base:bookworm; a no-op when it exists)
# Needs root, debootstrap and a running Docker engine. DEBIAN_MIRROR overrides the mirror.
set -euo pipefail
tag="${1:-aelle-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag exists"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }

root="$(mktemp -d /tmp/aelle-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$mirror"
# the security and update suites beside the release, as a Debian image has them
cat > "$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$tag"
echo "built base image $tag"
