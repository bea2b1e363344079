package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"proctrail/formats"
)

// Bounds of what one Read takes from procfs. A process controls the size of
// its own cmdline (its argv and environment area can be rewritten) and, by
// cgroup nesting, of its cgroup file, so both are cut rather than grown
// without limit. The caps match formats' field cap, so a record round-trips.
const (
	procMaxFile = 256 << 10 // cmdline, cgroup
	// procMaxHead is read from stat and status. A stat line is under 1 KiB
	// (comm is at most 64 bytes); the Uid: and Gid: lines come before
	// Groups:, the only long line of status, within its first 512 bytes
	// even with a fully escaped Name:.
	procMaxHead = 4 << 10
	procMaxLink = unix.PathMax // procfs readlink fails beyond a page
)

// procNamespaces are the entries of /proc/PID/ns that Read records, in the
// order of ProcRecord.Namespaces. The names are the file names, not the
// link text's prefix: pid_for_children reads "pid:[…]".
var procNamespaces = [...]struct {
	name string
	path []byte // NUL-terminated, relative to /proc/PID
}{
	{"cgroup", []byte("ns/cgroup\x00")},
	{"ipc", []byte("ns/ipc\x00")},
	{"mnt", []byte("ns/mnt\x00")},
	{"net", []byte("ns/net\x00")},
	{"pid", []byte("ns/pid\x00")},
	{"pid_for_children", []byte("ns/pid_for_children\x00")},
	{"time", []byte("ns/time\x00")},
	{"time_for_children", []byte("ns/time_for_children\x00")},
	{"user", []byte("ns/user\x00")},
	{"uts", []byte("ns/uts\x00")},
}

// NUL-terminated names relative to /proc/PID, for the raw *at syscalls.
var (
	procNameStat    = []byte("stat\x00")
	procNameStatus  = []byte("status\x00")
	procNameTask    = []byte("task\x00")
	procNameExe     = []byte("exe\x00")
	procNameCwd     = []byte("cwd\x00")
	procNameRoot    = []byte("root\x00")
	procNameCmdline = []byte("cmdline\x00")
	procNameCgroup  = []byte("cgroup\x00")
	procNameMounts  = []byte("mountinfo\x00")
	procNameMntNS   = []byte("ns/mnt\x00")
)

// ProcReader reads /proc/PID into a [formats.ProcRecord], reusing its
// buffers between calls: in steady state a Read allocates once, for the
// record's strings. It keeps up to about 600 KiB of buffers. A ProcReader is
// not safe for concurrent use.
type ProcReader struct {
	root string
	// raw says whether the system calls of a read that cannot wait on
	// the real /proc are made raw (see procSys): root is "/proc". Another
	// root may hold anything, a FIFO or a network file system's files.
	raw bool
	// rawCgroup says whether cgroup is read raw too: raw, on Linux 6.8 or
	// later, whose proc_cgroup_show holds a spinlock under RCU where the
	// kernels before took the cgroup_mutex, which cgroup operations hold.
	rawCgroup bool
	// pidfd says whether the ids are read with PIDFD_GET_INFO rather than
	// from status: when root is the procfs of the reader's own pid
	// namespace (pidfd_open takes a pid of that namespace) and until the
	// kernel turns out not to have it (before Linux 6.13).
	pidfd bool
	path  []byte // NUL-terminated "/proc/PID"
	head  []byte // stat and status
	text  []byte // the record's strings, converted to one string at the end
	dents []byte // getdents64 output
	pids  []int32
	// mounts are the mount namespaces whose table a record carried.
	mounts mountTables
}

