package analyze

import (
	"strconv"
	"strings"

	"proctrail/analyze/internal/procstore"
)

// Audit adds to the connector's processes what they ran (exe, argv, cwd),
// the files they touched, and the container plumbing (pivot_root,
// setns); from audit alone (auditd logs) it is also the only source of
// processes and parents.

// Linux constants (the generic ABI's; x86, arm64 and riscv share them).
const (
	atFDCWD         = -100
	oAccMode        = 0x3
	oCloexec        = 0x80000
	cloneThread     = 0x10000
	cloneParentFlag = 0x8000
	atRemoveDir     = 0x200
)

// audit applies one audited syscall.
func (b *builder) audit(c *call) {
	if b.auditOnly && c.t >= b.nextExpiry {
		b.expirePending(c.t)
		b.nextExpiry = c.t + pendingWindow
	}
	p := b.auditProc(c.pid, c.ppid, c)
	if c.hasUID {
		setUID(p, c.uid, c.t)
	}
	// pivot_root's CWD record is already relative to the new root: the
	// tracked cwd, from the process's earlier events, is the one to use.
	if c.hasCwd && c.sc != "pivot_root" {
		p.Cwd = b.strs.intern(c.cwd)
		if p.FirstCwd == "" {
			p.FirstCwd = p.Cwd
		}
	}
	if c.success && changesMounts(c.sc) {
		b.mounts.mountCall(p.PID, c.t)
	}

	switch c.sc {
	case "execve", "execveat":
		if c.success {
			b.auditExec(p, c)
		} else {
			b.auditFailedExec(p, c)
		}
	case "clone", "clone3", "fork", "vfork":
		if c.success && c.exitNum && c.exit > 0 {
			b.auditClone(p, c)
		}
	case "exit_group":
		// exit_group never returns: no success or exit field; the status
		// is its argument.
		p.ExitGroup = procstore.ExitGroup{Seen: true, Code: int(c.a[0] & 0xff), Time: c.t, HeaderTime: c.header}
		if b.auditOnly && !p.ForkSeen && !p.InSnapshot && p.End() == 0 {
			// Audit alone (an auditd log, an import): no exit event
			// will come, so the process ends here, and is retired
			// and frozen as the connector's would be.
			b.procs.End(p, c.t)
		}
	case "open", "openat", "openat2", "creat":
		b.auditOpen(p, c)
	case "close":
		if c.success {
			b.closeFD(p, fdArg(c.a[0]), c.t)
		}
	case "close_range":
		if c.success {
			b.closeRange(p, c.a[0], c.a[1], c.a[2]&closeRangeCloexec != 0, c.t)
		}
	case "fcntl", "fcntl64":
		// The rules audit only its duplications; another command, from
		// a rule of the user's, changes no fd.
		if dup := c.a[1] == fDupFD || c.a[1] == fDupFDCloexec; dup && c.success && c.exitNum {
			b.dupFD(p, fdArg(c.a[0]), int32(c.exit), c.a[1] == fDupFDCloexec, c.t)
		}
	case "dup":
		if c.success && c.exitNum {
			b.dupFD(p, fdArg(c.a[0]), int32(c.exit), false, c.t)
		}
	case "dup2", "dup3":
		if c.success && c.exitNum && fdArg(c.a[0]) != fdArg(c.a[1]) {
			b.dupFD(p, fdArg(c.a[0]), fdArg(c.a[1]), c.sc == "dup3" && c.a[2]&oCloexec != 0, c.t)
		}
	case "pipe", "pipe2", "socketpair", "pidfd_open", "pidfd_getfd":
		if c.success {
			b.auditNewFDs(p, c)
		}
	case "chdir":
		if it := c.target(""); c.success && it != nil {
			dir := b.resolve(p, c, atFDCWD, it)
			p.Cwd = dir
			b.addFile(p, File{Path: dir, Op: "chdir", Open: c.t, Close: c.t})
		}
	case "fchdir":
		if c.success {
			if e := b.lookupFD(p, fdArg(c.a[0])); e != nil {
				p.Cwd = e.Path
				b.addFile(p, File{Path: e.Path, Op: "chdir", Open: c.t, Close: c.t})
			}
		}
	case "rename", "renameat", "renameat2":
		if c.success {
			b.auditRename(p, c)
		}
	case "unlink", "unlinkat", "rmdir":
		if it := c.target("DELETE"); c.success && it != nil {
			dirfd, op := int32(atFDCWD), "unlink"
			if c.sc == "unlinkat" {
				dirfd = fdArg(c.a[0])
				if c.a[2]&atRemoveDir != 0 {
					op = "rmdir"
				}
			}
			if c.sc == "rmdir" {
				op = "rmdir"
			}
			b.addFile(p, File{Path: b.resolve(p, c, dirfd, it), Op: op, Open: c.t, Close: c.t})
			if op == "rmdir" {
				b.dirRemoved(it)
			}
		}
	case "pivot_root":
		if it := c.target(""); c.success && it != nil {
			// Resolved against the cwd the process had before: runc does
			// fchdir(rootfs); pivot_root(".", ".").
			root := b.joinPath(p.Cwd, it.name)
			if strings.HasPrefix(root, "/") {
				p.PivotRoot = root
			}
			if p.Cwd == root {
				p.Cwd = "/"
			}
			b.rootMoved(p)
			b.addFile(p, File{Path: root, Op: "pivot_root", Open: c.t, Close: c.t})
		}
	case "setns":
		if c.success {
			b.auditSetns(p, c)
		}
	case "socket", "connect", "bind", "listen", "accept", "accept4", "sendto", "sendmsg":
		b.auditNet(p, c)
	case "unshare", "exit":
	default:
		if !b.auditChange(p, c) && c.success {
			b.auditOther(p, c)
		}
	}
}

