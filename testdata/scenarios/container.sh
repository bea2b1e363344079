#!/bin/sh
# A runc container with a busybox rootfs and a docker-style cgroups path
# that writes files, then a `runc exec` into it.
# Usage: container.sh DIR   (as root; needs runc and busybox-static)
set -e
dir=$1
id=proctrail-test-$$
cid=$(printf '%s' "$id" | sha256sum | cut -c1-64)
bundle=$dir/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys" "$bundle/rootfs/tmp" "$bundle/rootfs/data"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for app in sh echo cat mkdir mv rm sleep ls; do
	ln -sf busybox "$bundle/rootfs/bin/$app"
done
cd "$bundle"
rm -f config.json
runc spec
# Not a terminal; a writable root; the container's process; cgroups path.
sed -i \
	-e 's/"terminal": true/"terminal": false/' \
	-e 's/"readonly": true/"readonly": false/' \
	-e 's|"sh"|"sh", "-c", "cd /data \&\& echo hello > a.txt \&\& mkdir sub \&\& mv a.txt sub/b.txt \&\& sleep 1"|' \
	-e "s|\"linux\": {|\"linux\": {\n\t\t\"cgroupsPath\": \"/docker/$cid\",|" \
	config.json
runc run "$id" > /dev/null 2>&1 &
run=$!
# Wait for the container to be running, then exec into it.
i=0
until runc state "$id" 2>/dev/null | grep -q '"status": "running"'; do
	i=$((i+1)); [ $i -lt 200 ] || { echo "container did not start" >&2; exit 1; }
	sleep 0.02
done
# The exec'd process outlives its read of /proc (a process gone before it
# is read has no namespaces, and its paths no host paths).
runc exec "$id" sh -c 'echo exec > /data/exec.txt && sleep 0.3'
wait $run
runc delete -f "$id" 2>/dev/null || true
echo "$cid"