// NewProcReader returns a reader of the procfs mounted at procRoot; ""
// means "/proc". Another root serves tests and a host's procfs mounted in a
// container.
func NewProcReader(procRoot string) *ProcReader {
	if procRoot == "" {
		procRoot = "/proc"
	}
	return &ProcReader{
		root:      procRoot,
		raw:       procRoot == "/proc",
		rawCgroup: procRoot == "/proc" && kernelAtLeast(kernelRelease(), 6, 8),
		pidfd:     procRootIsOwn(procRoot),
		head:      make([]byte, 0, procMaxHead),
		text:      make([]byte, 0, 4<<10),
		dents:     make([]byte, 8<<10),
	}
}

// procRootIsOwn says whether the procfs at root shows the pids of the
// caller's pid namespace: its "self" names the caller.
func procRootIsOwn(root string) bool {
	self, err := os.Readlink(root + "/self")
	return err == nil && self == strconv.Itoa(os.Getpid())
}

// Read fills rec for the process pid, which should be a thread group id (for
// any other tid procfs shows that thread's view), and sets rec.Kind to kind.
//
// For kind formats.ReasonFork only stat, the ids and cgroup are read (ppid,
// start time, comm, ids, cgroup). The ids come from a pidfd where the
// kernel has PIDFD_GET_INFO, else from status; the task list of a process
// whose stat counts one thread is its pid, without reading the task
// directory.
//
// Read is best effort: a file that cannot be read (a kernel thread has no
// exe, another user's process hides its links, the process exits midway)
// leaves its field zero. When the process no longer exists, rec.Gone is set
// and Read returns nil: a process gone before it could be read is not an
// error. Read returns an error only when /proc/PID cannot be opened for
// another reason, such as running out of file descriptors.
//
// Read overwrites every field of rec. It reuses the arrays behind rec.TIDs,
// rec.Cmdline and rec.Namespaces, so a caller that keeps those slices past
// the next Read into the same rec must copy them; they may be empty but
// non-nil. The strings are new, and share one allocation.
//
// All files are read relative to one descriptor of /proc/PID, which pins the
// process: if it exits and its pid is reused during the Read, the remaining
// files fail to open instead of describing the new process. The pidfd is
// opened after that descriptor and before stat is read through it, so it
// names the same process whenever stat is read.
func (p *ProcReader) Read(pid int32, kind formats.ProcReason, rec *formats.ProcRecord) error {
	tids, args, nss := rec.TIDs[:0], rec.Cmdline[:0], rec.Namespaces[:0]
	*rec = formats.ProcRecord{Kind: kind, PID: pid, TIDs: tids, Cmdline: args, Namespaces: nss}

	dir, gone, err := p.openPID(pid)
	if gone {
		rec.Gone = true
		return nil
	}
	if err != nil {
		return err
	}
	defer procClose(dir, p.raw)

	// The ids first, from a pidfd opened after dir: when stat is then read
	// through dir, the process was alive after the pidfd was opened, so the
	// pid could not have been reused in between and both show the same
	// process.
	uids, gids, haveIDs := p.pidfdIDs(pid)
	stat, errno := procReadFile(dir, procNameStat, p.head[:0], procMaxHead, p.raw)
	if len(stat) == 0 && procGone(errno) {
		rec.Gone = true
		return nil
	}
	p.text = p.text[:0]
	comm, ppid, start, threads, _ := procParseStat(stat)
	rec.PPID, rec.StartTicks = ppid, start
	p.text = append(p.text, comm...)
	commEnd := len(p.text)

	if haveIDs && len(stat) > 0 {
		rec.UIDs, rec.GIDs = uids, gids
	} else {
		status, _ := procReadFile(dir, procNameStatus, p.head[:0], procMaxHead, false)
		rec.UIDs = procParseIDs(status, "Uid:")
		rec.GIDs = procParseIDs(status, "Gid:")
	}

	if kind == formats.ReasonFork {
		// A child just forked has its parent's exe, cwd, root, argv and
		// namespaces (audit's clone record tells new namespaces), and its
		// exec, if any, gets a read of its own: only what the analysis
		// needs of a fork is read (start time, ids, cgroup), 5 system
		// calls instead of 16. This was a third of the recorder's CPU.
		p.text, _ = procReadFile(dir, procNameCgroup, p.text, procMaxFile, p.rawCgroup)
		s := string(p.text)
		rec.Comm, rec.Cgroup = s[:commEnd], s[commEnd:]
		return nil
	}

	if threads == 1 {
		// A process of one thread: that thread is its leader, whose tid
		// is the pid (a leader that exits first stays listed, and counted,
		// until the whole group has), so the task directory (4 system
		// calls) is not read.
		rec.TIDs = append(rec.TIDs, pid)
	} else {
		rec.TIDs = p.readTIDs(dir, rec.TIDs)
	}

	p.text = procReadlink(dir, procNameExe, p.text, p.raw)
	exeEnd := len(p.text)
	p.text = procReadlink(dir, procNameCwd, p.text, p.raw)
	cwdEnd := len(p.text)
	p.text = procReadlink(dir, procNameRoot, p.text, p.raw)
	rootEnd := len(p.text)
	p.text, _ = procReadFile(dir, procNameCmdline, p.text, procMaxFile, false)
	cmdEnd := len(p.text)
	p.text, _ = procReadFile(dir, procNameCgroup, p.text, procMaxFile, p.rawCgroup)
	cgEnd := len(p.text)

	for _, ns := range procNamespaces {
		var link [64]byte // "time_for_children" reads "time:[4026531834]"
		n, errno := procReadlinkat(dir, ns.path, link[:], p.raw)
		if errno != 0 {
			continue
		}
		if ino, ok := procParseNS(link[:n]); ok {
			rec.Namespaces = append(rec.Namespaces, formats.Namespace{Name: ns.name, Inode: ino})
		}
	}

	if ino := rec.MountNS(); ino != 0 && !p.mounts.seen(ino) {
		// The first record of a mount namespace carries its mount table.
		// A process that moved while it was read (readMountTable) leaves
		// it out, for the next record of ino to carry.
		var same bool
		var errno unix.Errno
		if p.text, same, errno = p.readMountTable(dir, p.text, ino); errno == 0 {
			if same {
				p.mounts.note(ino, pid, p.text[cgEnd:])
			} else {
				p.text = p.text[:cgEnd]
			}
		}
	}

	s := string(p.text)
	rec.Comm = s[:commEnd]
	rec.Exe = s[commEnd:exeEnd]
	rec.Cwd = s[exeEnd:cwdEnd]
	rec.Root = s[cwdEnd:rootEnd]
	rec.Cgroup = s[cmdEnd:cgEnd]
	rec.Mountinfo = s[cgEnd:]
	if cmd := s[rootEnd:cmdEnd]; cmd != "" {
		// Arguments end in NUL; a process that rewrote its argv area
		// (setproctitle) may leave no NUL at all.
		for len(cmd) > 0 {
			i := 0
			for i < len(cmd) && cmd[i] != 0 {
				i++
			}
			rec.Cmdline = append(rec.Cmdline, cmd[:i])
			cmd = cmd[min(i+1, len(cmd)):]
		}
	}
	return nil
}

