#!/bin/sh
# Builds the Linux guest that the kernel-client e2e tests boot under qemu.
#
# Output (cached; re-running is a no-op once built):
#   $CACHE/vmlinuz        Debian bookworm's kernel (bzImage)
#   $CACHE/vmlinux        the same kernel as an ELF, for qemu's faster PVH entry (optional)
#   $CACHE/initramfs.gz   busybox-static + NFS/virtio/9p modules + mount.nfs, rpcbind, rpc.statd,
#                         sm-notify, locktool and fstool (locktool.c, fstool.c, built static here)
#   $CACHE/ready          written last; holds the kernel version
# CACHE defaults to <repo>/.cache/guest, or $UNION_NFSD_CACHE/guest.
#
# Nothing is installed on the host: the packages are fetched with `apt-get download` and
# unpacked with `dpkg-deb -x`. Shared libraries for mount.nfs/rpcbind/rpc.statd are taken
# from the host (resolved with ldd), which is the same Debian release.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
CACHE=${UNION_NFSD_CACHE:-$repo/.cache}/guest
FORCE=${FORCE:-0}

if [ -f "$CACHE/ready" ] && [ "$FORCE" != 1 ] && [ "$CACHE/ready" -nt "$here/setup.sh" ] && [ "$CACHE/ready" -nt "$here/init" ] && [ "$CACHE/ready" -nt "$here/locktool.c" ] && [ "$CACHE/ready" -nt "$here/fstool.c" ]; then
  echo "guest already built: $CACHE ($(cat "$CACHE/ready"))"
  exit 0
fi

for tool in apt-get apt-cache dpkg-deb cpio gzip ldd grep find gcc; do
  command -v "$tool" >/dev/null || { echo "setup.sh: missing tool: $tool" >&2; exit 1; }
done

mkdir -p "$CACHE/debs"
debs=$CACHE/debs

# The kernel package that linux-image-amd64 currently depends on.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)
if [ -z "$kpkg" ]; then
  echo "setup.sh: cannot resolve linux-image-amd64 (running apt-get update)" >&2
  apt-get update -qq >&2
  kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)
fi
[ -n "$kpkg" ] || { echo "setup.sh: no linux-image-6.1.0-*-amd64 candidate" >&2; exit 1; }
kver=${kpkg#linux-image-}

fetch() {
  pkg=$1
  if ! ls "$debs/${pkg}_"*.deb >/dev/null 2>&1; then
    (cd "$debs" && apt-get download -q "$pkg" >&2 2>/dev/null) || {
      apt-get update -qq >&2
      (cd "$debs" && apt-get download -q "$pkg" >&2)
    }
  fi
  ls "$debs/${pkg}_"*.deb | head -n1
}

x=$CACHE/x
rm -rf "$x" "$CACHE/root"
mkdir -p "$x"
for pkg in "$kpkg" busybox-static nfs-common rpcbind; do
  dpkg-deb -x "$(fetch "$pkg")" "$x"
done

kdir=$x/lib/modules/$kver
cp "$x/boot/vmlinuz-$kver" "$CACHE/vmlinuz"

# vmlinux for PVH boot: the bzImage carries an xz stream; find its magic and decompress.
# (This is the kernel's scripts/extract-vmlinux method.) Optional: failure leaves only vmlinuz.
rm -f "$CACHE/vmlinux"
if command -v xz >/dev/null; then
  off=$(grep -abo "$(printf '\3757zXZ\000')" "$CACHE/vmlinuz" | head -n1 | cut -d: -f1 || true)
  if [ -n "$off" ]; then
    tail -c +$((off + 1)) "$CACHE/vmlinuz" | xz -dc >"$CACHE/vmlinux.tmp" 2>/dev/null || true
    if [ -s "$CACHE/vmlinux.tmp" ] && head -c 4 "$CACHE/vmlinux.tmp" | grep -q ELF; then
      mv "$CACHE/vmlinux.tmp" "$CACHE/vmlinux"
    fi
    rm -f "$CACHE/vmlinux.tmp"
  fi
fi

# Modules in load order: dependencies first, read from each module's own .modinfo
# (no depmod/kmod needed on the host).
wanted="virtio_pci virtio_net nfsv3 nfsv4 9pnet_virtio 9p"
order=""
modfile() { find "$kdir/kernel" -name "$1.ko" | head -n1; }
add_mod() {
  case " $order " in *" $1 "*) return 0 ;; esac
  f=$(modfile "$1")
  [ -n "$f" ] || { echo "setup.sh: module $1 not found" >&2; exit 1; }
  deps=$(grep -a -o 'depends=[a-z0-9_,-]*' "$f" | head -n1 | sed 's/^depends=//; s/,/ /g')
  for d in $deps; do add_mod "$d"; done
  case " $order " in *" $1 "*) ;; *) order="$order $1" ;; esac
}
for m in $wanted; do add_mod "$m"; done

