#!/bin/sh
# A runc container whose rootfs is an overlay (lower, upper and work
# directories made here, mounted on merged/) with a host directory
# bind-mounted as a volume at /data. The container writes into the volume
# and into its rootfs, then `runc exec` writes into both too.
# Usage: container-overlay.sh DIR   (as root; needs runc, busybox-static
# and overlayfs). Prints the container id, then the merged and volume
# directories. The overlay is unmounted at the end, unless KEEP_MOUNTED is
# set (a test then checks the files at their host paths, and unmounts).
set -e
dir=$(cd "$1" && pwd)
id=proctrail-ovl-$$
cid=$(printf '%s' "$id" | sha256sum | cut -c1-64)
bundle=$dir/bundle
lower=$dir/lower upper=$dir/upper work=$dir/work merged=$bundle/rootfs vol=$dir/volume
mkdir -p "$lower/bin" "$lower/proc" "$lower/dev" "$lower/sys" "$lower/tmp" "$lower/data" "$lower/etc" "$upper" "$work" "$merged" "$vol"
cp /bin/busybox "$lower/bin/busybox"
for app in sh echo cat mkdir mv rm sleep ls; do
	ln -sf busybox "$lower/bin/$app"
done
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
[ -n "${KEEP_MOUNTED:-}" ] || trap 'umount "$merged" 2>/dev/null || true' EXIT
cd "$bundle"
rm -f config.json
runc spec
sed -i \
	-e 's/"terminal": true/"terminal": false/' \
	-e 's/"readonly": true/"readonly": false/' \
	-e 's|"sh"|"sh", "-c", "echo vol > /data/a.txt \&\& echo root > /etc/motd \&\& mkdir -p /tmp/t \&\& echo tmp > /tmp/t/b.txt \&\& sleep 1"|' \
	-e "s|\"linux\": {|\"linux\": {\n\t\t\"cgroupsPath\": \"/docker/$cid\",|" \
	-e "s|\"mounts\": \[|\"mounts\": [\n\t\t{\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"$vol\", \"options\": [\"rbind\", \"rw\"]},|" \
	config.json
runc run "$id" > /dev/null 2>&1 &
run=$!
i=0
until runc state "$id" 2>/dev/null | grep -q '"status": "running"'; do
	i=$((i+1)); [ $i -lt 200 ] || { echo "container did not start" >&2; exit 1; }
	sleep 0.02
done
# The exec'd process outlives its read of /proc (a process gone before it
# is read has no namespaces, and its paths no host paths).
runc exec "$id" sh -c 'echo exec > /data/exec.txt && echo exec > /etc/exec.txt && sleep 0.3'
wait $run
runc delete -f "$id" 2>/dev/null || true
echo "$cid"
echo "$merged"
echo "$vol"
