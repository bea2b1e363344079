#!/bin/sh
# File system changes beyond open, rename and unlink, signals between
# processes, a ptrace attach and a fileless exec (memfd_create, then
# execveat of its fd). Usage: fschanges.sh DIR
# What a trace cannot tell beforehand (pids) goes to DIR/facts.
set -e
umask 022
cd "$1"
mkdir sub
mkdir -p deep/er
rmdir deep/er
echo hi > f
ln f hard
ln -s ../target sub/sym
chmod u+s f
chmod 2755 sub
chown 1:1 f
truncate -s 10 f
mkfifo pipe
setfattr -n user.proctrail -v 1 f
setfattr -x user.proctrail f
touch -d 2001-01-01 f
mkdir mnt
mount -t tmpfs -o size=1m proctrail-tmpfs "$PWD/mnt"
umount mnt
sleep 30 &
pid=$!
kill -TERM $pid
echo "killed $pid" >> facts
wait $pid || true
# A ptrace attach to a child (it fails under strace, which traces the
# child already), then a kill.
/usr/bin/python3 - >> facts <<'PY'
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)
if libc.ptrace(16, child, None, None) == 0:  # PTRACE_ATTACH
    os.waitpid(child, 0)
    libc.ptrace(17, child, None, None)  # PTRACE_DETACH
    print("traced", child)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
print("killed", child)
PY
# A program run from memory: /bin/true copied into a memfd, executed by
# its fd (os.execve with an fd is fexecve: execveat(fd, "", AT_EMPTY_PATH)).
/usr/bin/python3 -c 'import os; fd = os.memfd_create("proctrail-fileless"); os.write(fd, open("/bin/true", "rb").read()); os.execve(fd, ["true"], {})'