// openPID opens /proc/PID (O_PATH), which pins the process. It reports
// gone when the process no longer exists.
func (p *ProcReader) openPID(pid int32) (dir int, gone bool, err error) {
	p.path = append(p.path[:0], p.root...)
	p.path = append(p.path, '/')
	p.path = strconv.AppendInt(p.path, int64(pid), 10)
	p.path = append(p.path, 0)
	dir, errno := procOpenat(unix.AT_FDCWD, p.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, p.raw)
	if procGone(errno) {
		return -1, true, nil
	}
	if errno != 0 {
		return -1, false, fmt.Errorf("record: procfs: open %s: %w", p.path[:len(p.path)-1], errno)
	}
	return dir, false, nil
}

// readTIDs appends the tids of /proc/PID/task to tids, ascending: the kernel
// lists them in thread-list order, which pid wrap-around makes unsorted.
func (p *ProcReader) readTIDs(dir int, tids []int32) []int32 {
	fd, errno := procOpenat(dir, procNameTask, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, p.raw)
	if errno != 0 {
		return tids
	}
	defer procClose(fd, p.raw)
	tids = p.appendNumericEntries(fd, tids)
	slices.Sort(tids)
	return slices.Compact(tids)
}

// pidfdIDs returns the real, effective, saved and filesystem uids and gids
// of the process pid from PIDFD_GET_INFO: 3 cheap system calls where
// reading status formats some 1.5 KiB (its memory figures, CPU lists, …),
// a third of a fork's read. ok is false when they must be read from
// status: another pid namespace's procfs, a kernel without PIDFD_GET_INFO
// (then never asked again), a process gone, out of descriptors.
//
// The ids are those status shows: the task's credentials seen from the
// caller's user namespace.
func (p *ProcReader) pidfdIDs(pid int32) (uids, gids [4]uint32, ok bool) {
	if !p.pidfd {
		return uids, gids, false
	}
	fd, errno := procSys(unix.SYS_PIDFD_OPEN, uintptr(pid), 0, 0, 0, true)
	if errno != 0 {
		if errno == unix.ENOSYS {
			p.pidfd = false
		}
		return uids, gids, false
	}
	defer procClose(int(fd), true)
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_CREDS}
	if _, errno := procSys(unix.SYS_IOCTL, fd, unix.PIDFD_GET_INFO, uintptr(unsafe.Pointer(&info)), 0, true); errno != 0 {
		if errno == unix.ENOTTY || errno == unix.EINVAL {
			p.pidfd = false
		}
		return uids, gids, false
	}
	if info.Mask&unix.PIDFD_INFO_CREDS == 0 {
		return uids, gids, false
	}
	uids = [4]uint32{info.Ruid, info.Euid, info.Suid, info.Fsuid}
	gids = [4]uint32{info.Rgid, info.Egid, info.Sgid, info.Fsgid}
	return uids, gids, true
}

