#!/bin/sh
# Container starts, for bench/rulecost.py (issue 15: the mount tables'
# cost): N runs of a runc container with a busybox rootfs whose process is
# `true`, one after the other; prints their duration in nanoseconds.
# Usage: containers.sh N DIR   (as root; needs runc and busybox-static)
set -e
n=$1 dir=$2
bundle=$dir/bundle
if [ ! -f "$bundle/config.json" ]; then
	mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys" "$bundle/rootfs/tmp"
	cp /bin/busybox "$bundle/rootfs/bin/busybox"
	ln -sf busybox "$bundle/rootfs/bin/true"
	(cd "$bundle" && runc spec && sed -i -e 's/"terminal": true/"terminal": false/' -e 's|"sh"|"true"|' config.json)
fi
s=$(date +%s%N)
i=0
while [ $i -lt "$n" ]; do
	runc run --bundle "$bundle" "proctrail-bench-$$-$i" </dev/null >/dev/null
	i=$((i+1))
done
e=$(date +%s%N)
echo $((e-s))
