package analyze

import (
	"cmp"
	"encoding/hex"
	"math/bits"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"

	"proctrail/replay"
)

// Linux constants (the generic ABI's; x86, arm64 and riscv share them).
const (
	atFDCWD     = -100
	oAccMode    = 0x3
	oCloexec    = 0x80000
	cloneThread = 0x10000
	cloneParent = 0x8000
	atRemoveDir = 0x200
)

// pathItem is one PATH record of an event.
type pathItem struct {
	item       int
	name       string
	hasName    bool
	nametype   string
	dev, inode string
	dir        bool
}

// call is one audited syscall, its records parsed.
type call struct {
	sc      string
	comm    string
	exe     string
	success bool
	exit    int64
	exitNum bool
	errno   string
	a       [4]uint64
	cwd     string
	hasCwd  bool
	items   []pathItem
	header  int64
	t       int64
	pid     int32
	ppid    int32
	uid     int64
	hasUID  bool
	// argv is a successful execve's, from its EXECVE records; nil when
	// they are missing or malformed.
	argv []string
}

// parser reads audit events into calls. It holds no state of the
// analysis, only a cache, so that it can run ahead of the builder on a
// goroutine of its own (see readEvents).
//
// Records are read with a small parser of their key=value text rather than
// auparse's, which matches regular expressions and was two thirds of the
// analysis time: only a dozen keys are needed, and the kernel writes each
// either "quoted", as a bare token, or hex-encoded when it holds special
// bytes (audit_log_untrustedstring).
type parser struct {
	syscalls map[syscallKey]string // a cache of syscall names
}

// parse reads ev, received at capture time capT, into c, its PATH items
// appended to items, which it returns. ok is false for an event the
// builder skips: one without a SYSCALL record (CONFIG_CHANGE, USER_*, …),
// of an unknown syscall, or without a pid. The strings of c point into
// ev's records.
func (ps *parser) parse(c *call, ev *replay.AuditEvent, capT int64, items []pathItem) (ok bool, _ []pathItem) {
	*c = call{header: ev.Time.UnixNano()}
	first := len(items)
	var sys *replay.AuditRecord
	for i := range ev.Records {
		r := &ev.Records[i]
		switch r.Type {
		case auparse.AUDIT_SYSCALL:
			if sys == nil {
				sys = r
			}
		case auparse.AUDIT_CWD:
			// Not in the for statement: Go would copy f at each iteration.
			f := newFields(r.Text)
			for f.next() {
				if f.key == "cwd" {
					c.cwd, c.hasCwd = untrusted(f.val, f.quoted)
				}
			}
		case auparse.AUDIT_PATH:
			var it pathItem
			// Not in the for statement: Go would copy f at each iteration.
			f := newFields(r.Text)
			for f.next() {
				switch v := f.val; f.key {
				case "item":
					it.item, _ = atoi(v)
				case "name":
					it.name, it.hasName = untrusted(v, f.quoted)
				case "nametype":
					it.nametype = v
				case "dev":
					it.dev = v
				case "inode":
					it.inode = v
				case "mode":
					it.dir = strings.HasPrefix(v, "04")
				}
			}
			items = append(items, it)
		}
	}
	c.items = items[first:len(items):len(items)]
	if sys == nil {
		return false, items
	}
	var arch, num, pidS, ppidS, uidS string
	// Not in the for statement: Go would copy f at each iteration.
	f := newFields(sys.Text)
	for f.next() {
		// By length first: a SYSCALL record has some thirty fields, and
		// most are not wanted.
		k, v := f.key, f.val
		switch len(k) {
		case 2:
			if k[0] == 'a' && k[1] >= '0' && k[1] <= '3' {
				c.a[k[1]-'0'], _ = parseHex64(v)
			}
		case 3:
			switch k {
			case "pid":
				pidS = v
			case "uid":
				uidS = v
			case "exe":
				c.exe, _ = untrusted(v, f.quoted)
			}
		case 4:
			switch k {
			case "arch":
				arch = v
			case "exit":
				if n, err := parseDec(v, 64); err == nil {
					c.exit, c.exitNum = n, true
				}
			case "ppid":
				ppidS = v
			case "comm":
				c.comm, _ = untrusted(v, f.quoted)
			}
		case 7:
			switch k {
			case "syscall":
				num = v
			case "success":
				c.success = v == "yes"
			}
		}
	}
	c.sc = ps.syscallName(arch, num)
	if c.exitNum && c.exit < 0 {
		c.errno = errnoName(-c.exit)
	}
	slices.SortStableFunc(c.items, func(x, y pathItem) int { return cmp.Compare(x.item, y.item) })
	// The header time is the kernel's coarse clock at the syscall,
	// printed in milliseconds: the truth lies within auditClockSlack
	// after it, and before the capture time, which lags by kauditd's
	// queue (milliseconds, or seconds in a backlog).
	c.t = capT
	if c.header != 0 && capT-c.header > auditClockSlack {
		c.t = c.header + auditClockSlack
	}
	pid, err := parseDec(pidS, 32)
	if err != nil || pid <= 0 || c.sc == "" {
		return false, items
	}
	ppid, _ := parseDec(ppidS, 32)
	c.pid, c.ppid = int32(pid), int32(ppid)
	c.uid, err = parseDec(uidS, 64)
	c.hasUID = err == nil
	if (c.sc == "execve" || c.sc == "execveat") && c.success {
		if argv, err := ev.Argv(); err == nil {
			c.argv = argv
		}
	}
	return true, items
}

