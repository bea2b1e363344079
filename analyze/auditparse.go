package analyze

import (
	"cmp"
	"encoding/hex"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"

	"proctrail/replay"
)

// Reading audit events: the records of one syscall become a call, with
// only the fields the filter uses. This runs ahead of the builder, on a
// goroutine of its own (see pipeline.go).

// pathItem is one PATH record of an event.
type pathItem struct {
	item       int
	name       string
	hasName    bool
	nametype   string
	dev, inode string
	dir        bool
	// mode is the inode's mode (type and permission bits, octal), as the
	// record has it; parsed only where needed (newPerm).
	mode string
}

// objPID is an OBJ_PID record: a process a signal or ptrace reached.
type objPID struct {
	pid  int32
	comm string
}

// call is one audited syscall, its records parsed.
type call struct {
	sc    string
	comm  string
	exe   string
	errno string
	cwd   string
	exit  int64
	a     [4]uint64
	items []pathItem
	// header and t are the event's header time and its time (see parse).
	header int64
	t      int64
	uid    int64
	// argv is a successful execve's, from its EXECVE records; nil when
	// they are missing or malformed.
	argv []string
	// objs are its OBJ_PID records (kill, tkill, tgkill, ptrace).
	objs []objPID
	// sock is the address of its SOCKADDR record, if any.
	sock *sockAddr
	pid  int32
	ppid int32
	// fdPair is the FD_PAIR record of a pipe or socketpair, when
	// hasFDPair: the two fds it made.
	fdPair [2]int32
	// The flags are last, together: a call is written for every event and
	// moved through the pipes in batches, so its size counts.
	success bool
	exitNum bool
	hasCwd  bool
	hasUID  bool
	// arch64 says the syscall was of a 64-bit ABI (not i386's or arm's
	// compat one).
	arch64    bool
	hasFDPair bool
}

// parser reads audit events into calls. It holds no state of the
// analysis, only a cache, so that it can run ahead of the builder on a
// goroutine of its own (see readAhead).
//
// Records are read with a small parser of their key=value text rather than
// auparse's, which matches regular expressions and was two thirds of the
// analysis time: only a dozen keys are needed, and the kernel writes each
// either "quoted", as a bare token, or hex-encoded when it holds special
// bytes (audit_log_untrustedstring).
type parser struct {
	syscalls map[syscallKey]string // a cache of syscall names
	// syscallMemo and pathMemo keep SYSCALL and PATH bodies read in the
	// kernel's layout (see parseSyscall and parsePath).
	syscallMemo bodyMemo[syscallOut]
	pathMemo    bodyMemo[pathItem]
}

// bodyMemos is the number of SYSCALL bodies, and of PATH bodies, the
// parser keeps. Each holds the text it came from, and so up to one block
// of the texts' arena, alive.
const bodyMemos = 16

// bodyMemo keeps, for each body length modulo bodyMemos, the last record
// body of that length read in the kernel's layout, and what was read
// from it. Such a record is read from its body alone (what follows the
// header, whose time and serial differ in every record), so a body kept
// is not read again: a flood repeats the same call, arguments, result
// and process thousands of times (the open/close loop of the bench, a
// process polling a descriptor), and comparing a few hundred bytes costs
// far less than reading them pair by pair. Only the kernel-layout
// readers' results are kept: the pair-by-pair readers read the header
// too.
type bodyMemo[T any] [bodyMemos]struct {
	body string // "" when empty
	v    T
}

// get returns what was read from body, if it is kept.
func (m *bodyMemo[T]) get(body string) (*T, bool) {
	if e := &m[len(body)%bodyMemos]; e.body == body && body != "" {
		return &e.v, true
	}
	return nil, false
}

// put keeps what was read from body.
func (m *bodyMemo[T]) put(body string, v *T) {
	e := &m[len(body)%bodyMemos]
	e.body, e.v = body, *v
}

// syscallOut is what parseSyscall reads from a SYSCALL record: every
// field of a call it sets, and the ids.
type syscallOut struct {
	sc, comm, exe, errno     string
	a                        [4]uint64
	exit                     int64
	exitNum, success, arch64 bool
	ids                      syscallIDs
}

