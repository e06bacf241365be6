#!/bin/sh
# Builds the Debian root filesystem that the boot test (test/e2e/kernel-boot.test.ts) serves
# as an OCI image: Debian bookworm, minbase plus systemd-sysv, made by mmdebstrap from
# Debian's packages, packed as one layer of an OCI image layout by umoci.
#
# Output (cached; re-running is a no-op once built):
#   $CACHE/debian/oci       the image layout, tag bookworm
#   $CACHE/debian/ready     written last
# CACHE defaults to <repo>/.cache, or $UNION_NFSD_CACHE.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=${UNION_NFSD_CACHE:-$repo/.cache}/debian
FORCE=${FORCE:-0}

if [ -f "$out/ready" ] && [ "$FORCE" != 1 ] && [ "$out/ready" -nt "$here/debian-image.sh" ]; then
  echo "debian image already built: $out/oci ($(cat "$out/ready"))"
  exit 0
fi
for tool in mmdebstrap umoci; do
  command -v "$tool" >/dev/null || { echo "debian-image.sh: missing tool: $tool (apt-get install mmdebstrap umoci)" >&2; exit 1; }
done

rm -rf "$out"
mkdir -p "$out"
started=$(date +%s)
mmdebstrap --quiet --variant=minbase --include=systemd-sysv --mode=root bookworm "$out/rootfs.tar"
umoci init --layout "$out/oci"
umoci new --image "$out/oci:bookworm"
umoci raw add-layer --image "$out/oci:bookworm" --history.created_by "mmdebstrap --variant=minbase --include=systemd-sysv bookworm" "$out/rootfs.tar"
rm "$out/rootfs.tar"
echo "bookworm minbase+systemd-sysv, built in $(($(date +%s) - started)) s" >"$out/ready"
echo "debian image built: $out/oci ($(du -sh "$out/oci" | cut -f1))"