// audit applies one audited syscall.
func (b *builder) audit(c *call) {
	p := b.auditProc(c.pid, c.ppid, c)
	if c.hasUID {
		p.setUID(c.uid, c.t)
	}
	// pivot_root's CWD record is already relative to the new root: the
	// tracked cwd, from the process's earlier events, is the one to use.
	if c.hasCwd && c.sc != "pivot_root" {
		p.cwd = b.intern(c.cwd)
		if p.firstCwd == "" {
			p.firstCwd = p.cwd
		}
	}

	switch c.sc {
	case "execve", "execveat":
		if c.success {
			b.auditExec(p, c)
		}
	case "clone", "clone3", "fork", "vfork":
		if c.success && c.exitNum && c.exit > 0 {
			b.auditClone(p, c)
		}
	case "exit_group":
		// exit_group never returns: no success or exit field; the status
		// is its argument.
		p.auditExit, p.auditExitCode, p.auditExitT, p.auditExitH = true, int(c.a[0]&0xff), c.t, c.header
		if b.auditOnly && !p.forkSeen && !p.snapshot && p.end == 0 {
			// Audit alone (an auditd log, an import): no exit event
			// will come, so the process ends here, and is retired
			// and frozen as the connector's would be.
			b.markEnded(p, c.t)
		}
	case "open", "openat", "openat2", "creat":
		b.auditOpen(p, c)
	case "close":
		if c.success {
			b.closeFD(p, fdArg(c.a[0]), c.t)
		}
	case "dup":
		if c.success && c.exitNum {
			b.dupFD(p, fdArg(c.a[0]), int32(c.exit), false, c.t)
		}
	case "dup2", "dup3":
		if c.success && c.exitNum && fdArg(c.a[0]) != fdArg(c.a[1]) {
			b.dupFD(p, fdArg(c.a[0]), fdArg(c.a[1]), c.sc == "dup3" && c.a[2]&oCloexec != 0, c.t)
		}
	case "chdir":
		if it := c.target(""); c.success && it != nil {
			dir := b.resolve(p, c, atFDCWD, it)
			p.cwd = dir
			b.addFile(p, File{Path: dir, Op: "chdir", Open: c.t, Close: c.t})
		}
	case "fchdir":
		if c.success {
			if e := b.lookupFD(p, fdArg(c.a[0])); e != nil {
				p.cwd = e.path
				b.addFile(p, File{Path: e.path, Op: "chdir", Open: c.t, Close: c.t})
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
		}
	case "pivot_root":
		if it := c.target(""); c.success && it != nil {
			// Resolved against the cwd the process had before: runc does
			// fchdir(rootfs); pivot_root(".", ".").
			root := b.joinPath(p.cwd, it.name)
			if strings.HasPrefix(root, "/") {
				p.pivot = root
			}
			if p.cwd == root {
				p.cwd = "/"
			}
			b.addFile(p, File{Path: root, Op: "pivot_root", Open: c.t, Close: c.t})
		}
	case "setns":
		if c.success {
			b.auditSetns(p, c)
		}
	case "unshare", "mount", "exit":
	default:
		if c.success {
			b.auditOther(p, c)
		}
	}
}

func fdArg(a uint64) int32 { return int32(uint32(a)) }

// auditProc returns the process an audit event belongs to: the
// incarnation of pid alive at the event's header time, or a new one when
// pid is unknown (its creation was not seen, or audit is the only source).
func (b *builder) auditProc(pid, ppid int32, c *call) *proc {
	p := b.get(b.byPID[pid])
	if p == nil || b.auditEnded(p) {
		p = b.newProc(pid, c.t)
		if pc, ok := b.pending[pid]; ok && absDiff(pc.t, c.t) < pendingWindow {
			delete(b.pending, pid)
			b.auditCreated(p, b.get(pc.creator), pc.t)
		} else {
			b.reportedParent(p, ppid, c.t)
		}
		if !c.success || (c.sc != "execve" && c.sc != "execveat") {
			p.firstComm, p.firstExe = b.intern(c.comm), b.intern(c.exe)
		}
		return p
	}
	if !p.prev.none() && p.forkSeen && c.header != 0 && c.header < p.start-reuseSlack {
		// A late event of the previous process of a reused pid.
		return b.get(p.prev)
	}
	if p.parentSrc < parentReported {
		b.reportedParent(p, ppid, c.t)
	}
	return p
}

// target returns the PATH item a syscall acts on: the first of nametype
// want, else the first that is not a PARENT item (those name a directory
// the kernel looked up, and can print the cwd instead of a dirfd's
// directory).
func (c *call) target(want string) *pathItem {
	if want != "" {
		for i := range c.items {
			if c.items[i].nametype == want && c.items[i].hasName {
				return &c.items[i]
			}
		}
	}
	for i := range c.items {
		if c.items[i].nametype != "PARENT" && c.items[i].hasName {
			return &c.items[i]
		}
	}
	return nil
}

// parentOf returns the PARENT item describing it's directory: for a
// CREATE, the last PARENT item (rename lists the old then the new
// directory); otherwise the first.
func (c *call) parentOf(it *pathItem) *pathItem {
	var found *pathItem
	for i := range c.items {
		if c.items[i].nametype == "PARENT" {
			found = &c.items[i]
			if it.nametype != "CREATE" {
				return found
			}
		}
	}
	return found
}

// resolve makes an item's name absolute: against the directory of dirfd,
// or the event's cwd for AT_FDCWD. A dirfd not in the fd table is found
// by the inode of the PARENT item among directories seen before; failing
// that, the name stays relative rather than be joined to a wrong
// directory.
func (b *builder) resolve(p *proc, c *call, dirfd int32, it *pathItem) string {
	name := it.name
	var dir string
	switch {
	case strings.HasPrefix(name, "/"):
	case dirfd == atFDCWD:
		dir = p.cwd
		if c.hasCwd {
			dir = c.cwd
		}
	default:
		if e := b.lookupFD(p, dirfd); e != nil {
			dir = e.path
		} else if par := c.parentOf(it); par != nil && par.inode != "" {
			dir = b.dirs[dirKey{par.dev, par.inode}]
		}
	}
	out := b.joinPath(dir, name)
	if it.dir && it.inode != "" && strings.HasPrefix(out, "/") {
		if len(b.dirs) >= maxDirs {
			clear(b.dirs)
		}
		b.dirs[dirKey{strings.Clone(it.dev), strings.Clone(it.inode)}] = out
	}
	return out
}

// joinPath joins name to dir and cleans it; with no dir, a relative name
// stays relative.
func (b *builder) joinPath(dir, name string) string {
	if strings.HasPrefix(name, "/") || dir == "" {
		if name == "" {
			return dir
		}
		return b.intern(path.Clean(name))
	}
	return b.intern(path.Join(dir, name))
}

// addFile appends f to p's file accesses and returns its offset in the
// spool.
func (b *builder) addFile(p *proc, f File) int64 {
	off := b.spool.add(p.lastFile, &f)
	if p.files == 0 {
		p.files = off + 1
	}
	p.lastFile = off + 1
	return off
}

// openAccess makes the access at off, just added to p, an open file.
func (b *builder) openAccess(p *proc, off int64) *access {
	// From a slab: there is one an open.
	if len(b.accesses) == 0 {
		b.accesses = make([]access, accessSlab)
	}
	a := &b.accesses[0]
	b.accesses = b.accesses[1:]
	*a = access{off: off, owner: p.seq}
	return a
}

// closeAccess closes a at t.
func (b *builder) closeAccess(a *access, t int64) {
	a.close = t
	b.spool.setClose(a.off, t)
}

const accessSlab = 256

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
	if exe == "" && c.sc == "execveat" && target == "" {
		if e := b.lookupFD(p, dirfd); e != nil {
			exe = e.path
		}
	}
	if exe != "" && key.inode != "" {
		if len(b.exes) >= maxDirs {
			clear(b.exes)
		}
		b.exes[dirKey{strings.Clone(key.dev), strings.Clone(key.inode)}] = b.intern(exe)
	}
	// argv comes from EXECVE records: PROCTITLE is cached at the task's
	// first audited syscall and can still show the previous command.
	var x *execEntry
	for i := lastIndex(p.execs, func(x *execEntry) bool { return x.audit }) + 1; i < len(p.execs); i++ {
		if !p.execs[i].audit {
			x = p.execs[i]
			break
		}
	}
	if x == nil {
		x = &execEntry{t: c.t}
		p.execs = append(p.execs, x)
	}
	x.audit = true
	x.exe, x.cwd, x.comm, x.path = b.intern(exe), b.intern(c.cwd), b.intern(c.comm), target
	if c.argv != nil {
		// Interned: the arguments point into the replay's shared blocks.
		x.argv, x.hasArgv = b.internStrings(c.argv), true
	}
	if x.cwd == "" {
		x.cwd = p.cwd
	}
	if target == "" {
		target = x.exe
	}
	if target != "" {
		b.addFile(p, File{Path: target, Op: "exec", Open: c.t, Close: c.t})
	}
	// close-on-exec
	var closing []int32
	for fd, e := range p.fds.all {
		if e.cloexec {
			closing = append(closing, fd)
		}
	}
	for _, fd := range closing {
		b.closeFD(p, fd, c.t)
	}
	p.auditExeced = true
}