func fdArg(a uint64) int32 { return int32(uint32(a)) }

// auditProc returns the process an audit event belongs to: the
// incarnation of pid alive at the event's header time, or a new one when
// pid is unknown (its creation was not seen, or audit is the only source).
func (b *builder) auditProc(pid, ppid int32, c *call) *proc {
	p := b.current(pid)
	if p == nil || b.auditEnded(p) {
		p = b.newProc(pid, c.t)
		if pc, ok := b.pending[pid]; ok && absDiff(pc.t, c.t) < pendingWindow {
			delete(b.pending, pid)
			auditCreated(p, b.procs.Get(pc.creator), pc.t)
		} else if pc, ok := b.claimByCreator(ppid, c.t); ok {
			auditCreated(p, b.procs.Get(pc.creator), pc.t)
		} else {
			b.reportedParent(p, ppid, c.t)
		}
		if !c.success || (c.sc != "execve" && c.sc != "execveat") {
			p.FirstAuditComm, p.FirstAuditExe = b.strs.intern(c.comm), b.strs.intern(c.exe)
		}
		return p
	}
	if !p.PrevIncarnation.None() && p.ForkSeen && c.header != 0 && c.header < p.Start-reuseSlack {
		// A late event of the previous process of a reused pid.
		return b.procs.Get(p.PrevIncarnation)
	}
	if p.ParentSource < procstore.ParentReported {
		b.reportedParent(p, ppid, c.t)
	}
	return p
}

func (b *builder) auditExec(p *proc, c *call) {
	dirfd := int32(atFDCWD)
	if c.sc == "execveat" {
		dirfd = fdArg(c.a[0])
	}
	// Item 0 is the file execve was given; more items name the script's
	// interpreter and the loader. For execveat(fd, "", AT_EMPTY_PATH) its
	// name is empty (auparse drops it) but its inode is there.
	var it *pathItem
	for i := range c.items {
		if c.items[i].nametype != "PARENT" {
			it = &c.items[i]
			break
		}
	}
	var target string
	var key dirKey
	if it != nil {
		if it.name != "" {
			target = b.resolve(p, c, dirfd, it)
		}
		if it.inode != "" {
			key = dirKey{it.dev, it.inode}
		}
	}
	// runc re-executes itself from a memfd or an fd of a bind mount of
	// /proc/self/exe (execveat(fd, "", AT_EMPTY_PATH)): audit shows
	// exe="/". The executed inode, seen under its name before, or the
	// fd's path tell what ran; a memfd stays unknown.
	exe := c.exe
	if exe == "/" {
		exe = ""
	}
	if exe == "" && key.inode != "" {
		exe = b.exes[key]
	}
	// A fileless exec: a memfd's fd given to execveat (or its
	// /proc/self/fd/N to execve), or a program the kernel names
	// /memfd:… (a memfd whose creation audit did not show).
	fileless := isMemfdExe(exe)
	if exe == "" && c.sc == "execveat" && target == "" {
		if e := b.lookupFD(p, dirfd); e != nil {
			exe, fileless = e.Path, fileless || e.Memfd
		}
	} else if c.sc == "execveat" && target == "" {
		if e := b.lookupFD(p, dirfd); e != nil && e.Memfd {
			fileless = true
		}
	}
	if fd, ok := procFDPath(target, p.PID); ok {
		if e := b.lookupFD(p, fd); e != nil && e.Memfd {
			fileless = true
		}
	}
	if exe != "" && key.inode != "" {
		if len(b.exes) >= maxDirs {
			clear(b.exes)
		}
		b.exes[dirKey{strings.Clone(key.dev), strings.Clone(key.inode)}] = b.strs.intern(exe)
	}
	// argv comes from EXECVE records: PROCTITLE is cached at the task's
	// first audited syscall and can still show the previous command.
	var x *procstore.Exec
	for i := lastIndex(p.Execs, func(x *procstore.Exec) bool { return x.FromAudit }) + 1; i < len(p.Execs); i++ {
		if !p.Execs[i].FromAudit {
			x = p.Execs[i]
			break
		}
	}
	if x == nil {
		x = &procstore.Exec{Time: c.t}
		p.Execs = append(p.Execs, x)
	}
	x.FromAudit, x.Fileless = true, fileless
	x.Audit.Exe, x.Audit.Cwd, x.Audit.Comm, x.Path = b.strs.intern(exe), b.strs.intern(c.cwd), b.strs.intern(c.comm), target
	if c.argv != nil {
		// Interned: the arguments point into the replay's shared blocks.
		x.Audit.Argv, x.AuditArgv = b.strs.internAll(c.argv), true
	}
	if x.Audit.Cwd == "" {
		x.Audit.Cwd = p.Cwd
	}
	if target == "" {
		target = x.Audit.Exe
	}
	if target != "" {
		b.addFile(p, File{Path: target, Op: "exec", Open: c.t, Close: c.t})
	}
	// close-on-exec
	var closing []int32
	for fd, e := range p.FDs.All {
		if e.Cloexec {
			closing = append(closing, fd)
		}
	}
	for _, fd := range closing {
		b.closeFD(p, fd, c.t)
	}
	p.ExecedInAudit = true
}

// auditFailedExec keeps a failed execve or execveat as an exec access
// with its errno: the path it was given (a shell or execvp trying each
// directory of $PATH leaves one per directory).
func (b *builder) auditFailedExec(p *proc, c *call) {
	it := c.target("")
	if it == nil || c.errno == "" {
		return
	}
	dirfd := int32(atFDCWD)
	if c.sc == "execveat" {
		dirfd = fdArg(c.a[0])
	}
	b.addFile(p, File{Path: b.resolve(p, c, dirfd, it), Op: "exec", Open: c.t, Close: c.t, Error: c.errno})
}

