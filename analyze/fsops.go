package analyze

import (
	"encoding/binary"
	"strconv"
	"strings"

	"proctrail/analyze/internal/procstore"
)

// The changes a process made beyond open, rename and unlink: directories,
// links, modes and owners, sizes, device nodes, extended attributes,
// timestamps and mounts, as file accesses with their details; the signals
// it sent and the ptrace attaches it made; and the memfds it created, for
// fileless execs.

// Linux constants (the generic ABI's; x86, arm64 and riscv share them).
const (
	sIFMT          = 0o170000
	mfdCloexec     = 0x1
	msMgcMask      = 0xffff0000 // MS_MGC_MSK: the old magic in mount's flags
	msMgcVal       = 0xc0ed0000
	ptraceTraceme  = 0
	ptraceAttach   = 16
	ptraceSeize    = 0x4206
	unchangedID    = 0xffffffff // (uid_t)-1: chown leaves it
	permMask       = 0o7777
	perm16Unchange = 0xffff // (old_uid_t)-1 of i386's 16-bit chown
)

// Ops lists the file operations the analysis reports, in the order of the
// README's table: what each means is on File.Op.
var Ops = []string{
	"open", "create", "exec", "unlink", "rmdir", "rename", "mkdir", "link", "symlink",
	"chmod", "chown", "truncate", "mknod", "setxattr", "removexattr", "utime",
	"mount", "umount", "chdir", "pivot_root", "setns",
}

// auditChange applies the syscalls of a file change other than open,
// rename and unlink; it reports false for a syscall it does not handle.
func (b *builder) auditChange(p *proc, c *call) bool {
	switch c.sc {
	case "mkdir", "mkdirat":
		if c.success {
			dirfd := int32(atFDCWD)
			if c.sc == "mkdirat" {
				dirfd = fdArg(c.a[0])
			}
			if it := c.target("CREATE"); it != nil {
				f := File{Path: b.resolve(p, c, dirfd, it), Op: "mkdir", Open: c.t, Close: c.t}
				arg := c.a[1]
				if c.sc == "mkdirat" {
					arg = c.a[2]
				}
				f.Perm = newPerm(it, arg)
				b.addFile(p, f)
			}
		}
	case "link", "linkat":
		if c.success {
			b.auditLink(p, c)
		}
	case "symlink", "symlinkat":
		if c.success {
			b.auditSymlink(p, c)
		}
	case "chmod", "fchmod", "fchmodat", "fchmodat2":
		if c.success {
			mode := c.a[1]
			if c.sc == "fchmodat" || c.sc == "fchmodat2" {
				mode = c.a[2]
			}
			b.fileChange(p, c, File{Op: "chmod", Perm: fmtPerm(uint32(mode))})
		}
	case "chown", "fchown", "fchownat", "lchown", "chown32", "fchown32", "lchown32":
		if c.success {
			uid, gid := c.a[1], c.a[2]
			if c.sc == "fchownat" {
				uid, gid = c.a[2], c.a[3]
			}
			wide := c.sc != "chown" && c.sc != "fchown" && c.sc != "lchown" || c.arch64
			b.fileChange(p, c, File{Op: "chown", Owner: fmtOwner(uid, gid, wide)})
		}
	case "truncate", "ftruncate", "truncate64", "ftruncate64":
		if c.success {
			size := int64(c.a[1])
			if c.sc == "truncate64" || c.sc == "ftruncate64" {
				// i386 passes the 64-bit length in two registers.
				size = int64(uint32(c.a[1])) | int64(uint32(c.a[2]))<<32
			}
			b.fileChange(p, c, File{Op: "truncate", Size: strconv.FormatInt(size, 10)})
		}
	case "mknod", "mknodat":
		if c.success {
			dirfd, mode := int32(atFDCWD), c.a[1]
			if c.sc == "mknodat" {
				dirfd, mode = fdArg(c.a[0]), c.a[2]
			}
			if it := c.target("CREATE"); it != nil {
				b.addFile(p, File{Path: b.resolve(p, c, dirfd, it), Op: "mknod", Open: c.t, Close: c.t,
					Perm: newPerm(it, mode), Type: nodeType(uint32(mode))})
			}
		}
	case "setxattr", "lsetxattr", "fsetxattr":
		if c.success {
			b.fileChange(p, c, File{Op: "setxattr"})
		}
	case "removexattr", "lremovexattr", "fremovexattr":
		if c.success {
			b.fileChange(p, c, File{Op: "removexattr"})
		}
	case "utimensat", "utimensat_time64", "utimes", "futimesat", "utime":
		if c.success {
			times := c.a[1]
			if c.sc == "utimensat" || c.sc == "utimensat_time64" || c.sc == "futimesat" {
				times = c.a[2]
			}
			f := File{Op: "utime", Flags: "now"}
			if times != 0 {
				f.Flags = "set"
			}
			b.fileChange(p, c, f)
		}
	case "mount":
		if c.success {
			b.auditMount(p, c)
		}
	case "umount2", "umount":
		if it := c.target(""); c.success && it != nil {
			f := File{Path: b.resolve(p, c, atFDCWD, it), Op: "umount", Open: c.t, Close: c.t}
			if c.sc == "umount2" {
				f.Flags = flagNames(c.a[1], umountFlags)
			}
			b.addFile(p, f)
		}
	case "kill", "tkill", "tgkill", "ptrace":
		b.auditSignal(p, c)
	case "memfd_create":
		if c.success && c.exitNum && c.exit >= 0 {
			b.setFD(p, int32(c.exit), &procstore.FD{Memfd: true, Cloexec: c.a[1]&mfdCloexec != 0, Time: c.t}, c.t)
		}
	default:
		return false
	}
	return true
}