// auditClone refines parentage from the creator's side. The connector's
// fork event names the kernel's parent, which for CLONE_PARENT (runc's
// nsexec uses it) is the creator's own parent; the clone record names the
// creator. Inside a pid namespace clone returns a namespace-local pid that
// does not match the host pid=, so only a child that fits is touched.
func (b *builder) auditClone(p *proc, c *call) {
	if c.sc == "clone" && c.a[0]&cloneThread != 0 {
		return
	}
	// CLONE_PARENT shows in clone's flags; clone3 hides its flags in a
	// struct, so it may have been set.
	parentFlag := c.sc == "clone3" || (c.sc == "clone" && c.a[0]&cloneParent != 0)
	pid := int32(c.exit)
	if _, thread := b.byTID[pid]; thread {
		return
	}
	ch := b.get(b.byPID[pid])
	if ch != nil && b.auditEnded(ch) && c.header > ch.auditExitH {
		// The pid's process exited before this clone began: the clone
		// made another, whose first record is still to come. (A vfork's
		// record comes after its child's exit_group, and began before.)
		ch = nil
	}
	if ch == nil || (ch.forkSeen && ch.start < c.t-pendingWindow) {
		// The child's fork event has not come yet.
		if len(b.pending) >= maxPending {
			for k, v := range b.pending {
				if c.t-v.t > pendingWindow {
					delete(b.pending, k)
				}
			}
		}
		if len(b.pending) < maxPending {
			b.pending[pid] = pendingClone{creator: link(p), t: c.t, parent: parentFlag}
		}
		return
	}
	if ch == p || ch.snapshot || ch.start > c.t+maxCloneWindow || c.t-ch.start > maxCloneWindow {
		return
	}
	if ch.forkSeen {
		if parentFlag {
			b.cloneParent(ch, p)
		}
		return
	}
	if ch.parentSrc < parentClone {
		b.auditCreated(ch, p, c.t)
	}
}