// auditClone refines parentage from the creator's side. The connector's
// fork event names the kernel's parent, which for CLONE_PARENT (runc's
// nsexec uses it) is the creator's own parent; the clone record names the
// creator. Inside a pid namespace clone returns a namespace-local pid that
// does not match the host pid=, so only a child that fits is touched.
func (b *builder) auditClone(p *proc, c *call) {
	if c.sc == "clone" && c.a[0]&cloneThread != 0 {
		if b.auditOnly {
			// From audit alone, the clone record is what shows a
			// thread (its syscalls carry its process's pid).
			addThread(p, int32(c.exit), c.t)
		}
		return
	}
	// CLONE_PARENT shows in clone's flags; clone3 hides its flags in a
	// struct, so it may have been set.
	parentFlag := c.sc == "clone3" || (c.sc == "clone" && c.a[0]&cloneParentFlag != 0)
	pid := int32(c.exit)
	if _, thread := b.byTID[pid]; thread {
		return
	}
	ch := b.current(pid)
	if ch != nil && b.auditEnded(ch) && c.header > ch.ExitGroup.HeaderTime {
		// The pid's process exited before this clone began: the clone
		// made another, whose first record is still to come. (A vfork's
		// record comes after its child's exit_group, and began before.)
		ch = nil
	}
	if ch == nil || (ch.ForkSeen && ch.Start < c.t-pendingWindow) {
		// The child's fork event has not come yet.
		if len(b.pending) >= maxPending {
			b.expirePending(c.t)
		}
		if len(b.pending) < maxPending {
			b.pending[pid] = pendingClone{creator: p.Ref(), t: c.t, parent: parentFlag, clone3: c.sc == "clone3"}
		}
		return
	}
	if ch == p || ch.InSnapshot || ch.Start > c.t+maxCloneWindow || c.t-ch.Start > maxCloneWindow {
		return
	}
	if ch.ForkSeen {
		if parentFlag {
			cloneParent(ch, p)
		}
		return
	}
	if ch.ParentSource < procstore.ParentClone {
		auditCreated(ch, p, c.t)
	}
}

// auditEnded reports whether p, known from audit alone, called
// exit_group: exit_group is a process's last system call, so a later
// event of its pid is another process's (the pid was reused).
func (b *builder) auditEnded(p *proc) bool {
	return b.auditOnly && p.ExitGroup.Seen && p.End() != 0 && !p.Exited
}

// auditCreated makes creator the parent of ch, a process known only from
// audit.
func auditCreated(ch, creator *proc, t int64) {
	setParent(ch, creator, procstore.ParentClone)
	ch.CreatedByClone = true
	ch.ParentExecsAtFork = len(creator.Execs)
	if t < ch.Start {
		ch.Start, ch.Tasks[0].Start = t, t
	}
}

func (b *builder) auditOpen(p *proc, c *call) {
	it := c.target("CREATE")
	if it == nil {
		return
	}
	dirfd := int32(atFDCWD)
	var flags uint64
	known := true
	switch c.sc {
	case "open":
		flags = c.a[1]
	case "openat":
		dirfd, flags = fdArg(c.a[0]), c.a[2]
	case "openat2":
		dirfd, known = fdArg(c.a[0]), false // flags are in a struct
	case "creat":
		flags = 0x1 | 0x40 | 0x200 // O_WRONLY|O_CREAT|O_TRUNC
	}
	f := File{Path: b.resolve(p, c, dirfd, it), Op: "open", Open: c.t}
	if it.nametype == "CREATE" {
		f.Op = "create"
	}
	if known {
		f.Mode = [...]string{"r", "w", "rw", "rw"}[flags&oAccMode]
	}
	if !c.success {
		// Every failed attempt is kept: a denied one is evidence, and
		// the loader's and execvp's probes are folded into searches at
		// the output (search.go).
		f.Close, f.Error = c.t, c.errno
		b.addFile(p, f)
		return
	}
	if !c.exitNum || c.exit < 0 {
		return
	}
	if b.auditOnly && f.Mode != "r" && strings.HasSuffix(f.Path, "/cgroup.procs") {
		b.cgroupWrite(p, f.Path)
	}
	of := b.openFile(p, b.addFile(p, f))
	e := &procstore.FD{Path: f.Path, File: of, Cloexec: known && flags&oCloexec != 0, Time: c.t}
	if it.dir && it.inode != "" && it.nametype != "CREATE" {
		// A directory: a dirfd, checked against the PARENT records of
		// the calls that use it.
		e.Dev, e.Inode = strings.Clone(it.dev), strings.Clone(it.inode)
	}
	b.setFD(p, int32(c.exit), e, c.t)
}

