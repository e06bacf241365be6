# Kernel-client scale checks (issues 4 and 5), run inside the guest by
# test/e2e/kernel-scale.test.ts (after lib.sh). The host writes /tests/params.sh (NFS_PORT,
# MOUNT_PORT, EXPORT, BIG_SIZE, BIG_MID_MD5, BIG_MID_BLOCK, APPEND_TEXT, FLAT_COUNT, TREE_FILES, TREE_DIRS),
# /tests/manifest.sh (the manifest() function the host also runs on its expected tree),
# /tests/tx.tar (the archive) and /tests/tx.manifest (the expected manifest of tx/ after
# extraction over the lower tx/). Layers: see kernel-scale.test.ts.
#
# Phases (check-name prefixes; the host asserts per phase):
#   big_     cp -a of the 1 GiB lower big.bin (host checks the copy's md5), then an append to
#            big.bin (the server copies 1 GiB up; host checks the upper file's md5)
#   rmtree_  rm -rf of tree/: 10,000 files in 121 merged directories (L1, L2, L3, upper)
#   rmflat_  rm -rf of flat/: one 10,000-entry merged directory; mkdir flat again is empty
#   tar_     tar x of a 5,000-file archive into the merged tx/
#   after_   server restart + fresh mount: everything above still holds
# Every step prints "# time STEP SECONDS" for the host's log.
. /tests/params.sh
. /tests/manifest.sh
S=10.0.2.100
M=/mnt/u
mkdir -p $M
export TZ=UTC LC_ALL=C

now() { cut -d' ' -f1 /proc/uptime; }
T0=$(now)
lap() { _t=$(now); echo "# time $1 $(echo "$_t - $T0" | bc)"; T0=$_t; }

# same GOT WANT: a command (usable in check) that explains a mismatch
mkdir -p /tmp/bin
printf '#!/bin/sh\n[ "$1" = "$2" ] && exit 0\necho "got:  $1"\necho "want: $2"\nexit 1\n' >/tmp/bin/same
chmod +x /tmp/bin/same
export PATH=/tmp/bin:$PATH

mnt() { mount.nfs "$S:$EXPORT" $M -o "vers=3,proto=tcp,port=$NFS_PORT,mountport=$MOUNT_PORT,mountproto=tcp,nolock"; }
mounted() { grep -q " $M nfs " /proc/mounts; }

check mount mnt
if ! mounted; then
  note "mount failed: nothing else can run"
  dmesg | tail -n 20
  exit 1
fi
cd $M || exit 1
lap mount

# ---- counts before (so that the removals below are not vacuous) --------------------------
check rmflat_count_before sh -c "[ \$(ls -A flat | wc -l) -eq $FLAT_COUNT ]"
find tree -type f >/tmp/tree.files
find tree -type d >/tmp/tree.dirs
check rmtree_files_before same "$(wc -l </tmp/tree.files)" "$TREE_FILES"
check rmtree_dirs_before same "$(wc -l </tmp/tree.dirs)" "$TREE_DIRS"
lap count

# ---- big: cp -a of a 1 GiB lower file, then its copy-up by an append ---------------------
check big_size_before sh -c "[ \$(stat -c %s big.bin) -eq $BIG_SIZE ]"
check big_cp_a cp -a big.bin big.copy
lap cp_a_1GiB
check big_copy_attrs sh -c '[ "$(stat -c "%s %a %u:%g %Y" big.bin)" = "$(stat -c "%s %a %u:%g %Y" big.copy)" ]'
check big_copy_host_md5 same "$(host_call verify-copy)" ok
lap verify_copy
check big_append sh -c "printf '%s' '$APPEND_TEXT' >>big.bin"
lap append_copy_up_1GiB
check big_size_after sh -c "[ \$(stat -c %s big.bin) -eq $((BIG_SIZE + ${#APPEND_TEXT})) ]"
check big_tail sh -c "[ \"\$(tail -c ${#APPEND_TEXT} big.bin)\" = '$APPEND_TEXT' ]"
check big_mid_block sh -c "[ \"\$(dd if=big.bin bs=1048576 skip=$BIG_MID_BLOCK count=1 2>/dev/null | md5sum | cut -d' ' -f1)\" = $BIG_MID_MD5 ]"
check big_append_host_md5 same "$(host_call verify-append)" ok
lap verify_append

# ---- rm -rf of a 10,000-file merged tree -------------------------------------------------
check rmtree_rm_rf rm -rf tree
lap rm_rf_tree
expect_fail rmtree_gone stat tree
check rmtree_not_listed sh -c '! ls -A | grep -qx tree'

# ---- rm -rf of a 10,000-entry merged directory (issue 5) ---------------------------------
check rmflat_rm_rf rm -rf flat
lap rm_rf_flat
expect_fail rmflat_gone stat flat
check rmflat_mkdir mkdir flat
check rmflat_empty sh -c '[ -z "$(ls -A flat)" ]'

# ---- tar x of a 5,000-file archive into the merged tx/ -----------------------------------
check tar_lower_before sh -c '[ "$(cat tx/d00/f000)" = "lower l3 tx/d00/f000" ]'
# busybox tar reads 512 bytes at a time: from the 9p share (cache=none) that alone costs
# minutes, so the archive is copied to the guest's tmpfs first.
cat /tests/tx.tar >/tmp/tx.tar
lap tar_copy_to_tmpfs
check tar_x tar -xpf /tmp/tx.tar
lap tar_x
check tar_files sh -c "[ \$(find tx -type f | wc -l) -eq $TX_FILES ]"
manifest tx >/results/tx.guest.manifest 2>&1
check tar_manifest diff /tests/tx.manifest /results/tx.guest.manifest
lap tar_verify

# ---- after a server restart and a fresh mount --------------------------------------------
cd /
check after_umount umount $M
check after_restart same "$(host_call restart | cut -d' ' -f1-2)" "server restarted"
check after_mount mnt
lap restart_remount
cd $M || exit 1
expect_fail after_tree_gone stat tree
check after_flat_empty sh -c '[ -d flat ] && [ -z "$(ls -A flat)" ]'
check after_big_size sh -c "[ \$(stat -c %s big.bin) -eq $((BIG_SIZE + ${#APPEND_TEXT})) ] && [ \$(stat -c %s big.copy) -eq $BIG_SIZE ]"
check after_big_tail sh -c "[ \"\$(tail -c ${#APPEND_TEXT} big.bin)\" = '$APPEND_TEXT' ]"
manifest tx >/results/tx.after.manifest 2>&1
check after_tar_manifest diff /tests/tx.manifest /results/tx.after.manifest
check after_no_markers sh -c '! ls -A | grep -q "^\.wh\." && ! ls -A flat tx | grep -q "^\.wh\."'
lap after_verify
cd /
check after_final_umount umount $M
exit 0
