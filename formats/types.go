package formats

import (
	"errors"
	"fmt"
	"time"
)

// Source names the kernel source (or the recorder's own procfs reader) that
// a record came from. Its value is also the pcapng interface id the writer
// gives that source.
type Source uint8

// The sources, in the order of their interface description blocks.
const (
	SourceConnector Source = 0 // process connector (NETLINK_CONNECTOR, CN_IDX_PROC)
	SourceAudit     Source = 1 // Linux audit (NETLINK_AUDIT)
	SourceProcfs    Source = 2 // the recorder's procfs records (ProcRecord)
	numSources             = 3
)

// NumSources is the number of sources a capture can hold.
const NumSources = numSources

// String returns the source's interface name: "connector", "audit" or "procfs".
func (s Source) String() string {
	switch s {
	case SourceConnector:
		return "connector"
	case SourceAudit:
		return "audit"
	case SourceProcfs:
		return "procfs"
	}
	return fmt.Sprintf("source(%d)", uint8(s))
}

// Netlink families written in the Linux cooked header's protocol field.
const (
	NetlinkAudit     = 9  // NETLINK_AUDIT
	NetlinkConnector = 11 // NETLINK_CONNECTOR
)

// Link types of the capture's interfaces.
const (
	LinkTypeNetlink = 253 // LINKTYPE_NETLINK: SLL header + netlink message
	LinkTypeProcfs  = 147 // LINKTYPE_USER0: a ProcRecord
)

// Header holds the host facts of a capture file, from its section header.
// The zero value means "unknown" for every field.
type Header struct {
	Hostname      string    // the recording host's name
	KernelRelease string    // uname -r
	Machine       string    // uname -m
	BootTime      time.Time // wall-clock time of boot: connector timestamps are nanoseconds since this
	Version       string    // the recorder's version
	CommandLine   []string  // the recorder's argv
	CaptureID     string    // random id shared by all files of one rotated set
	Sequence      int       // 0-based number of this file within its set
	Start         time.Time // when the recorder wrote this section header
	// ImportedFrom names the auditd logs a capture was imported from
	// (`proctrail import`); nil for a recording.
	ImportedFrom []string
	// Cut says where a capture made by `proctrail cut` came from; nil for
	// any other.
	Cut *CutInfo
}

// CutInfo is the provenance of a capture made by `proctrail cut`: what it
// was cut from and how. What it kept and masked is in its interface
// statistics (Stats.Accepted and Stats.Masked).
type CutInfo struct {
	// From are the capture ids of the captures cut (a set once), Files
	// their files' base names, in replay order.
	From  []string `json:"from"`
	Files []string `json:"files"`
	// Selection is the selection as `proctrail analyze` flags, e.g.
	// ["--pid", "4301"].
	Selection []string `json:"selection"`
	// Redactions counts the --redact patterns applied (never the
	// patterns themselves: they name what was hidden), HeaderMasked the
	// fields of this header they masked (hostname, the recorder's argv).
	Redactions   int `json:"redactions,omitempty"`
	HeaderMasked int `json:"header_masked,omitempty"`
}

// Record is one packet of a capture: a netlink message from a kernel source
// or one procfs record.
type Record struct {
	Source Source
	// Time is the time of receipt, nanoseconds since the Unix epoch.
	Time int64
	// Data is the netlink message exactly as received (the Linux cooked
	// header removed) for the connector and audit, or a ProcRecord's
	// encoding for procfs. Readers document how long Data stays valid.
	Data []byte
}

// Stats are a source's cumulative counters, from the latest interface
// statistics block: messages received and messages the kernel or the
// recorder dropped (audit's lost counter, connector overruns).
type Stats struct {
	Time     int64 // when the counters were taken, ns since the Unix epoch; 0 if never
	Received uint64
	Dropped  uint64
	// Accepted and Masked are a cut's (Header.Cut): the messages of the
	// source it kept out of Received, and the fields it masked in them.
	Accepted, Masked uint64
}

// Sentinel errors callers branch on.
var (
	// ErrTruncated means a file ended inside a frame.
	ErrTruncated = errors.New("formats: truncated capture")
	// ErrCorrupt means bytes that do not decode as a capture frame.
	ErrCorrupt = errors.New("formats: corrupt capture")
	// ErrTooLarge means a length field exceeds the reader's bound.
	ErrTooLarge = errors.New("formats: length exceeds bound")
)

// CorruptError reports damage at a position of a capture file.
type CorruptError struct {
	File   string // as given in ReaderOptions.Name; may be empty
	Offset int64  // byte offset in the compressed file
	Err    error  // ErrCorrupt, ErrTruncated, ErrTooLarge or a decoder error
}

func (e *CorruptError) Error() string {
	name := e.File
	if name == "" {
		name = "capture"
	}
	return fmt.Sprintf("%s: offset %d: %v", name, e.Offset, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }
