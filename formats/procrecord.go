package formats

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// ProcReason says why the recorder wrote a ProcRecord: at the snapshot,
// or after which connector event. (replay.ProcKind names the kinds of
// connector events.)
type ProcReason uint8

// The reasons for procfs records; a ProcRecord's Kind holds one.
const (
	ReasonSnapshot ProcReason = 1 // a process alive when recording started
	ReasonFork     ProcReason = 2 // read right after a connector fork event
	ReasonExec     ProcReason = 3 // read right after a connector exec event
	ReasonCommand  ProcReason = 4 // the command given to `record --`, as started
	// ReasonSelected is no read of /proc: a capture made by `proctrail
	// cut` marks with it, by pid alone, each process of its selection,
	// right after the first message that concerns it.
	ReasonSelected ProcReason = 5
	// ReasonMounts is a re-read of the process's mnt namespace and
	// mount table after it called mount, umount2, move_mount,
	// pivot_root, setns or unshare: only PID, Namespaces and, when the
	// table is not the one last recorded for the namespace, Mountinfo
	// are set.
	ReasonMounts ProcReason = 6
)

func (k ProcReason) String() string {
	switch k {
	case ReasonSnapshot:
		return "snapshot"
	case ReasonFork:
		return "fork"
	case ReasonExec:
		return "exec"
	case ReasonCommand:
		return "command"
	case ReasonSelected:
		return "selected"
	case ReasonMounts:
		return "mounts"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Namespace is one entry of /proc/PID/ns.
type Namespace struct {
	Name  string // "mnt", "pid", "net", …
	Inode uint64 // from the link text "mnt:[4026531841]"
}

// ProcRecord is what the recorder read from /proc/PID for one process.
// Every field is best effort: a file that could not be read leaves its
// field zero. The zero value is an empty record of no kind.
type ProcRecord struct {
	Kind ProcReason
	PID  int32 // the thread group id
	// Gone is set when the process had exited before it could be read; only
	// Kind and PID are meaningful then.
	Gone       bool
	PPID       int32
	TIDs       []int32   // the tasks of /proc/PID/task, ascending
	StartTicks uint64    // /proc/PID/stat field 22: start time in clock ticks since boot
	UIDs       [4]uint32 // real, effective, saved, filesystem (/proc/PID/status Uid:)
	GIDs       [4]uint32 // real, effective, saved, filesystem (/proc/PID/status Gid:)
	Comm       string
	Exe        string   // readlink /proc/PID/exe
	Cmdline    []string // /proc/PID/cmdline split at NULs
	Cwd        string   // readlink /proc/PID/cwd
	Root       string   // readlink /proc/PID/root
	Cgroup     string   // /proc/PID/cgroup as read
	Namespaces []Namespace
	// Mountinfo is /proc/PID/mountinfo as read, when this record is the
	// first to show its mount namespace, or a ReasonMounts record.
	Mountinfo string `json:",omitempty"`
	// After is, in a ReasonMounts record, the call after which it was
	// read ("mount", "pivot_root", …). After a pivot_root the table is
	// always there.
	After string `json:",omitempty"`
}

// MountNS is the inode of the record's mnt namespace, or 0.
func (p *ProcRecord) MountNS() uint64 {
	for _, ns := range p.Namespaces {
		if ns.Name == "mnt" {
			return ns.Inode
		}
	}
	return 0
}

// Tags of the procfs record's fields. See the package documentation.
const (
	tagPPID    = 1
	tagTIDs    = 2
	tagStart   = 3
	tagUIDs    = 4
	tagGIDs    = 5
	tagComm    = 6
	tagExe     = 7
	tagCmdline = 8
	tagCwd     = 9
	tagRoot    = 10
	tagCgroup  = 11
	tagNS      = 12
	tagMounts  = 13
	tagAfter   = 14
)

const (
	procVersion   = 1
	procHeaderLen = 8
	procFlagGone  = 1
	// MaxProcRecord bounds a procfs record's encoding; longer fields are
	// cut by the writer so a record always fits.
	MaxProcRecord = 1 << 20
	maxProcField  = 256 << 10
)

// AppendBinary appends the record's encoding to b and returns the extended
// buffer. Fields longer than 256 KiB are cut. It allocates only when b is
// too small.
func (p *ProcRecord) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if p.Gone {
		flags |= procFlagGone
	}
	b = append(b, procVersion, byte(p.Kind), flags, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(p.PID))
	if p.Gone {
		return b, nil
	}
	b = appendU32Field(b, tagPPID, uint32(p.PPID))
	if len(p.TIDs) > 0 {
		n := min(len(p.TIDs), maxProcField/4)
		b = appendTag(b, tagTIDs, 4*n)
		for _, t := range p.TIDs[:n] {
			b = binary.LittleEndian.AppendUint32(b, uint32(t))
		}
	}
	b = appendTag(b, tagStart, 8)
	b = binary.LittleEndian.AppendUint64(b, p.StartTicks)
	b = appendTag(b, tagUIDs, 16)
	for _, v := range p.UIDs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = appendTag(b, tagGIDs, 16)
	for _, v := range p.GIDs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = appendString(b, tagComm, p.Comm)
	b = appendString(b, tagExe, p.Exe)
	if len(p.Cmdline) > 0 {
		n := 0
		for _, a := range p.Cmdline {
			n += len(a) + 1
		}
		n = min(n, maxProcField)
		b = appendTag(b, tagCmdline, n)
		start := len(b)
		for _, a := range p.Cmdline {
			b = append(b, a...)
			b = append(b, 0)
		}
		b = b[:start+n]
	}
	b = appendString(b, tagCwd, p.Cwd)
	b = appendString(b, tagRoot, p.Root)
	b = appendString(b, tagCgroup, p.Cgroup)
	for _, ns := range p.Namespaces {
		name := ns.Name[:min(len(ns.Name), 64)]
		b = appendTag(b, tagNS, 8+len(name))
		b = binary.LittleEndian.AppendUint64(b, ns.Inode)
		b = append(b, name...)
	}
	b = appendString(b, tagMounts, p.Mountinfo)
	b = appendString(b, tagAfter, p.After)
	return b, nil
}

func appendTag(b []byte, tag uint16, n int) []byte {
	b = binary.LittleEndian.AppendUint16(b, tag)
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

func appendU32Field(b []byte, tag uint16, v uint32) []byte {
	b = appendTag(b, tag, 4)
	return binary.LittleEndian.AppendUint32(b, v)
}

func appendString(b []byte, tag uint16, s string) []byte {
	if s == "" {
		return b
	}
	s = s[:min(len(s), maxProcField)]
	b = appendTag(b, tag, len(s))
	return append(b, s...)
}

// UnmarshalBinary decodes a procfs record. Unknown tags are skipped, so
// later versions may add fields. The record shares no memory with b.
func (p *ProcRecord) UnmarshalBinary(b []byte) error {
	*p = ProcRecord{}
	if len(b) < procHeaderLen {
		return fmt.Errorf("formats: procfs record of %d bytes: %w", len(b), ErrCorrupt)
	}
	if b[0] != procVersion {
		return fmt.Errorf("formats: procfs record version %d: %w", b[0], ErrCorrupt)
	}
	p.Kind = ProcReason(b[1])
	p.Gone = b[2]&procFlagGone != 0
	p.PID = int32(binary.LittleEndian.Uint32(b[4:8]))
	b = b[procHeaderLen:]
	// The string fields are cut from one copy of the body: one allocation
	// instead of one per field.
	all, total := string(b), len(b)
	str := func(v []byte) string {
		off := total - len(b) - len(v) // v ends where b now starts
		return all[off : off+len(v)]
	}
	for len(b) > 0 {
		if len(b) < 6 {
			return fmt.Errorf("formats: procfs record field header of %d bytes: %w", len(b), ErrCorrupt)
		}
		tag := binary.LittleEndian.Uint16(b)
		n := binary.LittleEndian.Uint32(b[2:])
		b = b[6:]
		if uint64(n) > uint64(len(b)) {
			return fmt.Errorf("formats: procfs field %d of %d bytes exceeds record: %w", tag, n, ErrCorrupt)
		}
		v := b[:n]
		b = b[n:]
		switch tag {
		case tagPPID:
			if len(v) >= 4 {
				p.PPID = int32(binary.LittleEndian.Uint32(v))
			}
		case tagTIDs:
			p.TIDs = make([]int32, len(v)/4)
			for i := range p.TIDs {
				p.TIDs[i] = int32(binary.LittleEndian.Uint32(v[4*i:]))
			}
		case tagStart:
			if len(v) >= 8 {
				p.StartTicks = binary.LittleEndian.Uint64(v)
			}
		case tagUIDs, tagGIDs:
			dst := &p.UIDs
			if tag == tagGIDs {
				dst = &p.GIDs
			}
			for i := 0; i < 4 && 4*i+4 <= len(v); i++ {
				dst[i] = binary.LittleEndian.Uint32(v[4*i:])
			}
		case tagComm:
			p.Comm = str(v)
		case tagExe:
			p.Exe = str(v)
		case tagCmdline:
			s := strings.TrimSuffix(str(v), "\x00")
			p.Cmdline = strings.Split(s, "\x00")
		case tagCwd:
			p.Cwd = str(v)
		case tagRoot:
			p.Root = str(v)
		case tagCgroup:
			p.Cgroup = str(v)
		case tagNS:
			if len(v) >= 8 {
				if p.Namespaces == nil {
					p.Namespaces = make([]Namespace, 0, 8) // a process has 8 to 10
				}
				p.Namespaces = append(p.Namespaces, Namespace{Name: str(v)[8:], Inode: binary.LittleEndian.Uint64(v)})
			}
		case tagMounts:
			p.Mountinfo = str(v)
		case tagAfter:
			p.After = str(v)
		}
	}
	return nil
}