// Snapshot calls fn with a record of kind [formats.ReasonSnapshot] for every
// process alive now: the numeric entries of the procfs root, which lists
// thread group ids only, in ascending pid order. Processes that exit before
// they are read are skipped. fn's rec is reused between calls, as by
// [ProcReader.Read], and must not be kept. Snapshot stops at the first error
// of fn or Read and returns it.
func (p *ProcReader) Snapshot(fn func(rec *formats.ProcRecord) error) error {
	p.path = append(append(p.path[:0], p.root...), 0)
	fd, errno := procOpenat(unix.AT_FDCWD, p.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, false)
	if errno != 0 {
		return fmt.Errorf("record: procfs: open %s: %w", p.root, errno)
	}
	p.pids = p.appendNumericEntries(fd, p.pids[:0])
	procClose(fd, false)
	slices.Sort(p.pids)
	p.pids = slices.Compact(p.pids)

	var rec formats.ProcRecord
	for _, pid := range p.pids {
		if err := p.Read(pid, formats.ReasonSnapshot, &rec); err != nil {
			return err
		}
		if rec.Gone {
			continue
		}
		if err := fn(&rec); err != nil {
			return err
		}
	}
	return nil
}

// appendNumericEntries appends the entries of the directory fd whose names
// are decimal numbers that fit an int32.
func (p *ProcReader) appendNumericEntries(fd int, ids []int32) []int32 {
	for {
		n, errno := procSys(unix.SYS_GETDENTS64, uintptr(fd), uintptr(unsafe.Pointer(&p.dents[0])), uintptr(len(p.dents)), 0, p.raw)
		if errno != 0 || int(n) <= 0 {
			return ids
		}
		b := p.dents[:n]
		// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type,
		// char name[], NUL-terminated within reclen.
		for len(b) >= 19 {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				break
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if id, ok := procParseInt32(name); ok {
				ids = append(ids, id)
			}
			b = b[reclen:]
		}
	}
}