// auditEnded reports whether p, known from audit alone, called
// exit_group: exit_group is a process's last system call, so a later
// event of its pid is another process's (the pid was reused).
func (b *builder) auditEnded(p *proc) bool {
	return b.auditOnly && p.auditExit && p.end != 0 && !p.exited
}

// auditCreated makes creator the parent of ch, a process known only from
// audit.
func (b *builder) auditCreated(ch, creator *proc, t int64) {
	ch.setParent(creator, parentClone)
	ch.auditCreated = true
	ch.forkExecs = len(creator.execs)
	if t < ch.start {
		ch.start, ch.tasks[0].start = t, t
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
		// Denied attempts are evidence; a missing file is mostly the
		// loader and locale probing.
		if c.errno == "EACCES" || c.errno == "EPERM" {
			f.Close, f.Error = c.t, c.errno
			b.addFile(p, f)
		}
		return
	}
	if !c.exitNum || c.exit < 0 {
		return
	}
	a := b.openAccess(p, b.addFile(p, f))
	b.setFD(p, int32(c.exit), &fdEntry{path: f.Path, acc: a, cloexec: known && flags&oCloexec != 0, t: c.t}, c.t)
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
	b.addFile(p, File{Path: b.resolve(p, c, olddir, from), Op: "rename", Open: c.t, Close: c.t, To: b.resolve(p, c, newdir, to)})
}

