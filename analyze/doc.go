// Package analyze replays a capture through a filter that rebuilds what
// happened — the process forest, the files each process touched, its
// network calls, the containers processes ran in — and renders it as JSON, Graphviz DOT, a
// text tree or W3C PROV-JSON.
//
// [Build] reads a replay stream (or any [EventSource]) once, to its end,
// and returns a [Model]; [WriteJSON], [WriteDOT], [WritePROV] and
// [WriteText] render it, and [BuildJSON], [BuildDOT], [BuildPROV] and
// [BuildText] do both, filters included, without holding the Model; [Walk] hands the processes to a caller one at a
// time (a database). The result depends only on the capture's bytes: no
// clock, no map order, no live /proc. Events are applied in order, one at
// a time; only the parsing of audit records runs ahead, on a goroutine of
// its own, as the replay's decoding and reassembly do on theirs, so no
// schedule can change the result. Memory follows the processes alive:
// file accesses go to a spool (memory, then an unlinked temporary file)
// as they are made, and processes that ended go there too, a second
// after their end, whole once their fd tables are dropped (finalizeGrace
// after it), leaving 8 bytes each (see internal/procstore); a late record
// brings them back, so the output is the same. Strings the output
// repeats (paths, executables, names) and identities are held once.
//
// # Sources and their authority
//
// The process connector decides lifetimes, parentage and threads: a fork
// event whose child pid differs from its child tgid creates a thread, any
// other a process; exec and exit events are exact. Audit adds the exe,
// argv and cwd of each exec, the files, and the container plumbing
// (pivot_root, setns). procfs records add the processes alive when
// recording started (the snapshot), cgroups, the recorded command's pid,
// and identities when audit is off.
//
// Times are nanoseconds since the Unix epoch. A connector event's time is
// its kernel timestamp (CLOCK_MONOTONIC) on the capture's boot time: the
// recorder may read a burst of queued events milliseconds late, so their
// capture times bunch up. (After a suspend the two clocks disagree by more
// than a delivery delay and the capture time is used.) An audit event's
// time is the capture time of its first record, but no more than 11 ms
// after its header time: the header is the kernel's coarse clock printed
// in milliseconds, and the capture time lags by kauditd's queue. procfs
// records use their capture time. Every time of a process is clamped into
// its lifetime, since audit records of its last syscalls often arrive
// after the connector reports its exit.
//
// # Processes
//
//   - Tasks are merged by tgid into one process; its threads are listed by
//     tid, the main thread first. A process ends when its last known task
//     exits, with that task's status; when its main thread exits early
//     (pthread_exit, status 0) the process lives on with its threads. A
//     main thread killed by a signal, exiting with a non-zero status, or
//     after an exit_group record ends the whole process, and a thread whose
//     exit was lost (without an exit time) ends when its process ends.
//     Threads a snapshot lists for a process whose fork the connector
//     reports are the connector's to count, not added twice.
//   - A fork of a pid already in use starts a new process (the pid was
//     reused; the old one's lost exit ends it there). Audit events are
//     matched to the incarnation alive at their header time.
//   - The parent is the creator: the connector's fork event, which is never
//     revised by later reparenting to init or a subreaper. With CLONE_PARENT
//     (runc's nsexec) the kernel names the creator's parent; the creator's
//     clone record, when it returns that child, makes the creator the
//     parent. The two sources race: the clone record, and even the child's
//     own records, often arrive before the child's fork event, so clone
//     records wait (two seconds at most) for their child. Threads belong to
//     their process and so have its parent.
//   - An exec ends every other thread (de_thread). Every exec is kept with
//     its time (connector), exe, argv and cwd (audit; procfs when audit is
//     off). argv comes from EXECVE records, never PROCTITLE, which the
//     kernel caches at a task's first audited syscall and can show the
//     previous command. runc re-executes itself from a memfd or a bind
//     mount of /proc/self/exe (execveat(fd, "", AT_EMPTY_PATH); audit and
//     procfs show exe="/"): the exe is then the name the same inode was
//     executed under before, else the fd's path; a memfd's stays unknown
//     (empty) rather than "/". A process that never execs runs what its
//     parent ran when it forked.
//   - Processes in the procfs snapshot, and processes first seen in an
//     event other than their fork, are marked before_capture; their start
//     comes from /proc/PID/stat's start time and the capture's boot time.
//   - Without a connector fork (audit alone), the parent is the process
//     whose clone/fork/vfork record returned the pid, else audit's ppid=.
//     A child's records may precede its creator's clone record, and a
//     vfork's record follows its child's execve; both orders work. Inside a
//     pid namespace clone returns namespace-local pids: a returned pid only
//     counts for a process that fits (not from the snapshot, created within
//     a minute).
//   - An exit_group record carries no exit field; its status is in a0 and
//     is used when the connector's exit is missing. From audit alone (auditd
//     logs, imports: replay.CaptureInfo.AuditOnly) it ends the process, which
//     then leaves memory as one the connector ended, and a later record of
//     its pid belongs to a new process (the pid was reused); a clone record
//     that names it and began before that exit (a vfork, whose record comes
//     last) is the exited child's.
//
// # Files
//
// Files come from audit PATH records. PARENT items are ignored (for a
// dirfd-relative syscall such as rm -r's unlinkat(fd, "x") the PARENT item
// may print the cwd instead of the fd's directory). A relative name is
// joined to the event's cwd (CWD record) or to the directory of its dirfd
// from the fd table; a dirfd not in the table is found by the PARENT
// item's inode among directories seen earlier; failing both, the name
// stays relative. Paths are cleaned, not resolved through symlinks, and
// are as the process saw them; the output phase then maps those of a
// process in a container to the host (see Host paths).
//
// Each process has an fd table following open, openat, openat2, creat,
// dup, dup2, dup3, fcntl's F_DUPFD and F_DUPFD_CLOEXEC, close and
// close_range, and close-on-exec at execve; a child sees
// the fds its parent held when it forked. An open's access has an open
// time and a close time: when its last fd closes, else when the process
// exits. Creations (an open that created the file, op "create"), renames
// (with "to"), unlinks, rmdirs, execs, chdirs, pivot_root and setns are
// kept as operations with one time, and so is every other change, with
// what it changed (File's details): mkdir and mknod with the new file's
// mode (its CREATE item's, the umask applied), link and symlink with
// their target, chmod with the mode and chown with the owner (the
// syscall's arguments), truncate with the length, setxattr and
// removexattr, utime with whether the times were given, mount with its
// flags and a source audit looked up, umount. The f* forms and
// AT_EMPTY_PATH name their file by an fd, from the fd table; runc's
// mounts onto /proc/self/fd/N are resolved through it too. Each access
// keeps its audit event's serial, which orders accesses of different
// processes (see Changes).
//
// Every failed open and exec is kept, with its errno ("error"); other
// failed syscalls are dropped (failed signals are kept). A search,
// one name tried in directory after directory (ld.so's library
// directories, execvp's and dash's $PATH, the locale directories), is
// marked in the output (File.Search, see search.go): consecutive failed
// opens or execs of the same name in other directories, and the attempt
// after the last, found or not. The tree shows a search as one line, a
// search of execs that all failed with ENOENT as "command not found".
//
// # Network
//
// Network entries come from socket, connect, bind, listen, accept,
// accept4, sendto and sendmsg records (net.go). Their address is the
// event's SOCKADDR record, the sockaddr the call copied from the caller or
// to it (an accept's peer; none for accept(fd, NULL, NULL)): inet and
// inet6 (with a scope id as a zone), unix (a relative path joined to the
// event's cwd; an abstract name, every byte of its length, as "@NAME")
// and netlink (the port id); host-order fields are read in the byte order
// of the SYSCALL record's arch. A socket() that succeeded puts its socket
// in the fd table with its family and protocol (a0 to a2), and a bind its
// address: calls on the fd take the protocol from there, and listen, whose
// record holds no address, the bound one; dup, inheritance across fork
// and close-on-exec apply as to files. Failed calls are kept with their
// errno, except an accept with EAGAIN (a non-blocking server's empty
// queue); sendto and sendmsg without an address (on a connected socket)
// are dropped. Entries go to the spool as file accesses do.
//
// # Signals, ptrace, fileless execs
//
// kill, tkill, tgkill and ptrace attaches are kept on the sender, failed
// ones too, with the process they reached: audit's OBJ_PID record names
// its tgid, resolved to the process alive with that pid. memfd_create's
// fd enters the fd table as a memfd; an execveat of such an fd (or an
// execve of /proc/self/fd/N), or of a program the kernel names
// /memfd:…, is a fileless exec.
//
// # Changes
//
// [Model.Changes] sums up what the kept processes changed, by directory:
// each operation of a process on a path once, with its details and
// count, and whether a later change removed it ("gone"), in the order of
// the audit serials where both changes have one.
//
// # Containers
//
// A process's container id comes from its cgroup path in procfs records
// ([ContainerFromCgroup]: docker cgroupfs and systemd scopes, containerd
// CRI, kubepods, podman, cri-o). A process that joins (setns) the mount
// namespace of a process with a known container, through an fd it opened
// on /proc/PID/ns/mnt, belongs to that container: this is how runc exec
// and docker exec processes are attributed. Otherwise a process whose
// cgroup was read after its fork (exec, snapshot) and names no container
// is on the host, and any other inherits its parent's container: the read
// at a fork comes before the creator can move the child (runc exec joins
// its last process to the container's cgroup after the fork). A container's rootfs
// is the new root of a pivot_root by one of its processes, resolved
// against that process's cwd before the call (runc does fchdir(rootfs);
// pivot_root(".", "."), and the event's own CWD record is already
// relative to the new root).
//
// # Host paths
//
// A File's Path is where the file is on the host, and ContainerPath the
// path the process used when they differ. The recorder stores the mount
// table of each mount namespace (procfs records, kind mounts after mount,
// umount2, move_mount, pivot_root, setns and unshare); a path is mapped
// through its namespace's table in effect then, the mount that holds it
// giving a device and a path within it, and the host's table (the first
// of the capture) where that is mounted on the host. The process that
// called pivot_root or setns is mapped from that access on, and tables
// read before a namespace's pivot_root are its runtime's setup, not its
// root. A file system mounted nowhere on the host keeps the path used,
// with Filesystem naming it. Without tables, a process under a pivot_root
// gets its root before its paths (but /proc, /sys and /dev). See
// mounts.go.
//
// # Filters
//
// [Options] keep the subtree of a pid (Pid) or of the recorded command
// (Cmd), the processes of a container (Container, an id prefix), those
// alive during a time window (Since, Until), those that bore a name
// (Comm), touched a path matching a glob (PathGlob) or have a network
// entry to or from an address (Addr: a CIDR, an address, a port, or a
// unix path pattern), the latter three with their ancestors. A kept process whose parent is not kept is a root.
//
// A capture made by `proctrail cut` holds, besides the processes of its
// selection, the ancestors they depend on, and marks the selected ones
// (procfs records of kind selected, after the first message of each):
// only the marked processes are kept, and the filters apply within them,
// so that analyzing the cut gives what analyzing the original with the
// cut's selection gave. [PlanCut] is a cut's first pass.
//
// # Output
//
// [WriteJSON] writes the stable schema documented on it, times in RFC
// 3339 UTC with nanoseconds. [WriteDOT] writes a digraph with one cluster
// per container and, optionally, file nodes; every label is escaped.
// [WriteText] writes an indented tree for terminals, with control
// characters quoted. [WritePROV] writes PROV-JSON: processes as
// activities, paths as entities, users as agents (the mapping is on it).
package analyze