root=$CACHE/root
mkdir -p "$root"/bin "$root"/sbin "$root"/etc "$root"/proc "$root"/sys "$root"/dev "$root"/tmp \
  "$root"/mnt "$root"/tests "$root"/results "$root"/modules "$root"/run/rpcbind \
  "$root"/var/lib/nfs/sm "$root"/var/lib/nfs/sm.bak "$root"/usr/sbin "$root"/lib64 \
  "$root"/lib/x86_64-linux-gnu
cp "$x/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
for m in $order; do cp "$(modfile "$m")" "$root/modules/$m.ko"; done
echo "$order" | sed 's/^ //' >"$root/modules/order"

# mount.nfs (nfs-utils), rpc.statd, sm-notify, rpcbind and the libraries they load.
cp "$x/sbin/mount.nfs" "$root/sbin/mount.nfs"
cp "$x/sbin/rpc.statd" "$root/sbin/rpc.statd"
cp "$x/sbin/sm-notify" "$root/sbin/sm-notify"
cp "$x/sbin/rpcbind" "$root/sbin/rpcbind"
for bin in "$root/sbin/mount.nfs" "$root/sbin/rpc.statd" "$root/sbin/sm-notify" "$root/sbin/rpcbind"; do
  if ldd "$bin" | grep 'not found'; then
    echo "setup.sh: the host lacks libraries for $(basename "$bin") (install nfs-common and rpcbind)" >&2
    exit 1
  fi
  ldd "$bin" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
    [ -n "$lib" ] && [ -f "$lib" ] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
[ -f "$root/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
for f in netconfig protocols services rpc; do
  [ -f "/etc/$f" ] && cp "/etc/$f" "$root/etc/$f"
done
[ -f "$root/etc/netconfig" ] || cp "$x/etc/netconfig" "$root/etc/netconfig" 2>/dev/null || true
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
_rpc:x:100:65534::/run/rpcbind:/bin/false
statd:x:101:65534::/var/lib/nfs:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
: >"$root/etc/resolv.conf"
echo guest >"$root/etc/hostname"
printf '127.0.0.1 localhost\n10.0.2.15 guest\n10.0.2.100 server\n' >"$root/etc/hosts"
ln -sf /proc/mounts "$root/etc/mtab"

# fcntl/flock locks from the shell (the lock tests).
gcc -static -O2 -o "$root/bin/locktool" "$here/locktool.c"
# nanosecond times and AF_UNIX bind on the mount (the kernel suite's phase d).
gcc -static -O2 -o "$root/bin/fstool" "$here/fstool.c"

cp "$here/init" "$root/init"
chmod 755 "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$CACHE/initramfs.gz.tmp"
mv "$CACHE/initramfs.gz.tmp" "$CACHE/initramfs.gz"
rm -rf "$x"
echo "$kver" >"$CACHE/ready"
echo "guest built: $CACHE (kernel $kver, $(du -h "$CACHE/initramfs.gz" | cut -f1) initramfs, modules:$order)"
