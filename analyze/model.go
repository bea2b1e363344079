package analyze

import (
	"errors"
	"time"

	"proctrail/replay"
)

// EventSource is what [Build] reads: a *replay.Stream, or a fake in tests.
// NextEvent returns io.EOF after the last event; Info is complete then.
// Build calls NextEvent on a goroutine of its own, which parses events
// ahead of the filter, and Info before and after it, never at once.
type EventSource interface {
	NextEvent() (replay.Event, error)
	Info() replay.CaptureInfo
}

// ErrNoCommand is returned by [Build] when Options.Cmd asks for the
// command's subtree but the capture holds no command record (it was
// recorded without `record -- CMD`).
var ErrNoCommand = errors.New("analyze: the capture has no command record (recorded without `--`)")

// Options select what [Build] keeps. A nil *Options, and zero fields, mean
// no filter: every process of the capture. Filters combine: a process is
// kept when every set filter keeps it.
type Options struct {
	// Pid keeps the subtree of every process that had this pid (all its
	// incarnations when the pid was reused). Zero means no filter.
	Pid int32
	// Container keeps the processes attributed to a container whose id
	// starts with this prefix. Empty means no filter.
	Container string
	// Since and Until keep the processes whose lifetime overlaps the window
	// [Since, Until]; a zero time leaves that side open. The CLI turns
	// offsets such as "+5s" into absolute times from CaptureInfo.Start.
	Since, Until time.Time
	// Comm keeps the processes that bore this name (comm) at any time,
	// with their ancestors. Empty means no filter.
	Comm string
	// PathGlob keeps the processes that touched a matching path, with
	// their ancestors. The pattern is path.Match syntax; it matches a path
	// or any of its parent directories ("/etc/*" matches /etc/ssh/sshd_config),
	// and a pattern without a slash matches base names ("*.conf"). Empty
	// means no filter.
	PathGlob string
	// Cmd keeps the subtree of the command given to `record --`; Build
	// returns ErrNoCommand when the capture has none.
	Cmd bool
	// NoFiles leaves every process's Files empty, for outputs that do not
	// show them: the file accesses, which grow with the events, then stay
	// out of memory. PathGlob still selects by them.
	NoFiles bool
	// Addr keeps the processes with a network entry to or from an
	// address, with their ancestors: a CIDR ("203.0.113.0/24") or an
	// address ("::1"); ":PORT", or both ("10.0.0.1:53", "[::1]:8080");
	// or a unix socket path, "/run/*.sock" as PathGlob matches, "@NAME"
	// for an abstract one. Empty means no filter. See ParseAddrFilter.
	Addr string
	// NoNet leaves every process's Net empty, as NoFiles does its Files.
	NoNet bool

	addr *addrFilter // Addr, parsed by Build
}

// DOTOptions configure [WriteDOT]. A nil *DOTOptions means the defaults.
type DOTOptions struct {
	// Files adds a node per file path and read/write edges between
	// processes and files.
	Files bool
	// MaxArgv bounds the characters of the argv line of a process label;
	// zero means 60.
	MaxArgv int
}

// Model is what happened in a capture: the process forest, with files and
// containers. Build returns a new Model that the caller owns; renderers
// only read it. Times are nanoseconds since the Unix epoch; zero means
// unknown (or, for an end, still running when the capture ended).
type Model struct {
	Capture Capture
	// Containers are those of the kept processes, sorted by id.
	Containers []Container
	// Processes are the roots of the kept forest, ordered by start time,
	// then pid.
	Processes []*Process
}

// Capture describes the captures the model was built from.
type Capture struct {
	Files      []string
	Host       string
	Kernel     string
	Start, End int64
	// Messages and lost messages per source, as counted by the replay.
	ConnectorMessages, ConnectorLost uint64
	AuditMessages, AuditEvents       uint64
	AuditLost                        uint64 // the kernel's and recorder's count
	AuditGaps                        uint64 // serials that never arrived
	ProcfsRecords                    uint64
	UnreadableBytes                  int64
	// SkippedLines counts the lines of auditd logs that gave no record
	// (see replay.LogStats.Skipped); 0 for captures.
	SkippedLines int64
}

// Container is a container some kept processes ran in.
type Container struct {
	ID      string
	Runtime string // docker, containerd, podman, crio or unknown
	Rootfs  string // host path of its root, from pivot_root; empty if unseen
	// Processes counts the kept processes attributed to it.
	Processes int
}

// Process is one process: one incarnation of a thread group id.
type Process struct {
	PID int32
	// PPID is the pid of the process that created it (its true parent),
	// or the parent the kernel or procfs reported when its creation was
	// not seen; 0 when unknown.
	PPID  int32
	Start int64
	End   int64 // 0: still running when the capture ended
	// Exited reports whether the exit status is known; then Signal is the
	// killing signal, or zero and ExitCode the exit status.
	Exited     bool
	ExitCode   int
	Signal     int
	CoreDumped bool
	UID        int64 // real uid; -1 when unknown
	Comm       string
	// Exe, Argv and Cwd are those of its last exec, or what it inherited
	// from its parent (or procfs showed) when it never exec'd.
	Exe  string
	Argv []string
	Cwd  string
	// BeforeCapture is set for a process that was alive before recording
	// started: its creation is not in the capture.
	BeforeCapture bool
	// Command is set for the process of the command given to `record --`.
	Command bool
	Execs   []Exec
	// Threads lists its tasks sorted by tid, the main thread (tid == pid)
	// first.
	Threads []Thread
	Files   []File
	// Signals are the signals it sent to processes (kill, tkill, tgkill)
	// and the ptrace attaches it made, in the order made.
	Signals []Signal
	// Net are its network calls, in the order made.
	Net []NetEntry
	// Container is the id of the container it ran in; empty when none.
	Container string
	Children  []*Process
}

// Exec is one successful execve or execveat.
type Exec struct {
	Time int64
	Exe  string
	Argv []string
	Cwd  string
	// Fileless is set when the program ran from memory, with no name in
	// any file system: an fd of memfd_create passed to execveat (or
	// execve of /proc/self/fd/N), or an executable the kernel names
	// /memfd:….
	Fileless bool
}

// Thread is one task of a process.
type Thread struct {
	TID        int32
	Start, End int64
}