// fileChange adds f, a change of an existing file, at the path the call
// named: its item resolved against its dirfd, or the file of its fd for
// the f* forms and an empty name (AT_EMPTY_PATH). A file it cannot name,
// or a memfd, is left out.
func (b *builder) fileChange(p *proc, c *call, f File) {
	fd, dirfd := int32(-1), int32(atFDCWD)
	switch c.sc {
	case "fchmod", "fchown", "fchown32", "ftruncate", "ftruncate64", "fsetxattr", "fremovexattr":
		fd = fdArg(c.a[0])
	case "fchmodat", "fchmodat2", "fchownat", "futimesat":
		dirfd = fdArg(c.a[0])
	case "utimensat", "utimensat_time64":
		dirfd = fdArg(c.a[0])
		if c.a[1] == 0 {
			// futimens(fd, …): no name, the fd itself.
			fd = dirfd
		}
	}
	if fd < 0 {
		if it := c.target(""); it != nil && it.name != "" {
			// resolve names a /proc/self/fd/N path by its fd's file:
			// glibc's fchmodat(AT_SYMLINK_NOFOLLOW) opens the file
			// O_PATH and chmods /proc/self/fd/N (tar x does).
			f.Path = b.resolve(p, c, dirfd, it)
		} else if dirfd != atFDCWD {
			fd = dirfd // AT_EMPTY_PATH
		}
	}
	if fd >= 0 {
		if e := b.lookupFD(p, fd); e != nil {
			f.Path = e.Path
		}
	}
	if f.Path == "" {
		return
	}
	f.Open, f.Close = c.t, c.t
	b.addFile(p, f)
}

// auditLink adds a hard link: its new name, and the existing file it
// names (linkat with AT_EMPTY_PATH names an fd's file: an O_TMPFILE file
// given a name).
func (b *builder) auditLink(p *proc, c *call) {
	to := c.target("CREATE")
	if to == nil || to.nametype != "CREATE" {
		return
	}
	olddir, newdir := int32(atFDCWD), int32(atFDCWD)
	if c.sc == "linkat" {
		olddir, newdir = fdArg(c.a[0]), fdArg(c.a[2])
	}
	f := File{Path: b.resolve(p, c, newdir, to), Op: "link", Open: c.t, Close: c.t}
	for i := range c.items {
		it := &c.items[i]
		if it.nametype == "PARENT" || it.nametype == "CREATE" {
			continue
		}
		if it.name != "" {
			f.Target = b.resolve(p, c, olddir, it)
		} else if e := b.lookupFD(p, olddir); e != nil {
			f.Target = e.Path
		}
		break
	}
	b.addFile(p, f)
}