// ReadsAuditText reports whether the analysis reads audit records of
// type t: those parse reads (and Argv, EXECVE). Pass it as
// replay.Options.AuditTexts to a Stream that is only analyzed: the other
// records, PROCTITLE the largest of them, then group and end events
// without being copied into them, text and all, and the outputs are the
// same.
func ReadsAuditText(t auparse.AuditMessageType) bool {
	switch t {
	case auparse.AUDIT_SYSCALL, auparse.AUDIT_CWD, auparse.AUDIT_PATH, auparse.AUDIT_EXECVE,
		auparse.AUDIT_SOCKADDR, auparse.AUDIT_OBJ_PID, auparse.AUDIT_FD_PAIR:
		return true
	}
	return false
}

// parse reads ev, received at capture time capT, into c, its PATH items
// appended to items, which it returns. It reads the records of the types
// ReadsAuditText names, no other. ok is false for an event the
// builder skips: one without a SYSCALL record (CONFIG_CHANGE, USER_*, …),
// of an unknown syscall, or without a pid. The strings of c point into
// ev's records.
func (ps *parser) parse(c *call, ev *replay.AuditEvent, capT int64, items []pathItem) (ok bool, _ []pathItem) {
	*c = call{header: ev.Time.UnixNano()}
	first := len(items)
	var sys, saddr *replay.AuditRecord
	for i := range ev.Records {
		r := &ev.Records[i]
		switch r.Type { // a type read here is one ReadsAuditText names
		case auparse.AUDIT_SOCKADDR:
			saddr = r
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
			items = append(items, pathItem{})
			ps.parsePath(&items[len(items)-1], r.Text)
		case auparse.AUDIT_OBJ_PID:
			if o, ok := parseObjPID(r.Text); ok {
				c.objs = append(c.objs, o)
			}
		case auparse.AUDIT_FD_PAIR:
			c.fdPair, c.hasFDPair = parseFDPair(r.Text)
		}
	}
	c.items = items[first:len(items):len(items)]
	if sys == nil {
		return false, items
	}
	var ids syscallIDs
	ps.parseSyscall(c, &ids, sys.Text)
	slices.SortStableFunc(c.items, func(x, y pathItem) int { return cmp.Compare(x.item, y.item) })
	// The header time is the kernel's coarse clock at the syscall,
	// printed in milliseconds: the truth lies within auditClockSlack
	// after it, and before the capture time, which lags by kauditd's
	// queue (milliseconds, or seconds in a backlog).
	c.t = capT
	if c.header != 0 && capT-c.header > auditClockSlack {
		c.t = c.header + auditClockSlack
	}
	pid, err := parseDec(ids.pid, 32)
	if err != nil || pid <= 0 || c.sc == "" {
		return false, items
	}
	ppid, _ := parseDec(ids.ppid, 32)
	c.pid, c.ppid = int32(pid), int32(ppid)
	c.uid, err = parseDec(ids.uid, 64)
	c.hasUID = err == nil
	if (c.sc == "execve" || c.sc == "execveat") && c.success {
		if argv, err := ev.Argv(); err == nil {
			c.argv = argv
		}
	}
	if saddr != nil {
		if sa, ok := parseSockaddr(saddr.Text, ids.arch); ok {
			c.sock = &sa
		}
	}
	return true, items
}

// parsePath reads a PATH record into *it, which is zero. The item is
// written in place, as the ids of parseSyscall are. A body read before
// may come from the parser's memo (bodyMemo).
func (ps *parser) parsePath(it *pathItem, text string) {
	body := skipHeader(text)
	if kept, ok := ps.pathMemo.get(body); ok {
		*it = *kept
		return
	}
	if !parsePathKernel(it, text) {
		*it = pathItem{}
		parsePathFields(it, text)
		return
	}
	ps.pathMemo.put(body, it)
}