// kernelRelease is the running kernel's release, as uname -r prints it; ""
// if uname fails.
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelAtLeast says whether release (uname -r: "6.18.44-fc-v1300",
// "5.14.0-362.el9.x86_64") is major.minor or later. A release it cannot
// read is not.
func kernelAtLeast(release string, major, minor int) bool {
	maj, rest, ok := strings.Cut(release, ".")
	if !ok {
		return false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	m, err1 := strconv.Atoi(maj)
	n, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil {
		return false
	}
	return m > major || m == major && n >= minor
}

// procGone says whether an errno from /proc/PID means the process is gone.
func procGone(errno unix.Errno) bool {
	return errno == unix.ENOENT || errno == unix.ESRCH
}

// procSys makes a system call of a procfs read, raw (unix.RawSyscall6)
// where the caller knows it cannot wait, else with unix.Syscall6, which lets
// the runtime give the thread's P to another goroutine while the call
// waits. On the real /proc, reading cmdline takes the target's mmap lock,
// which a process can hold for as long as it likes (a page fault on a
// stalled FUSE file), mountinfo its mount namespace's lock, cgroup the
// cgroup_mutex before Linux 6.8 (cgroup operations hold it), and
// status is read rarely; those may wait. The others (a lookup under
// /proc/PID, the links, stat, the task list, close) and the pidfd's calls
// take no lock that sleeps, and are raw: Syscall6's entersyscall wakes the
// runtime's sysmon thread when every P was idle, as each read of a new
// process found them, and sysmon then polls every 20 µs while any P is
// busy. A raw call holds its P, and the garbage collector waits for it.
func procSys(trap, a1, a2, a3, a4 uintptr, raw bool) (uintptr, unix.Errno) {
	var r uintptr
	var errno unix.Errno
	for {
		if raw {
			r, _, errno = unix.RawSyscall6(trap, a1, a2, a3, a4, 0, 0)
		} else {
			r, _, errno = unix.Syscall6(trap, a1, a2, a3, a4, 0, 0)
		}
		if errno != unix.EINTR {
			return r, errno
		}
	}
}

// procOpenat is openat(2) on a NUL-terminated name. unix.Openat would copy
// its string argument to a fresh NUL-terminated buffer on every call, one
// allocation per file on the recorder's hot path. raw is procSys's.
func procOpenat(dir int, name []byte, flags int, raw bool) (int, unix.Errno) {
	fd, errno := procSys(unix.SYS_OPENAT, uintptr(dir), uintptr(unsafe.Pointer(&name[0])), uintptr(flags), 0, raw)
	return int(fd), errno
}

// procReadlinkat is readlinkat(2) on a NUL-terminated name, without the
// allocation of unix.Readlinkat. raw is procSys's.
func procReadlinkat(dir int, name, buf []byte, raw bool) (int, unix.Errno) {
	n, errno := procSys(unix.SYS_READLINKAT, uintptr(dir), uintptr(unsafe.Pointer(&name[0])), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), raw)
	return int(n), errno
}

// procClose closes fd; raw is procSys's.
func procClose(fd int, raw bool) {
	_, _ = procSys(unix.SYS_CLOSE, uintptr(fd), 0, 0, 0, raw)
}

// procReadlink appends the target of the link name to dst. An unreadable
// link appends nothing. raw is procSys's.
func procReadlink(dir int, name, dst []byte, raw bool) []byte {
	dst = slices.Grow(dst, procMaxLink)
	n, errno := procReadlinkat(dir, name, dst[len(dst):len(dst)+procMaxLink], raw)
	if errno != 0 || n <= 0 {
		return dst
	}
	return dst[:len(dst)+n]
}

// procReadFile appends up to limit bytes of the file name to dst. It returns
// what it read before any error, and the error.
//
// A short read ends the file: procfs fills the buffer given whenever it has
// the data (seq_file loops until the buffer is full, cmdline page by page),
// so the read that would return 0 is saved, one syscall of the ~30 a Read
// makes for each of stat, status, cmdline and cgroup. raw is procSys's, for
// the open, the reads and the close.
func procReadFile(dir int, name, dst []byte, limit int, raw bool) ([]byte, unix.Errno) {
	fd, errno := procOpenat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, raw)
	if errno != 0 {
		return dst, errno
	}
	defer procClose(fd, raw)
	start := len(dst)
	for len(dst)-start < limit {
		if len(dst) == cap(dst) {
			// Double, but never past the limit.
			dst = slices.Grow(dst, min(max(cap(dst), 512), start+limit-len(dst)))
		}
		end := min(cap(dst), start+limit)
		r, errno := procSys(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&dst[len(dst):end][0])), uintptr(end-len(dst)), 0, raw)
		if errno != 0 {
			return dst, errno
		}
		n := int(r)
		if n <= 0 {
			break
		}
		short := len(dst)+n < end
		dst = dst[:len(dst)+n]
		if short {
			break
		}
	}
	return dst, 0
}