// auditSymlink adds a symlink with its text: the kernel logs it as a PATH
// item of its own (nametype UNKNOWN, no inode), between the new name's
// PARENT and CREATE items.
func (b *builder) auditSymlink(p *proc, c *call) {
	to := c.target("CREATE")
	if to == nil || to.nametype != "CREATE" {
		return
	}
	newdir := int32(atFDCWD)
	if c.sc == "symlinkat" {
		newdir = fdArg(c.a[1])
	}
	f := File{Path: b.resolve(p, c, newdir, to), Op: "symlink", Open: c.t, Close: c.t}
	for i := range c.items {
		if it := &c.items[i]; it.nametype != "PARENT" && it.nametype != "CREATE" && it.hasName {
			f.Target = b.strs.intern(it.name)
			break
		}
	}
	b.addFile(p, f)
}

// auditMount adds a mount at its target (the first PATH item, which
// mount looks up first), with its source when the kernel looked that up
// as a path too (a bind or move's directory, a block device) and its
// flags. The source of other file systems (tmpfs, proc, overlay) and the
// file system's type are strings audit does not log.
func (b *builder) auditMount(p *proc, c *call) {
	var target, source *pathItem
	for i := range c.items {
		it := &c.items[i]
		if it.nametype == "PARENT" || !it.hasName {
			continue
		}
		if target == nil {
			target = it
		} else if source == nil {
			source = it
		}
	}
	if target == nil {
		return
	}
	flags := c.a[3]
	if flags&msMgcMask == msMgcVal {
		flags &^= msMgcMask
	}
	// runc mounts onto and from O_PATH fds, as /proc/self/fd/N: resolve
	// names them by their fds' files.
	f := File{Path: b.resolve(p, c, atFDCWD, target), Op: "mount", Open: c.t, Close: c.t, Flags: flagNames(flags, mountFlags)}
	if source != nil {
		f.Target = b.resolve(p, c, atFDCWD, source)
	}
	b.addFile(p, f)
	if c.success && flags&msBind != 0 && flags&msRemount == 0 {
		b.bindMounted(f.Target, f.Path)
	}
}

// Mount flags the filter reads.
const (
	msBind    = 4096
	msRemount = 32
)

// newPerm is the permission bits of a file mkdir or mknod made: its
// CREATE item's mode (the umask applied), else the mode asked for.
func newPerm(it *pathItem, arg uint64) string {
	if m, err := strconv.ParseUint(it.mode, 8, 32); err == nil && it.inode != "" {
		return fmtPerm(uint32(m))
	}
	return fmtPerm(uint32(arg))
}

// fmtPerm writes the permission bits of mode as four octal digits.
func fmtPerm(mode uint32) string {
	s := strconv.FormatUint(uint64(mode&permMask), 8)
	return strings.Repeat("0", 4-len(s)) + s
}

// permBit reports whether the octal permission perm has bit.
func permBit(perm string, bit uint64) bool {
	m, err := strconv.ParseUint(perm, 8, 32)
	return err == nil && m&bit != 0
}

// fmtOwner writes chown's ids as "UID:GID", a side empty when left
// unchanged (-1); wide says the ids are 32 bits (else i386's 16-bit
// chown).
func fmtOwner(uid, gid uint64, wide bool) string {
	id := func(v uint64) string {
		v &= unchangedID
		if v == unchangedID || !wide && v == perm16Unchange {
			return ""
		}
		return strconv.FormatUint(v, 10)
	}
	return id(uid) + ":" + id(gid)
}

// nodeType names the file type of mknod's mode.
func nodeType(mode uint32) string {
	switch mode & sIFMT {
	case 0o010000:
		return "fifo"
	case 0o020000:
		return "char"
	case 0o060000:
		return "block"
	case 0o140000:
		return "socket"
	case 0, 0o100000:
		return "file"
	}
	return "0" + strconv.FormatUint(uint64(mode&sIFMT), 8)
}

type flagName struct {
	bit  uint64
	name string
}

// mountFlags are mount(2)'s MS_* flags, in bit order.
var mountFlags = []flagName{
	{1, "ro"}, {2, "nosuid"}, {4, "nodev"}, {8, "noexec"}, {16, "sync"}, {32, "remount"},
	{64, "mand"}, {128, "dirsync"}, {256, "nosymfollow"}, {1024, "noatime"}, {2048, "nodiratime"},
	{4096, "bind"}, {8192, "move"}, {16384, "rec"}, {32768, "silent"}, {1 << 16, "posixacl"},
	{1 << 17, "unbindable"}, {1 << 18, "private"}, {1 << 19, "slave"}, {1 << 20, "shared"},
	{1 << 21, "relatime"}, {1 << 22, "kernmount"}, {1 << 23, "i_version"}, {1 << 24, "strictatime"},
	{1 << 25, "lazytime"},
}