// parsePathKernel reads a PATH record laid out as the kernel writes it
// (audit_log_name): "item= name=[ inode= dev= mode= ouid= ogid= rdev=][
// obj=] nametype=", then the file capabilities, which are not read. As
// with parseSyscallKernel, any other layout or value returns false (so
// does a record without inode= that has inode=, dev= or mode= after
// nametype=), having written part of *it, which the caller empties; and
// the two readers agree but on a record that repeats a wanted key after
// nametype=, which the kernel never writes.
func parsePathKernel(it *pathItem, text string) bool {
	k := kernelFields{rest: skipHeader(text)}
	item, ok := k.dec("item=")
	if !ok {
		return false
	}
	n, err := atoi(item)
	if err != nil {
		return false
	}
	it.item = n
	if it.name, it.hasName, ok = k.untrusted(" name="); !ok {
		return false
	}
	if strings.HasPrefix(k.rest, " inode=") {
		var ok [6]bool
		it.inode, ok[0] = k.dec(" inode=")
		it.dev, ok[1] = k.token(" dev=")
		it.mode, ok[2] = k.dec(" mode=")
		_, ok[3] = k.dec(" ouid=")
		_, ok[4] = k.dec(" ogid=")
		_, ok[5] = k.token(" rdev=")
		if ok != [6]bool{true, true, true, true, true, true} {
			return false
		}
		it.dir = strings.HasPrefix(it.mode, "04")
	}
	if strings.HasPrefix(k.rest, " obj=") {
		if _, ok := k.token(" obj="); !ok {
			return false
		}
	}
	if it.nametype, ok = k.token(" nametype="); !ok {
		return false
	}
	// The kernel leaves inode= to rdev= out when it has no inode; the
	// pair-by-pair reader would read them after nametype= too.
	if it.inode == "" && (strings.Contains(k.rest, "inode=") || strings.Contains(k.rest, "dev=") ||
		strings.Contains(k.rest, "mode=")) {
		return false
	}
	return true
}

// parsePathFields reads a PATH record pair by pair into *it, which is
// zero.
func parsePathFields(it *pathItem, text string) {
	// Not in the for statement: Go would copy f at each iteration.
	f := newFields(text)
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
			it.mode = v
		}
	}
}

// parseObjPID reads an OBJ_PID record.
func parseObjPID(text string) (objPID, bool) {
	var o objPID
	ok := false
	// Not in the for statement: Go would copy f at each iteration.
	f := newFields(text)
	for f.next() {
		switch f.key {
		case "opid":
			if n, err := parseDec(f.val, 32); err == nil && n > 0 {
				o.pid, ok = int32(n), true
			}
		case "ocomm":
			o.comm, _ = untrusted(f.val, f.quoted)
		}
	}
	return o, ok
}

// syscallIDs are the ids of a SYSCALL record, and its arch, as written.
type syscallIDs struct{ pid, ppid, uid, arch string }

// parseSyscall reads a SYSCALL record into c: the syscall, its arguments,
// result, comm and exe; and its ids into *ids (zero), for the caller to
// parse. The ids are written in place, not returned: a struct returned by
// value is stored field by field and copied whole, which stalls. A body
// read before may come from the parser's memo (bodyMemo).
func (ps *parser) parseSyscall(c *call, ids *syscallIDs, text string) {
	body := skipHeader(text)
	if m, ok := ps.syscallMemo.get(body); ok {
		c.sc, c.comm, c.exe, c.errno = m.sc, m.comm, m.exe, m.errno
		c.a, c.exit = m.a, m.exit
		c.exitNum, c.success, c.arch64 = m.exitNum, m.success, m.arch64
		*ids = m.ids
		return
	}
	arch, num, kernel := parseSyscallKernel(c, ids, text)
	if !kernel {
		arch, num = parseSyscallFields(c, ids, text)
	}
	c.sc = ps.syscallName(arch, num)
	if a, err := parseHex(arch, 32); err == nil {
		c.arch64 = a&0x80000000 != 0 // __AUDIT_ARCH_64BIT
	}
	ids.arch = arch
	if c.exitNum && c.exit < 0 {
		c.errno = errnoName(-c.exit)
	}
	if kernel {
		ps.syscallMemo.put(body, &syscallOut{
			sc: c.sc, comm: c.comm, exe: c.exe, errno: c.errno,
			a: c.a, exit: c.exit,
			exitNum: c.exitNum, success: c.success, arch64: c.arch64,
			ids: *ids,
		})
	}
}

