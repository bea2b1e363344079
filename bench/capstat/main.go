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
// receipt time of that marker. Anything that is not a capture is read as
// an auditd log.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
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
	AuditLost    uint64 `json:"audit_lost"`
	ConnLost     uint64 `json:"connector_lost"`
	// WindowEvents counts the serials from -since to the last USER
	// record, WindowEOE the EOE records.
	WindowEvents uint64 `json:"window_events"`
	WindowEOE    uint64 `json:"window_eoe"`
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
			case formats.SourceAudit:
				if len(rec.Data) < 16 {
					continue
				}
				typ := binary.NativeEndian.Uint16(rec.Data[4:6])
				if typ == auditUser {
					st.MarkerNs = rec.Time
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
	}
	st.AuditEvents = len(c.serials)
	return st, sc.Err()
}

// Audit record types (linux/audit.h).
const (
	auditUser = 1005 // AUDIT_USER, sent by auditctl -m
	auditEOE  = 1320 // AUDIT_EOE, end of a multi-record event
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