// umountFlags are umount2(2)'s flags.
var umountFlags = []flagName{{1, "force"}, {2, "detach"}, {4, "expire"}, {8, "nofollow"}}

// flagNames writes the flags of v by name, comma-separated, and any
// others in hex.
func flagNames(v uint64, names []flagName) string {
	var parts []string
	for _, n := range names {
		if v&n.bit != 0 {
			parts = append(parts, n.name)
			v &^= n.bit
		}
	}
	if v != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(v, 16))
	}
	return strings.Join(parts, ",")
}

// isMemfdExe reports whether exe, as audit's exe= or /proc/PID/exe shows
// it, is a memfd's: the kernel names those "/memfd:NAME (deleted)".
func isMemfdExe(exe string) bool { return strings.HasPrefix(exe, "/memfd:") }

// procFDPath returns the fd of a path that names one of the process's own
// fds (/proc/self/fd/N, /proc/PID/fd/N of pid, /dev/fd/N): what fexecve
// runs where execveat is missing.
func procFDPath(s string, pid int32) (int32, bool) {
	fd, rest, ok := procFD(s, pid)
	return fd, ok && rest == ""
}

// procFD splits a path that begins with one of the process's own fds
// (/proc/self/fd/N, /proc/PID/fd/N of pid, /dev/fd/N) into the fd and
// what follows it ("" when nothing does).
func procFD(s string, pid int32) (fd int32, rest string, ok bool) {
	rest, ok = strings.CutPrefix(s, "/dev/fd/")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "/proc/"); !ok {
			return 0, "", false
		}
		var who string
		if who, rest, ok = strings.Cut(rest, "/"); !ok {
			return 0, "", false
		}
		if who != "self" && who != strconv.Itoa(int(pid)) {
			return 0, "", false
		}
		if rest, ok = strings.CutPrefix(rest, "fd/"); !ok {
			return 0, "", false
		}
	}
	num, rest, _ := strings.Cut(rest, "/")
	n, err := strconv.ParseInt(num, 10, 32)
	if err != nil || n < 0 {
		return 0, "", false
	}
	return int32(n), rest, true
}

// Signals go to the spool as file accesses do, in a chain of their own:
//
//	next  int64  offset+1 of the process's next signal; 0: none yet
//	time  int64
//	pid, signal, target, opid: varints (target a Ref, 0: none)
//	op, request, error, ocomm: each a uvarint length and the bytes
//
// all integers little-endian. opid and ocomm are audit's OBJ_PID, kept
// for a target that is not in the capture.

// auditSignal adds a signal or a ptrace attach, failed ones too (an
// EPERM is someone trying).
func (b *builder) auditSignal(p *proc, c *call) {
	if !c.success && !c.exitNum {
		return
	}
	s := sigRec{op: c.sc, t: c.t, pid: fdArg(c.a[0])}
	switch c.sc {
	case "kill":
		s.signal = int64(uint32(c.a[1]))
	case "tkill":
		s.signal = int64(uint32(c.a[1]))
	case "tgkill":
		s.pid, s.signal = fdArg(c.a[1]), int64(uint32(c.a[2]))
	case "ptrace":
		switch c.a[0] {
		case ptraceAttach:
			s.request = "attach"
		case ptraceSeize:
			s.request = "seize"
		case ptraceTraceme:
			s.request = "traceme"
		default:
			return // only the rules' requests: other records were not asked for
		}
		s.pid = fdArg(c.a[1])
		if c.a[0] == ptraceTraceme {
			s.pid = 0
		}
	}
	if !c.success {
		s.err = c.errno
	}
	if len(c.objs) > 0 {
		o := c.objs[0]
		s.opid, s.ocomm = o.pid, o.comm
		if t := b.current(o.pid); t != nil {
			s.target = t.Ref()
		}
	} else if c.success && c.sc == "ptrace" && s.pid > 0 {
		if t := b.current(s.pid); t != nil {
			s.target = t.Ref()
		} else if r, ok := b.byTID[s.pid]; ok {
			s.target = r
		}
	}
	b.addSignal(p, &s)
	// A signal to a process group reaches each of its processes: one
	// entry for each further one audit named.
	for _, o := range c.objs[min(1, len(c.objs)):] {
		s2 := s
		s2.opid, s2.ocomm, s2.target = o.pid, o.comm, 0
		if t := b.current(o.pid); t != nil {
			s2.target = t.Ref()
		}
		b.addSignal(p, &s2)
	}
}