// File is one access to a path.
type File struct {
	// Path is where the file is on the host. For a process in a
	// container, ContainerPath is the path it used, when that differs
	// (see mounts.go); a path whose file system is mounted nowhere on
	// the host (proc, sysfs, the container's own tmpfs) stays as used,
	// and Filesystem names that file system.
	Path          string
	ContainerPath string
	Filesystem    string
	// Op is open, create, unlink, rmdir, rename, exec, chdir, pivot_root,
	// setns, mkdir, link, symlink, chmod, chown, truncate, mknod,
	// setxattr, removexattr, utime, mount or umount; the syscall's name
	// for others (Ops lists the known ones).
	Op string
	// Mode is r, w or rw for open and create; empty when unknown.
	Mode string
	// Open and Close bound the access; both are the syscall's time for
	// operations that do not open. Close is 0 while still open at the end.
	Open, Close int64
	// To is the new path of a rename (on the host), ToContainerPath as
	// the process named it, when that differs.
	To, ToContainerPath string
	// Error is the errno name of a failed open or exec (ENOENT, EACCES,
	// EPERM, ELOOP, …).
	Error string
	// Unresolved marks an access whose path (or To, or Target) names a
	// directory the capture does not tell: a dirfd found neither in the
	// fd table nor by its inode among the directories seen, or an unknown
	// cwd. That path is then /proc/PID/fd/N/NAME (/proc/PID/cwd/NAME), as
	// the process could have named the file; never a stale or relative
	// one.
	Unresolved bool
	// Search marks an attempt of a search: one name tried in directory
	// after directory (a shell or execvp across $PATH, ld.so across its
	// library directories), each failed attempt followed by the next,
	// the last one successful or not. See MarkSearches.
	Search bool

	// The details of the operations that change a file, each empty when
	// it does not apply or is unknown.

	// Target is what a link or symlink points to: the existing path a
	// hard link names (resolved as Path is), a symlink's text as given
	// (relative stays relative); for a mount, its source when audit
	// names it as a path (a bind mount's directory, a block device).
	Target string
	// Perm is the permission bits a chmod set, or that mkdir and mknod
	// gave the new file (the umask applied), as four octal digits with
	// set-uid (4000), set-gid (2000) and sticky (1000): "4755", "0644".
	Perm string
	// Owner is the new "UID:GID" of a chown, a side empty when the call
	// left it unchanged ("0:0", "1000:", ":50").
	Owner string
	// Type is the file type mknod made: fifo, char, block, socket or file.
	Type string
	// Flags are a mount's or umount's flags, comma-separated (bind, rec,
	// move, remount, ro, nosuid, …; force, detach, expire, nofollow); for
	// utime, "set" when the call gave the times (they can be anything:
	// touch -d, timestamp forgery) and "now" when it set the current
	// time.
	Flags string
	// Size is the length in bytes a truncate set, in decimal.
	Size string
	// Serial is the serial number of the audit event of the access
	// (audit(TIME:SERIAL), what ausearch -a finds), 0 when none. The
	// kernel numbers events in the order the syscalls finished: it orders
	// accesses of different processes where their times, which come from
	// when the records were received, cannot. The JSON output leaves it
	// out.
	Serial uint64
}

// NetEntry is one network call of a process: socket, connect, bind,
// listen, accept (accept4 too), sendto or sendmsg.
type NetEntry struct {
	Op string
	// Family is inet, inet6, unix, netlink, packet…, or "family N"; empty
	// when unknown (a listen or accept on a socket created out of view).
	Family string
	// Proto is the socket's protocol as socket() made it: tcp, udp, icmp,
	// sctp, "raw …" for inet; stream, dgram or seqpacket for unix;
	// netlink's protocol (route, audit, …); empty when unknown.
	Proto string
	// Addr and Port are an inet or inet6 address (a listen's is the one
	// its socket was bound to, an accept's the peer's); for netlink, Port
	// is the port id (nl_pid; 0 is the kernel).
	Addr string
	Port int
	// Path is a unix socket's path, "@NAME" for an abstract one.
	Path string
	Time int64
	// Error is the errno name of a failed call (ECONNREFUSED, ENOENT,
	// EINPROGRESS for a non-blocking connect still under way, …).
	Error string
}

// Setuid and Setgid report whether f's Perm has the set-uid or set-gid
// bit.
func (f *File) Setuid() bool { return permBit(f.Perm, 04000) }
func (f *File) Setgid() bool { return permBit(f.Perm, 02000) }

// Signal is a signal a process sent to another (or to itself, or to a
// process group), or a ptrace attach.
type Signal struct {
	// Op is kill, tkill, tgkill or ptrace.
	Op   string
	Time int64
	// PID is the pid the call named: kill's pid (negative for a process
	// group, -1 for every process it may signal), the thread id of
	// tkill and tgkill, ptrace's pid (0 for traceme).
	PID int32
	// Signal is the signal's number for kill, tkill and tgkill; 0 for
	// ptrace.
	Signal int
	// Request is ptrace's request: attach, seize or traceme.
	Request string
	// TargetPID, TargetStart and TargetComm name the process that got
	// it, when audit named it (OBJ_PID) and it is in the capture:
	// TargetPID is 0 otherwise.
	TargetPID   int32
	TargetStart int64
	TargetComm  string
	// Error is the errno name when the call failed (EPERM, ESRCH).
	Error string
}
