// Command capstat counts what the benchmark needs from a proctrail capture
// or an auditd log, and prints it as one JSON line:
//
//	capstat [-since NS] FILE
//
// For both: audit records, events (distinct serials), and the window's
// events: the distinct serials whose audit timestamp is at or after -since
// (ns since the Unix epoch; the workload's start) seen before the last
// USER record (the end-of-drain marker the benchmark sends with
// `auditctl -m`), and the window's EOE records (one ends every syscall
// event; auditd does not log them, the floor reader counts them). For a capture, also messages per
// source, the losses the recorder wrote in its statistics blocks and the
// receipt time of that marker, the window's audit packets re-encoded
// alone as a capture (what they take once compressed, whatever else the
// host did meanwhile), and the mount tables that the procfs records
// from -since carry for the processes of the window's SYSCALL records
// (how many, and their bytes before compression: with audit rules scoped
// to a workload, the workload's). Anything that is not a capture is read as
// an auditd log.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"

	"proctrail/formats"
)

type stats struct {
	Kind         string `json:"kind"` // "capture" or "log"
	Bytes        int64  `json:"bytes"`
	AuditRecords uint64 `json:"audit_records"`
	AuditEvents  int    `json:"audit_events"`
	Connector    uint64 `json:"connector_messages"`
	Procfs       uint64 `json:"procfs_records"`
	MountTables  uint64 `json:"mount_tables"`
	MountBytes   uint64 `json:"mount_table_bytes"`
	// MountZBytes is the size of those procfs records re-encoded alone
	// as a capture, less an empty capture's: what the mount tables take
	// once compressed.
	MountZBytes int64  `json:"mount_table_zbytes"`
	AuditLost   uint64 `json:"audit_lost"`
	ConnLost    uint64 `json:"connector_lost"`
	// WindowEvents counts the serials from -since to the last USER
	// record, WindowEOE the EOE records.
	WindowEvents uint64 `json:"window_events"`
	WindowEOE    uint64 `json:"window_eoe"`
	// WindowBytes is the window's audit records' share of the file: for a
	// capture the size of its audit packets from -since re-encoded alone,
	// for a log the bytes of its lines from -since.
	WindowBytes int64 `json:"window_bytes"`
	// MarkerNs is the receipt time of the last USER record of a capture;
	// for a log, 1 when a USER record is present.
	MarkerNs int64 `json:"marker_ns"`
}

// counter accumulates one audit record at a time.
type counter struct {
	st      *stats
	since   int64 // ms
	serials map[uint64]struct{}
	window  map[uint64]struct{} // serials since since
	eoe     uint64              // EOE records since since
}

// add counts one record: its text (from "audit(" on, or a whole log line)
// and whether it is an EOE or a USER record.
func (c *counter) add(text []byte, eoe, user bool) {
	c.st.AuditRecords++
	ms, serial, ok := header(text)
	if ok {
		c.serials[serial] = struct{}{}
	}
	if ok && ms >= c.since {
		c.window[serial] = struct{}{}
		if eoe {
			c.eoe++
		}
	}
	if user {
		c.st.WindowEvents, c.st.WindowEOE = uint64(len(c.window)), c.eoe
	}
}