// sigRec is a signal as the builder records it.
type sigRec struct {
	op, request, err, ocomm string
	t                       int64
	pid, opid               int32
	signal                  int64
	target                  ref
}

// addSignal appends s to p's signals in the spool.
func (b *builder) addSignal(p *proc, s *sigRec) {
	rec := b.fileBuf[:0]
	rec = binary.LittleEndian.AppendUint64(rec, 0)
	rec = binary.LittleEndian.AppendUint64(rec, uint64(s.t))
	rec = binary.AppendVarint(rec, int64(s.pid))
	rec = binary.AppendVarint(rec, s.signal)
	rec = binary.AppendVarint(rec, int64(s.target))
	rec = binary.AppendVarint(rec, int64(s.opid))
	for _, v := range [...]string{s.op, s.request, s.err, s.ocomm} {
		rec = binary.AppendUvarint(rec, uint64(len(v)))
		rec = append(rec, v...)
	}
	b.fileBuf = rec
	b.chain(rec, &p.FirstSignal, &p.LastSignal)
}

// readSignal decodes the signal at off, and returns the offset+1 of the
// next of its process (0: none); ok is false for a corrupt record.
func (b *builder) readSignal(off int64) (s sigRec, next int64, ok bool) {
	d := b.spool.Record(off)
	if len(d) < 16 {
		b.spool.Corrupt(off)
		return s, 0, false
	}
	next = int64(binary.LittleEndian.Uint64(d))
	s.t = int64(binary.LittleEndian.Uint64(d[8:]))
	d = d[16:]
	var ints [4]int64
	for i := range ints {
		v, k := binary.Varint(d)
		if k <= 0 {
			b.spool.Corrupt(off)
			return s, 0, false
		}
		ints[i], d = v, d[k:]
	}
	s.pid, s.signal, s.target, s.opid = int32(ints[0]), ints[1], ref(ints[2]), int32(ints[3])
	if s.target < 0 || int(s.target) > b.procs.Len() {
		b.spool.Corrupt(off)
		return s, 0, false
	}
	for _, dst := range [...]*string{&s.op, &s.request, &s.err, &s.ocomm} {
		l, k := binary.Uvarint(d)
		if k <= 0 || l > uint64(len(d)-k) {
			b.spool.Corrupt(off)
			return s, 0, false
		}
		*dst = b.spool.Intern(d[k : k+int(l)])
		d = d[k+int(l):]
	}
	return s, next, true
}

// signals returns the signals whose chain begins at first, their times
// clamped to the life of out (the sender's output), their targets named.
// It must not run inside a View.
func (b *builder) signals(first int64, out *Process, boot, captureStart int64) []Signal {
	var sigs []Signal
	for next := first; next != 0; {
		s, n, ok := b.readSignal(next - 1)
		if !ok {
			break
		}
		next = n
		sg := Signal{Op: s.op, Time: clampTo(s.t, out.Start, out.End), PID: s.pid, Signal: int(s.signal),
			Request: s.request, Error: s.err, TargetPID: s.opid, TargetComm: s.ocomm}
		if !s.target.None() {
			b.procs.View(func() {
				t := b.procs.Get(s.target)
				tp, _ := b.process(t, boot, captureStart)
				sg.TargetPID, sg.TargetStart, sg.TargetComm = tp.PID, tp.Start, tp.Comm
			})
		}
		sigs = append(sigs, sg)
	}
	return sigs
}

// signalTargets returns the processes p's signals reached.
func (b *builder) signalTargets(first int64) []ref {
	var out []ref
	for next := first; next != 0; {
		s, n, ok := b.readSignal(next - 1)
		if !ok {
			break
		}
		next = n
		if !s.target.None() {
			out = append(out, s.target)
		}
	}
	return out
}

// signalNames are the standard signals' names, by number (x86, arm and
// most others; the architectures proctrail records share them).
var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP",
	20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

// SignalName names signal n: SIGTERM, SIGRTMIN+3, or its number.
func SignalName(n int) string {
	switch {
	case n > 0 && n < len(signalNames):
		return signalNames[n]
	case n >= 34 && n <= 64:
		return "SIGRTMIN+" + strconv.Itoa(n-34)
	}
	return strconv.Itoa(n)
}
