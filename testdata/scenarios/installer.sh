#!/bin/sh
# A small installer: builds in a temporary directory, installs into
# PREFIX (bin, lib, share), sets modes (a set-uid helper), links, and
# removes its temporary directory. Usage: installer.sh PREFIX
set -e
umask 022
prefix=$1
build=$prefix/.build.tmp
mkdir -p "$build" "$prefix/bin" "$prefix/lib" "$prefix/share/doc/tool"
printf '#!/bin/sh\necho tool\n' > "$build/tool"
printf 'helper\n' > "$build/helper"
printf 'lib\n' > "$build/libtool.so.1"
cp "$build/tool" "$prefix/bin/tool"
chmod 0755 "$prefix/bin/tool"
cp "$build/helper" "$prefix/bin/tool-helper"
chmod 4755 "$prefix/bin/tool-helper"
mv "$build/libtool.so.1" "$prefix/lib/libtool.so.1"
ln -s libtool.so.1 "$prefix/lib/libtool.so"
echo "tool 1.0" > "$prefix/share/doc/tool/README"
rm -rf "$build"