func main() {
	since := flag.Int64("since", 0, "count window events from this time, `ns` since the Unix epoch")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: capstat [-since NS] FILE")
		os.Exit(2)
	}
	st, err := count(flag.Arg(0), *since/1e6)
	if err != nil {
		fmt.Fprintln(os.Stderr, "capstat:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(st)
}

func count(name string, sinceMs int64) (*stats, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st := &stats{Bytes: fi.Size()}
	c := &counter{st: st, since: sinceMs, serials: make(map[uint64]struct{}, 1<<16),
		window: make(map[uint64]struct{}, 1<<16)}
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err == nil && binary.LittleEndian.Uint32(magic[:])&0xFFFFFFF0 == 0x184D2A50 {
		st.Kind = "capture"
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		r, err := formats.NewReader(bufio.NewReaderSize(f, 1<<20), &formats.ReaderOptions{Name: name})
		if err != nil {
			return nil, err
		}
		defer r.Close()
		var wb countWriter
		win, err := formats.NewWriter(&wb, nil)
		if err != nil {
			return nil, err
		}
		mounts := map[int32][]mountRec{} // procfs records with a mount table, by pid
		pids := map[int32]bool{}         // of the window's SYSCALL records
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			switch rec.Source {
			case formats.SourceConnector:
				st.Connector++
			case formats.SourceProcfs:
				st.Procfs++
				var p formats.ProcRecord
				if rec.Time/1e6 >= c.since && p.UnmarshalBinary(rec.Data) == nil && p.Mountinfo != "" {
					mounts[p.PID] = append(mounts[p.PID], mountRec{len(p.Mountinfo), rec.Time, bytes.Clone(rec.Data)})
				}
			case formats.SourceAudit:
				if len(rec.Data) < 16 {
					continue
				}
				typ := binary.NativeEndian.Uint16(rec.Data[4:6])
				if typ == auditUser {
					st.MarkerNs = rec.Time
				}
				if ms, _, ok := header(rec.Data[16:]); ok && ms >= c.since {
					if err := win.WritePacket(rec.Source, rec.Time, rec.Data); err != nil {
						return nil, err
					}
					if typ == auditSyscall {
						if m := pidField.FindSubmatch(rec.Data[16:]); m != nil {
							pid, _ := strconv.ParseUint(string(m[1]), 10, 32)
							pids[int32(pid)] = true
						}
					}
				}
				c.add(rec.Data[16:], typ == auditEOE, typ == auditUser)
			}
		}
		if s, ok := r.Stats(formats.SourceAudit); ok {
			st.AuditLost = s.Dropped
		}
		if s, ok := r.Stats(formats.SourceConnector); ok {
			st.ConnLost = s.Dropped
		}
		st.AuditEvents = len(c.serials)
		if err := win.Close(); err != nil {
			return nil, err
		}
		st.WindowBytes = int64(wb)
		var mz countWriter
		mw, err := formats.NewWriter(&mz, nil)
		if err != nil {
			return nil, err
		}
		var kept []mountRec
		for pid, recs := range mounts {
			if pids[pid] {
				kept = append(kept, recs...)
			}
		}
		slices.SortFunc(kept, func(a, b mountRec) int { return cmp.Compare(a.time, b.time) })
		for _, m := range kept {
			st.MountTables++
			st.MountBytes += uint64(m.size)
			if err := mw.WritePacket(formats.SourceProcfs, m.time, m.data); err != nil {
				return nil, err
			}
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
		if len(kept) > 0 {
			// Less a capture's own header and end.
			var empty countWriter
			ew, err := formats.NewWriter(&empty, nil)
			if err == nil {
				err = ew.Close()
			}
			if err != nil {
				return nil, err
			}
			st.MountZBytes = int64(mz - empty)
		}
		return st, nil
	}
	st.Kind = "log"
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bufio.NewReaderSize(f, 1<<20))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		user := bytes.HasPrefix(line, []byte("type=USER "))
		if user {
			st.MarkerNs = 1
		}
		c.add(line, bytes.HasPrefix(line, []byte("type=EOE ")), user)
		if ms, _, ok := header(line); ok && ms >= c.since {
			st.WindowBytes += int64(len(line)) + 1
		}
	}
	st.AuditEvents = len(c.serials)
	return st, sc.Err()
}

// mountRec is a procfs record carrying a mount table.
type mountRec struct {
	size int // of the mount table
	time int64
	data []byte
}

// countWriter counts the bytes written to it.
type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}

// Audit record types (linux/audit.h).
// pidField is a SYSCALL record's process id.
var pidField = regexp.MustCompile(` pid=(\d+) `)

const (
	auditSyscall = 1300 // AUDIT_SYSCALL
	auditUser    = 1005 // AUDIT_USER, sent by auditctl -m
	auditEOE     = 1320 // AUDIT_EOE, end of a multi-record event
)

// header returns the time in milliseconds and the serial of the first
// "audit(SECONDS.MMM:SERIAL)" in b.
func header(b []byte) (ms int64, serial uint64, ok bool) {
	i := bytes.Index(b, []byte("audit("))
	if i < 0 {
		return 0, 0, false
	}
	b = b[i+6:]
	dot := bytes.IndexByte(b, '.')
	colon := bytes.IndexByte(b, ':')
	end := bytes.IndexByte(b, ')')
	if dot < 0 || colon < dot || end < colon {
		return 0, 0, false
	}
	sec, err1 := strconv.ParseInt(string(b[:dot]), 10, 64)
	milli, err2 := strconv.ParseInt(string(b[dot+1:colon]), 10, 64)
	serial, err3 := strconv.ParseUint(string(b[colon+1:end]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return sec*1000 + milli, serial, true
}