// parseSyscallKernel reads a SYSCALL record laid out as the kernel writes
// it (audit_log_exit, audit_log_task_info): "arch= syscall=[ success=
// exit=] a0= a1= a2= a3= items= ppid= pid= auid= uid=", the ids up to
// "ses=", then "comm= exe=". It reads the wanted keys in that order and
// skips from uid to comm, and what follows exe, instead of scanning some
// thirty pairs: a third of the parse of an event. Each value must be what
// the kernel writes there (digits, hex, yes or no, a quoted string or hex
// for comm and exe), the skipped pairs must hold no quote, tab or
// newline, and a record without success= must have none elsewhere;
// otherwise ok is false and nothing was set, and the record is read pair
// by pair (parseSyscallFields). The two agree but on a record that
// repeats a wanted key after uid=, which the kernel never writes: this
// one reads the first, the other the last.
func parseSyscallKernel(c *call, ids *syscallIDs, text string) (arch, num string, ok bool) {
	k := kernelFields{rest: skipHeader(text)}
	var (
		a                [4]uint64
		exit             int64
		exitNum, success bool
		comm, exe        string
	)
	arch, ok1 := k.hex("arch=")
	num, ok2 := k.dec(" syscall=")
	if !ok1 || !ok2 {
		return "", "", false
	}
	if v, ok := k.value(" success="); ok {
		if v != "yes" && v != "no" {
			return "", "", false
		}
		success = v == "yes"
		v, ok := k.value(" exit=")
		if !ok {
			return "", "", false
		}
		n, err := parseDec(v, 64)
		if err != nil {
			return "", "", false
		}
		exit, exitNum = n, true
	}
	for i, key := range [...]string{" a0=", " a1=", " a2=", " a3="} {
		v, _ := k.value(key)
		n, err := parseHex64(v) // an empty or odd value is an error too
		if err != nil {
			return "", "", false
		}
		a[i] = n
	}
	_, ok1 = k.dec(" items=")
	ppid, ok2 := k.dec(" ppid=")
	pid, ok3 := k.dec(" pid=")
	_, ok4 := k.dec(" auid=")
	uid, ok5 := k.dec(" uid=")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return "", "", false
	}
	// gid= to ses=: numbers and a tty name, none wanted. No key there
	// has a 'c', which strings.IndexByte finds quicker than
	// strings.Index finds " comm=" among so many spaces.
	skipped := k.rest
	for {
		i := strings.IndexByte(k.rest, 'c')
		if i < 0 {
			return "", "", false
		}
		if i > 0 && k.rest[i-1] == ' ' && strings.HasPrefix(k.rest[i:], "comm=") {
			k.rest = k.rest[i-1:]
			break
		}
		k.rest = k.rest[i+1:]
	}
	// The kernel writes no quote, tab or newline there; the pair-by-pair
	// reader would read the pairs after one otherwise.
	skipped = skipped[:len(skipped)-len(k.rest)]
	if !plainTokens(skipped) {
		return "", "", false
	}
	if comm, _, ok = k.untrusted(" comm="); !ok {
		return "", "", false
	}
	if exe, _, ok = k.untrusted(" exe="); !ok {
		return "", "", false
	}
	// The kernel leaves success= and exit= out when the call did not
	// return; the pair-by-pair reader would read them anywhere else.
	if !exitNum && (hasResult(skipped) || hasResult(k.rest)) {
		return "", "", false
	}
	c.a, c.exit, c.exitNum, c.success = a, exit, exitNum, success
	c.comm, c.exe = comm, exe
	ids.pid, ids.ppid, ids.uid = pid, ppid, uid
	return arch, num, true
}

// hasResult reports whether s may hold a success= or exit= pair.
func hasResult(s string) bool {
	return strings.Contains(s, "success=") || strings.Contains(s, "exit=")
}

// plainTokens reports whether s holds no quote, tab or newline: bytes
// the pair-by-pair reader reads as anything but part of a key or a bare
// value, or a space between them.
func plainTokens(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load64(s[i:])
		if matchByte(x, '"')|matchByte(x, '\'')|matchByte(x, '\t')|matchByte(x, '\n') != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\'' || c == '\t' || c == '\n' {
			return false
		}
	}
	return true
}

// skipHeader returns text after its "audit(…)" header and the separators
// after it, as the pair-by-pair reader skips them.
func skipHeader(text string) string {
	if strings.HasPrefix(text, "audit(") {
		if i := strings.IndexByte(text, ')'); i >= 0 {
			text = text[i+1:]
		}
	}
	for len(text) > 0 && fieldSkip[text[0]] {
		text = text[1:]
	}
	return text
}

