package record

import (
	"bytes"
	"hash/maphash"

	"github.com/elastic/go-libaudit/v2/auparse"
	"golang.org/x/sys/unix"

	"proctrail/formats"
)

// Mount tables. The analyzer maps the paths a process in a container saw
// to where they are on the host through the mount table of its mount
// namespace, so the capture carries each namespace's table: in the first
// procfs record that shows the namespace (the snapshot's pid 1 gives the
// host's), and again, as a record of kind mounts, after a call that may
// change it (mount, umount2, move_mount, pivot_root, setns, unshare) when
// the table did change.

// maxMountNS bounds the namespaces whose table the reader remembers;
// beyond it the memory is dropped, and tables are recorded again.
// maxMountBytes bounds the tables kept to be written again at the start
// of each file of a rotated set.
const (
	maxMountNS    = 4096
	maxMountBytes = 8 << 20
)

// mountTables remembers, per mount namespace, a hash of the last table
// recorded, and the table itself, in the order they were first seen (the
// host's first), so that each file of a rotated set can carry them all.
type mountTables struct {
	seed  maphash.Seed
	last  map[uint64]uint64
	order []uint64
	text  map[uint64]mountText
	bytes int
	// pids is the namespace each process was last reported in by a
	// mounts record.
	pids map[int32]uint64
	// version counts the changes of the tables each yields.
	version int
}

// moved notes that pid is in ns, and reports whether that is news.
func (m *mountTables) moved(pid int32, ns uint64) bool {
	if m.pids == nil || len(m.pids) >= maxMountNS {
		m.pids = map[int32]uint64{}
	}
	if m.pids[pid] == ns {
		return false
	}
	m.pids[pid] = ns
	return true
}

// mountText is a namespace's last table, and the process it was read of.
type mountText struct {
	pid   int32
	table string
}

func (m *mountTables) seen(ns uint64) bool {
	_, ok := m.last[ns]
	return ok
}

// note remembers table, read of pid, as ns's last recorded, and reports
// whether it differs from the one before.
func (m *mountTables) note(ns uint64, pid int32, table []byte) bool {
	if m.last == nil || len(m.last) >= maxMountNS {
		m.seed, m.last, m.order, m.text, m.bytes = maphash.MakeSeed(), map[uint64]uint64{}, nil, map[uint64]mountText{}, 0
	}
	h := maphash.Bytes(m.seed, table)
	old, ok := m.last[ns]
	if ok && old == h {
		return false
	}
	m.version++
	m.last[ns] = h
	if !ok {
		m.order = append(m.order, ns)
	}
	m.bytes -= len(m.text[ns].table)
	if m.bytes+len(table) <= maxMountBytes {
		m.text[ns] = mountText{pid, string(table)}
		m.bytes += len(table)
	} else {
		delete(m.text, ns)
	}
	return true
}

// each calls fn with a record of kind mounts for each table remembered,
// in the order their namespaces were first seen.
func (m *mountTables) each(fn func(rec *formats.ProcRecord) error) error {
	for _, ns := range m.order {
		t, ok := m.text[ns]
		if !ok {
			continue
		}
		rec := formats.ProcRecord{Kind: formats.ReasonMounts, PID: t.pid, Mountinfo: t.table,
			Namespaces: []formats.Namespace{{Name: "mnt", Inode: ns}}}
		if err := fn(&rec); err != nil {
			return err
		}
	}
	return nil
}

// maxMountRereads bounds the reads again of a table when the process
// moved to another mount namespace while it was read.
const maxMountRereads = 2

// readMountNS reads the inode of the mount namespace of the process
// whose /proc/PID dir is; ok is false when it cannot, errno then says
// why.
func (p *ProcReader) readMountNS(dir int) (ino uint64, errno unix.Errno, ok bool) {
	var link [64]byte
	n, errno := procReadlinkat(dir, procNameMntNS, link[:], p.raw)
	if errno != 0 {
		return 0, errno, false
	}
	ino, ok = procParseNS(link[:n])
	return ino, 0, ok
}

// readMountTable appends to dst the mount table of the process whose
// /proc/PID dir is, and reports whether it is that of namespace ino, the
// one its ns/mnt named just before. mountinfo shows the namespace the
// process is in when it is opened: runc exec's child joins the
// container's between two setns, so its table was once recorded as the
// host's. The link read again after says whether the process stayed.
func (p *ProcReader) readMountTable(dir int, dst []byte, ino uint64) (_ []byte, same bool, errno unix.Errno) {
	if dst, errno = procReadFile(dir, procNameMounts, dst, procMaxFile, false); errno != 0 {
		return dst, false, errno
	}
	again, _, ok := p.readMountNS(dir)
	return dst, ok && again == ino, 0
}