// auditSetns attributes a process that joins the mount namespace of a
// process in a container (runc exec, docker exec, nsenter) to that
// container. Joining only a network namespace (CNI plugins do) does not.
func (b *builder) auditSetns(p *proc, c *call) {
	e := b.lookupFD(p, fdArg(c.a[0]))
	if e == nil {
		return
	}
	b.addFile(p, File{Path: e.path, Op: "setns", Open: c.t, Close: c.t})
	pid, ns, ok := procNSPath(e.path)
	if !ok || ns != "mnt" {
		return
	}
	target := b.get(b.byPID[pid])
	if target != nil && !target.prev.none() && target.start > e.t {
		target = b.get(target.prev) // the pid was reused after the fd was opened
	}
	if target != nil && target != p {
		p.setnsTarget = link(target)
	}
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

// auditOther records the paths of any other successful syscall (mkdir,
// link, symlink, chmod… when the rules audit them) under the syscall's
// name, that of its plain form for the *at ones.
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
	"mkdirat":    "mkdir",
	"mknodat":    "mknod",
	"fchownat":   "chown",
	"fchmodat":   "chmod",
	"fchmodat2":  "chmod",
	"futimesat":  "utime",
	"utimensat":  "utime",
	"faccessat":  "access",
	"faccessat2": "access",
	"newfstatat": "stat",
	"fstatat64":  "stat",
	"statx":      "stat",
	"readlinkat": "readlink",
}

// fields scans the key=value pairs of an audit record's text (after its
// audit(…): header): after each next that reports true, key and val hold
// a pair, val without its quotes, and quoted says it had them. Words
// without '=' are skipped; an unterminated quote runs to the end.
//
// It runs over every field of every record, the analysis's hottest loop:
// bytes are classified with tables, and when the text holds no tab or
// newline (the kernel's never do: it hex-encodes such strings) unquoted
// values, most of the bytes, are skipped with strings.IndexByte.
type fields struct {
	text, key, val string
	quoted         bool
	plain          bool // text holds no '\t' or '\n': ' ' is the only separator
}

// fieldSkip marks the bytes skipped between pairs; fieldKeyEnd those that
// end a key.
var fieldSkip, fieldKeyEnd = func() (skip, keyEnd [256]bool) {
	for _, c := range []byte{' ', '\t', '\n'} {
		skip[c], keyEnd[c] = true, true
	}
	skip[':'], keyEnd['='] = true, true
	return skip, keyEnd
}()

func newFields(text string) fields {
	if strings.HasPrefix(text, "audit(") {
		if i := strings.IndexByte(text, ')'); i >= 0 {
			text = text[i+1:]
		}
	}
	return fields{text: text, plain: strings.IndexByte(text, '\t') < 0 && strings.IndexByte(text, '\n') < 0}
}

func (f *fields) next() bool {
	var ok bool
	f.key, f.val, f.text, f.quoted, ok = nextField(f.text, f.plain)
	return ok
}

// nextField is fields.next on values, which stay in registers.
func nextField(text string, plain bool) (key, val, rest string, quoted, ok bool) {
	for {
		i := 0
		for i < len(text) && fieldSkip[text[i]] {
			i++
		}
		text = text[i:]
		if plain {
			i = indexKeyEnd(text)
		} else {
			i = 0
			for i < len(text) && !fieldKeyEnd[text[i]] {
				i++
			}
		}
		if i == len(text) {
			return "", "", "", false, false
		}
		if text[i] != '=' || i == 0 {
			text = text[i+1:]
			continue
		}
		key, text = text[:i], text[i+1:]
		if text != "" && (text[0] == '"' || text[0] == '\'') {
			if j := strings.IndexByte(text[1:], text[0]); j >= 0 {
				return key, text[1 : j+1], text[j+2:], true, true
			}
			return key, text[1:], "", true, true
		}
		j := len(text)
		if plain {
			j = indexSpace(text)
		} else {
			for k := 0; k < len(text); k++ {
				if c := text[k]; c == ' ' || c == '\t' || c == '\n' {
					j = k
					break
				}
			}
		}
		return key, text[:j], text[j:], false, true
	}
}