func (b *builder) auditRename(p *proc, c *call) {
	from, to := c.target("DELETE"), c.target("CREATE")
	if from == nil || to == nil || from == to {
		return
	}
	olddir, newdir := int32(atFDCWD), int32(atFDCWD)
	if c.sc != "rename" {
		olddir, newdir = fdArg(c.a[0]), fdArg(c.a[2])
	}
	f := File{Path: b.resolve(p, c, olddir, from), Op: "rename", Open: c.t, Close: c.t, To: b.resolve(p, c, newdir, to)}
	b.addFile(p, f)
	if from.dir {
		b.dirRenamed(from, f.Path, f.To, c.t)
	}
}

// auditSetns attributes a process that joins the mount namespace of a
// process in a container (runc exec, docker exec, nsenter) to that
// container. Joining only a network namespace (CNI plugins do) does not.
func (b *builder) auditSetns(p *proc, c *call) {
	e := b.lookupFD(p, fdArg(c.a[0]))
	if e == nil {
		return
	}
	b.addFile(p, File{Path: e.Path, Op: "setns", Open: c.t, Close: c.t})
	pid, ns, ok := procNSPath(e.Path)
	if !ok || ns != "mnt" {
		return
	}
	target := b.current(pid)
	if target != nil && !target.PrevIncarnation.None() && target.Start > e.Time {
		target = b.procs.Get(target.PrevIncarnation) // the pid was reused after the fd was opened
	}
	if target != nil && target != p {
		p.JoinedMountNS = target.Ref()
	}
	b.rootMoved(p)
}

// procNSPath parses /proc/PID/ns/NAME and /proc/PID/task/TID/ns/NAME.
func procNSPath(s string) (pid int32, ns string, ok bool) {
	rest, ok := strings.CutPrefix(s, "/proc/")
	if !ok {
		return 0, "", false
	}
	num, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.ParseInt(num, 10, 32)
	if err != nil || n <= 0 {
		return 0, "", false
	}
	if t, r, ok := strings.Cut(rest, "/"); ok && t == "task" {
		if _, r2, ok := strings.Cut(r, "/"); ok {
			rest = r2
		}
	}
	ns, ok = strings.CutPrefix(rest, "ns/")
	if !ok || ns == "" || strings.Contains(ns, "/") {
		return 0, "", false
	}
	return int32(n), ns, true
}

// auditOther records the paths of any other successful syscall a rules
// file audits (stat, access, readlink…) under the syscall's name, that of
// its plain form for the *at ones. The changes are auditChange's.
func (b *builder) auditOther(p *proc, c *call) {
	op, dirfd := c.sc, int32(atFDCWD)
	if base, ok := atSyscalls[op]; ok {
		op, dirfd = base, fdArg(c.a[0])
	}
	for i := range c.items {
		it := &c.items[i]
		if it.nametype == "PARENT" || !it.hasName {
			continue
		}
		b.addFile(p, File{Path: b.resolve(p, c, dirfd, it), Op: op, Open: c.t, Close: c.t})
	}
}

// atSyscalls are the *at syscalls whose a0 is the dirfd of their path,
// with the name of the plain syscall.
var atSyscalls = map[string]string{
	"faccessat":  "access",
	"faccessat2": "access",
	"newfstatat": "stat",
	"fstatat64":  "stat",
	"statx":      "stat",
	"readlinkat": "readlink",
}