// ReadMounts fills rec with a record of kind [formats.ReasonMounts] for
// pid, read after its call after: its mnt namespace, and the mount table
// unless it is the one last recorded for that namespace (but after a
// pivot_root, which the analyzer dates tables by). It reports whether rec
// is to be written: not when neither the table nor the namespace the
// process was last reported in changed; and whether the process is gone.
// rec's slices are reused as by Read.
func (p *ProcReader) ReadMounts(pid int32, after string, rec *formats.ProcRecord) (write, gone bool, err error) {
	nss := rec.Namespaces[:0]
	*rec = formats.ProcRecord{Kind: formats.ReasonMounts, PID: pid, After: after, TIDs: rec.TIDs[:0], Cmdline: rec.Cmdline[:0]}
	dir, gone, err := p.openPID(pid)
	if gone || err != nil {
		return false, gone, err
	}
	defer procClose(dir, p.raw)
	var ino uint64
	for try := 0; ; try++ {
		var errno unix.Errno
		var ok, same bool
		if ino, errno, ok = p.readMountNS(dir); !ok {
			return false, procGone(errno), nil
		}
		p.text, same, errno = p.readMountTable(dir, p.text[:0], ino)
		if errno != 0 || len(p.text) == 0 {
			return false, procGone(errno), nil
		}
		if same {
			break
		}
		if try == maxMountRereads {
			// Still moving: its moves (setns, unshare) each bring a
			// read of their own.
			return false, false, nil
		}
	}
	rec.Namespaces = append(nss, formats.Namespace{Name: "mnt", Inode: ino})
	changed := p.mounts.note(ino, pid, p.text)
	moved := p.mounts.moved(pid, ino)
	switch {
	case changed || after == "pivot_root":
		rec.Mountinfo = string(p.text)
	case !moved:
		return false, false, nil
	}
	return true, false, nil
}

// mountCalls recognizes, in a raw audit message, the SYSCALL record of a
// successful call that may change its caller's mount table. It maps the
// record's arch and syscall number, for the ABIs of the machine, to the
// call's name.
type mountCalls map[uint64]string

// mountCallNames are the calls after which a mount table is read again.
var mountCallNames = []string{"mount", "umount2", "umount", "move_mount", "pivot_root", "setns", "unshare"}

func newMountCalls() mountCalls {
	m := mountCalls{}
	abis, err := ruleABIs()
	if err != nil {
		return m
	}
	for _, abi := range abis {
		var arch auparse.AuditArch
		for a := range auparse.AuditArchNames {
			if a.String() == abi.arch {
				arch = a
			}
		}
		if arch == 0 {
			continue
		}
		for nr, name := range auparse.AuditSyscalls[abi.arch] {
			for _, want := range mountCallNames {
				if name == want {
					m[uint64(arch)<<32|uint64(uint32(nr))] = name
				}
			}
		}
	}
	return m
}

// auditSyscallType is AUDIT_SYSCALL.
const auditSyscallType = 1300

// match returns the call, pid and ppid of a SYSCALL record of one of
// the calls, successful. msg is a netlink message as read from audit.
func (m mountCalls) match(msg []byte) (call string, pid, ppid int32, ok bool) {
	if len(msg) < nlmsgHdrLen+16 || int(msg[4])|int(msg[5])<<8 != auditSyscallType {
		return "", 0, 0, false
	}
	text := msg[nlmsgHdrLen:]
	arch, ok1 := fieldUint(text, keyArch, 16)
	nr, ok2 := fieldUint(text, keySyscall, 10)
	if !ok1 || !ok2 {
		return "", 0, 0, false
	}
	call = m[arch<<32|nr&0xffffffff]
	if call == "" || !bytes.Contains(text, keySuccess) {
		return "", 0, 0, false
	}
	p, ok1 := fieldUint(text, keyPID, 10)
	pp, ok2 := fieldUint(text, keyPPID, 10)
	if !ok1 {
		return "", 0, 0, false
	}
	if !ok2 {
		pp = 0
	}
	return call, int32(p), int32(pp), true
}

// The keys match reads, as []byte: converted from strings at each call,
// they went to the heap in the binary built with the profile
// (cmd/proctrail/default.pgo), on the audit receive loop.
var (
	keyArch    = []byte(" arch=")
	keySyscall = []byte(" syscall=")
	keySuccess = []byte(" success=yes ")
	keyPID     = []byte(" pid=")
	keyPPID    = []byte(" ppid=")
)

// fieldUint parses the number, in base 10 or 16, after the first key in
// text. It allocates nothing: it runs on the audit receive loop.
func fieldUint(text, key []byte, base uint64) (uint64, bool) {
	i := bytes.Index(text, key)
	if i < 0 {
		return 0, false
	}
	var n uint64
	digits := 0
	for _, c := range text[i+len(key):] {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return n, digits > 0 && c == ' '
		}
		if digits == 16 {
			return 0, false
		}
		n, digits = n*base+d, digits+1
	}
	return n, digits > 0
}
