#!/usr/bin/env bash
# Makes a Debian bookworm base image with debootstrap and imports it into podman, for
# machines that reach Debian's package mirrors but no image registry. Does nothing when the
# image exists. Needs root (debootstrap) and the debootstrap and podman packages.
#   compose/images/base-image.sh [IMAGE]     (default localhost/mapreduce-base:bookworm)
set -euo pipefail
IMAGE=${1:-localhost/mapreduce-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if podman image exists "$IMAGE"; then
  exit 0
fi
for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "base image: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
rootfs=$(mktemp -d /var/tmp/mapreduce-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "base image: debootstrap bookworm from $MIRROR (about a minute)"
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" > "$rootfs.log" 2>&1 \
  || { tail -20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE" > /dev/null
echo "base image: $IMAGE"
