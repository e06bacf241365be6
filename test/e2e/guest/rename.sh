# RENAME of a big lower directory through the kernel client, run inside the guest by
# test/e2e/kernel-rename.test.ts (after lib.sh). The host writes /tests/params.sh: NFS_PORT,
# MOUNT_PORT, EXPORT, TREE_DATA (fstool treesum of the lower big/, with data, as the host
# computed it with the same binary). Each check's line starts with r_.
. /tests/params.sh
S=10.0.2.100
M=/mnt/u
mkdir -p $M
mount_union() {
  mount.nfs "$S:$EXPORT" $M -o "vers=3,proto=tcp,port=$NFS_PORT,mountport=$MOUNT_PORT,mountproto=tcp,nolock"
}
check r_mount mount_union
grep -q " $M nfs " /proc/mounts || exit 1
cd $M || exit 1

# treesum's fields: objects bytes tree ids; `meta` leaves the data out of tree
meta() { fstool treesum "$1" meta; }
before=$(meta big)
note "before: $before"
us=$(fstool rename big moved)
note "rename(2) of big -> moved: $us us"
echo "$us" >/results/rename-us
after=$(meta moved)
note "after: $after"
check r_same_tree sh -c "[ '$after' = '$before' ]"
check r_old_name_gone sh -c '[ ! -e big ]'
upper=$(host_call upper)
note "upper: $upper"
check r_nothing_copied sh -c "[ '$upper' = 'moved/ alone' ]"

note "restart: $(host_call restart)"
echo 3 >/proc/sys/vm/drop_caches
restarted=$(meta moved)
note "after restart: $restarted"
check r_same_after_restart sh -c "[ '$restarted' = '$before' ]"
data=$(fstool treesum moved data)
note "data after restart: $data (host: $TREE_DATA)"
check r_data_after_restart sh -c "[ '$(echo "$data" | cut -d' ' -f1-3)' = '$(echo "$TREE_DATA" | cut -d' ' -f1-3)' ]"
check r_old_name_gone_after_restart sh -c '[ ! -e big ]'
cd /
check r_no_stale sh -c '! dmesg | grep -iE "stale|fileid changed"'
check r_umount umount $M
exit 0