// kernelFields reads the " key=value" pairs of a record in the order the
// kernel writes them. Each method takes one pair whose key, with its
// leading space, is given; ok is false when the text goes on otherwise or
// the value is not of the kind the kernel writes there.
type kernelFields struct{ rest string }

// value takes a bare value, up to the next space.
func (k *kernelFields) value(key string) (string, bool) {
	if !strings.HasPrefix(k.rest, key) {
		return "", false
	}
	v := k.rest[len(key):]
	i := indexSpace(v)
	k.rest = v[i:]
	return v[:i], i > 0
}

// dec takes a value of decimal digits.
func (k *kernelFields) dec(key string) (string, bool) {
	v, ok := k.value(key)
	for i := 0; ok && i < len(v); i++ {
		ok = v[i]-'0' <= 9
	}
	return v, ok
}

// hex takes a value of hex digits.
func (k *kernelFields) hex(key string) (string, bool) {
	v, ok := k.value(key)
	for i := 0; ok && i < len(v); i++ {
		c := v[i]
		ok = c-'0' <= 9 || c|0x20-'a' <= 'f'-'a'
	}
	return v, ok
}

// untrusted takes a string written by audit_log_untrustedstring, decoded
// by untrusted (have is false for "(null)"): quoted, or a bare token
// (hex, "(null)").
func (k *kernelFields) untrusted(key string) (s string, have, ok bool) {
	if !strings.HasPrefix(k.rest, key) {
		return "", false, false
	}
	v := k.rest[len(key):]
	if v != "" && v[0] == '"' {
		j := strings.IndexByte(v[1:], '"')
		if j < 0 {
			return "", false, false
		}
		k.rest = v[j+2:]
		return v[1 : j+1], true, true
	}
	v, ok = k.token(key)
	if !ok {
		return "", false, false
	}
	s, have = untrusted(v, false)
	return s, have, true
}

// token takes a bare value: not quoted, with no tab or newline (which the
// pair-by-pair reader would take for separators).
func (k *kernelFields) token(key string) (string, bool) {
	rest := k.rest
	v, ok := k.value(key)
	if !ok || v[0] == '\'' || v[0] == '"' {
		k.rest = rest
		return "", false
	}
	for _, c := range []byte(v) {
		if c == '\t' || c == '\n' {
			k.rest = rest
			return "", false
		}
	}
	return v, true
}

// parseSyscallFields reads a SYSCALL record pair by pair.
func parseSyscallFields(c *call, ids *syscallIDs, text string) (arch, num string) {
	// Not in the for statement: Go would copy f at each iteration.
	f := newFields(text)
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
				ids.pid = v
			case "uid":
				ids.uid = v
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
				ids.ppid = v
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
	return arch, num
}

// parseFDPair reads an FD_PAIR record ("fd0=3 fd1=4").
func parseFDPair(text string) (pair [2]int32, ok bool) {
	var have [2]bool
	f := newFields(text)
	for f.next() {
		i := 0
		switch f.key {
		case "fd0":
		case "fd1":
			i = 1
		default:
			continue
		}
		if n, err := parseDec(f.val, 32); err == nil && n >= 0 {
			pair[i], have[i] = int32(n), true
		}
	}
	return pair, have[0] && have[1]
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
			d := hexDigit[s[i]]
			if d > 0xf {
				return strconv.ParseUint(s, 16, bits)
			}
			v = v<<4 | uint64(d)
		}
		return v, nil
	}
	return strconv.ParseUint(s, 16, bits)
}

// hexDigit is the value of each hex digit, 0xff for other bytes.
var hexDigit = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range byte(10) {
		t['0'+i] = i
	}
	for i := range byte(6) {
		t['a'+i], t['A'+i] = 10+i, 10+i
	}
	return t
}()

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

// syscallKey is an audit arch (AUDIT_ARCH_*) in its high 32 bits and a
// syscall number in its low ones: one word, which a map looks up on its
// fast path, where a struct's bytes were hashed (4% of the parser's
// profile).
type syscallKey uint64

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
	if n < 0 || n > math.MaxUint32 {
		return auparse.AuditSyscalls[auparse.AuditArch(a).String()][n]
	}
	k := syscallKey(a<<32 | uint64(n))
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