// procParseStat parses /proc/PID/stat. comm is field 2, between the first
// '(' and the last ')': it may itself hold ") (", spaces and newlines, but
// every field after it is a number or the state letter. threads is field
// 20, num_threads; 0 when it cannot be parsed.
func procParseStat(b []byte) (comm []byte, ppid int32, start uint64, threads int32, ok bool) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return nil, 0, 0, 0, false
	}
	comm = b[open+1 : end]
	b = b[end+1:]
	var havePPID bool
	for field := 3; field <= 22; field++ {
		for len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		i := 0
		for i < len(b) && b[i] != ' ' && b[i] != '\n' {
			i++
		}
		tok := b[:i]
		b = b[i:]
		switch field {
		case 4:
			ppid, havePPID = procParseInt32(tok)
		case 20:
			threads, _ = procParseInt32(tok)
		case 22:
			v, ok := procParseUint(tok, 64)
			return comm, ppid, v, threads, ok && havePPID
		}
	}
	return comm, ppid, 0, threads, false
}

// procParseIDs parses the four numbers of the status line that begins with
// key ("Uid:" or "Gid:"): real, effective, saved and filesystem ids.
func procParseIDs(status []byte, key string) (ids [4]uint32) {
	var line []byte
	if bytes.HasPrefix(status, []byte(key)) {
		line = status[len(key):]
	} else if i := bytes.Index(status, []byte("\n"+key)); i >= 0 {
		line = status[i+1+len(key):]
	} else {
		return ids
	}
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	for k := range ids {
		for len(line) > 0 && (line[0] == '\t' || line[0] == ' ') {
			line = line[1:]
		}
		j := 0
		for j < len(line) && line[j] != '\t' && line[j] != ' ' {
			j++
		}
		v, ok := procParseUint(line[:j], 32)
		if !ok {
			return ids
		}
		ids[k] = uint32(v)
		line = line[j:]
	}
	return ids
}

// procParseNS parses the inode of a namespace link, "mnt:[4026531841]".
func procParseNS(link []byte) (uint64, bool) {
	i := bytes.IndexByte(link, '[')
	if i < 0 || len(link) < i+2 || link[len(link)-1] != ']' {
		return 0, false
	}
	return procParseUint(link[i+1:len(link)-1], 64)
}

// procParseUint parses a non-empty decimal number of at most bits bits,
// without the string conversion strconv.ParseUint would need.
func procParseUint(b []byte, bits uint) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	limit := uint64(1)<<bits - 1
	if bits == 64 {
		limit = ^uint64(0)
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// procParseInt32 parses a non-negative decimal int32: a pid.
func procParseInt32(b []byte) (int32, bool) {
	v, ok := procParseUint(b, 31)
	return int32(v), ok
}