// Eight bytes at a time (SWAR): matchByte(x, c) has the high bit of the
// lowest byte of x equal to c set, and none below it (bytes above a match
// may be marked wrongly, which the callers ignore).
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

func matchByte(x, c uint64) uint64 {
	y := x ^ (swarLo * c)
	return (y - swarLo) &^ y & swarHi
}

// indexSpace is the index of the first ' ' in s, or len(s).
func indexSpace(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if m := matchByte(load64(s[i:]), ' '); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if s[i] == ' ' {
			return i
		}
	}
	return i
}

// indexKeyEnd is the index of the first '=' or ' ' in s, or len(s).
func indexKeyEnd(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load64(s[i:])
		if m := matchByte(x, ' ') | matchByte(x, '='); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '=' {
			return i
		}
	}
	return i
}

// load64 reads the first eight bytes of s, little-endian.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// parseDec is strconv.ParseInt(s, 10, bits), without its generality for
// the short runs of digits audit records hold: the same results.
func parseDec(s string, bits int) (int64, error) {
	if n := len(s); n > 0 && n <= 9 { // 9 digits fit in 32 bits
		var v int64
		for i := range n {
			c := s[i] - '0'
			if c > 9 {
				return strconv.ParseInt(s, 10, bits)
			}
			v = v*10 + int64(c)
		}
		return v, nil
	}
	return strconv.ParseInt(s, 10, bits)
}

func atoi(s string) (int, error) {
	n, err := parseDec(s, 0)
	return int(n), err
}

// parseHex is strconv.ParseUint(s, 16, bits), quicker the same way.
func parseHex(s string, bits int) (uint64, error) {
	if n := len(s); n > 0 && n <= bits/4 {
		var v uint64
		for i := range n {
			c := s[i]
			switch {
			case c >= '0' && c <= '9':
				c -= '0'
			case c|0x20 >= 'a' && c|0x20 <= 'f':
				c = c | 0x20 - 'a' + 10
			default:
				return strconv.ParseUint(s, 16, bits)
			}
			v = v<<4 | uint64(c)
		}
		return v, nil
	}
	return strconv.ParseUint(s, 16, bits)
}

func parseHex64(s string) (uint64, error) { return parseHex(s, 64) }

// untrusted decodes a string the kernel logged with
// audit_log_untrustedstring: quoted as is, else hex; "(null)" and "?" are
// no value.
func untrusted(v string, quoted bool) (string, bool) {
	if quoted {
		return v, true
	}
	if v == "(null)" || v == "?" || v == "" {
		return "", false
	}
	if b, err := hex.DecodeString(v); err == nil {
		return string(b), true
	}
	return v, true
}

// syscallKey is an audit arch (AUDIT_ARCH_*) and syscall number.
type syscallKey struct {
	arch uint32
	num  int
}

// maxSyscallNames bounds the builder's cache of syscall names.
const maxSyscallNames = 1024

// syscallName names a syscall by its arch (AUDIT_ARCH_*, hex) and number,
// with auparse's tables, whose lookup (two maps, a string key) is cached.
func (ps *parser) syscallName(arch, num string) string {
	a, err := parseHex(arch, 32)
	if err != nil {
		return ""
	}
	n, err := atoi(num)
	if err != nil {
		return ""
	}
	k := syscallKey{uint32(a), n}
	name, ok := ps.syscalls[k]
	if !ok {
		name = auparse.AuditSyscalls[auparse.AuditArch(a).String()][n]
		if ps.syscalls == nil || len(ps.syscalls) >= maxSyscallNames {
			ps.syscalls = map[syscallKey]string{}
		}
		ps.syscalls[k] = name
	}
	return name
}

// errnoName names the errnos the analysis keeps; others are numbered.
func errnoName(n int64) string {
	switch n {
	case 1:
		return "EPERM"
	case 2:
		return "ENOENT"
	case 13:
		return "EACCES"
	}
	return "errno " + strconv.FormatInt(n, 10)
}
