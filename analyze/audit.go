package analyze

import (
	"cmp"
	"encoding/hex"
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
	ev      *replay.AuditEvent
}

// audit applies one audit event. Only syscall events matter; others
// (CONFIG_CHANGE, USER_*, …) are skipped.
//
// Records are read with a small parser of their key=value text rather than
// auparse's, which matches regular expressions and was two thirds of the
// analysis time: only a dozen keys are needed, and the kernel writes each
// either "quoted", as a bare token, or hex-encoded when it holds special
// bytes (audit_log_untrustedstring).
func (b *builder) audit(ev *replay.AuditEvent, capT int64) {
	c := call{ev: ev, header: ev.Time.UnixNano()}
	var sys *replay.AuditRecord
	for i := range ev.Records {
		r := &ev.Records[i]
		switch r.Type {
		case auparse.AUDIT_SYSCALL:
			if sys == nil {
				sys = r
			}
		case auparse.AUDIT_CWD:
			eachField(r.Text, func(k, v string, quoted bool) {
				if k == "cwd" {
					c.cwd, c.hasCwd = untrusted(v, quoted)
				}
			})
		case auparse.AUDIT_PATH:
			var it pathItem
			eachField(r.Text, func(k, v string, quoted bool) {
				switch k {
				case "item":
					it.item, _ = strconv.Atoi(v)
				case "name":
					it.name, it.hasName = untrusted(v, quoted)
				case "nametype":
					it.nametype = v
				case "dev":
					it.dev = v
				case "inode":
					it.inode = v
				case "mode":
					it.dir = strings.HasPrefix(v, "04")
				}
			})
			c.items = append(c.items, it)
		}
	}
	if sys == nil {
		return
	}
	var arch, num, pidS, ppidS, uidS string
	eachField(sys.Text, func(k, v string, quoted bool) {
		switch k {
		case "arch":
			arch = v
		case "syscall":
			num = v
		case "success":
			c.success = v == "yes"
		case "exit":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				c.exit, c.exitNum = n, true
			}
		case "a0", "a1", "a2", "a3":
			c.a[k[1]-'0'], _ = strconv.ParseUint(v, 16, 64)
		case "pid":
			pidS = v
		case "ppid":
			ppidS = v
		case "uid":
			uidS = v
		case "comm":
			c.comm, _ = untrusted(v, quoted)
		case "exe":
			c.exe, _ = untrusted(v, quoted)
		}
	})
	c.sc = syscallName(arch, num)
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
	pid, err := strconv.ParseInt(pidS, 10, 32)
	if err != nil || pid <= 0 || c.sc == "" {
		return
	}
	ppid, _ := strconv.ParseInt(ppidS, 10, 32)
	p := b.auditProc(int32(pid), int32(ppid), &c)
	if uid, err := strconv.ParseInt(uidS, 10, 64); err == nil {
		p.setUID(uid, c.t)
	}
	// pivot_root's CWD record is already relative to the new root: the
	// tracked cwd, from the process's earlier events, is the one to use.
	if c.hasCwd && c.sc != "pivot_root" {
		p.cwd = strings.Clone(c.cwd)
		if p.firstCwd == "" {
			p.firstCwd = p.cwd
		}
	}

	switch c.sc {
	case "execve", "execveat":
		if c.success {
			b.auditExec(p, &c)
		}
	case "clone", "clone3", "fork", "vfork":
		if c.success && c.exitNum && c.exit > 0 {
			b.auditClone(p, &c)
		}
	case "exit_group":
		// exit_group never returns: no success or exit field; the status
		// is its argument.
		p.auditExit, p.auditExitCode, p.auditExitT = true, int(c.a[0]&0xff), c.t
	case "open", "openat", "openat2", "creat":
		b.auditOpen(p, &c)
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
			dir := b.resolve(p, &c, atFDCWD, it)
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
			b.auditRename(p, &c)
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
			b.addFile(p, File{Path: b.resolve(p, &c, dirfd, it), Op: op, Open: c.t, Close: c.t})
		}
	case "pivot_root":
		if it := c.target(""); c.success && it != nil {
			// Resolved against the cwd the process had before: runc does
			// fchdir(rootfs); pivot_root(".", ".").
			root := joinPath(p.cwd, it.name)
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
			b.auditSetns(p, &c)
		}
	case "unshare", "mount", "exit":
	default:
		if c.success {
			b.auditOther(p, &c)
		}
	}
}

func fdArg(a uint64) int32 { return int32(uint32(a)) }

// auditProc returns the process an audit event belongs to: the
// incarnation of pid alive at the event's header time, or a new one when
// pid is unknown (its creation was not seen, or audit is the only source).
func (b *builder) auditProc(pid, ppid int32, c *call) *proc {
	p := b.byPID[pid]
	if p == nil {
		p = b.newProc(pid, c.t)
		if pc, ok := b.pending[pid]; ok && absDiff(pc.t, c.t) < pendingWindow {
			delete(b.pending, pid)
			b.auditCreated(p, pc.creator, pc.t)
		} else {
			b.reportedParent(p, ppid, c.t)
		}
		return p
	}
	if p.prev != nil && p.forkSeen && c.header != 0 && c.header < p.start-reuseSlack {
		// A late event of the previous process of a reused pid.
		return p.prev
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
	out := joinPath(dir, name)
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
func joinPath(dir, name string) string {
	if strings.HasPrefix(name, "/") || dir == "" {
		if name == "" {
			return dir
		}
		return strings.Clone(path.Clean(name))
	}
	return strings.Clone(path.Join(dir, name))
}

func (b *builder) addFile(p *proc, f File) *access {
	a := &access{f: f, owner: p}
	p.files = append(p.files, a)
	return a
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
	if exe == "" && c.sc == "execveat" && target == "" {
		if e := b.lookupFD(p, dirfd); e != nil {
			exe = e.path
		}
	}
	if exe != "" && key.inode != "" {
		if len(b.exes) >= maxDirs {
			clear(b.exes)
		}
		b.exes[dirKey{strings.Clone(key.dev), strings.Clone(key.inode)}] = strings.Clone(exe)
	}
	// argv comes from EXECVE records: PROCTITLE is cached at the task's
	// first audited syscall and can still show the previous command.
	argv, err := c.ev.Argv()
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
	x.exe, x.cwd, x.comm, x.path = strings.Clone(exe), strings.Clone(c.cwd), strings.Clone(c.comm), target
	if err == nil && argv != nil {
		x.argv, x.hasArgv = argv, true
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
	for fd, e := range p.fds {
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
	ch := b.byPID[pid]
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
			b.pending[pid] = pendingClone{creator: p, t: c.t, parent: parentFlag}
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
	a := b.addFile(p, f)
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
	target := b.byPID[pid]
	if target != nil && target.prev != nil && target.start > e.t {
		target = target.prev // the pid was reused after the fd was opened
	}
	if target != nil && target != p {
		p.setnsTarget = target
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

// eachField calls f for each key=value pair of an audit record's text
// (after its audit(…): header), with the value's quotes removed; quoted
// says it had them. Words without '=' are skipped; an unterminated quote
// runs to the end.
func eachField(text string, f func(key, val string, quoted bool)) {
	if strings.HasPrefix(text, "audit(") {
		if i := strings.IndexByte(text, ')'); i >= 0 {
			text = text[i+1:]
		}
	}
	for {
		text = strings.TrimLeft(text, ": \t\n")
		if text == "" {
			return
		}
		i := strings.IndexAny(text, "= \t\n")
		if i < 0 {
			return
		}
		if text[i] != '=' || i == 0 {
			text = text[i+1:]
			continue
		}
		key := text[:i]
		text = text[i+1:]
		var val string
		quoted := false
		if text != "" && (text[0] == '"' || text[0] == '\'') {
			q := text[0]
			quoted = true
			if j := strings.IndexByte(text[1:], q); j >= 0 {
				val, text = text[1:j+1], text[j+2:]
			} else {
				val, text = text[1:], ""
			}
		} else if j := strings.IndexAny(text, " \t\n"); j >= 0 {
			val, text = text[:j], text[j:]
		} else {
			val, text = text, ""
		}
		f(key, val, quoted)
	}
}

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

// syscallName names a syscall by its arch (AUDIT_ARCH_*, hex) and number,
// with auparse's tables.
func syscallName(arch, num string) string {
	a, err := strconv.ParseUint(arch, 16, 32)
	if err != nil {
		return ""
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return ""
	}
	return auparse.AuditSyscalls[auparse.AuditArch(a).String()][n]
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
