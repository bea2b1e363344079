package replay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/klauspost/compress/gzip"

	"proctrail/formats"
)

// MaxLogLine bounds one auditd log line; longer lines are skipped and
// reported as truncated.
const MaxLogLine = 1 << 20

// MaxLogIssues bounds the lines a LogReader lists in [LogStats.Issues];
// the counters go on counting.
const MaxLogIssues = 1000

// LogProblem says why a line of an auditd log was not used as it stands.
type LogProblem uint8

const (
	// NotRecord: the line is not an audit record (a comment, an ausearch
	// "----" or "time->" line, other text). Blank lines are not counted.
	NotRecord LogProblem = iota
	// Truncated: the line starts like a record but its header is cut or
	// malformed, or it is longer than MaxLogLine, or the file (or its gzip
	// stream) ends in error there. The line is skipped.
	Truncated
	// UnknownType: a record whose type the audit tables do not name. A
	// type=UNKNOWN[N] record, which auditd writes for numbers it does not
	// know, is kept (its number is known); a name not in the tables is
	// skipped, for it has no number.
	UnknownType
)

func (p LogProblem) String() string {
	switch p {
	case NotRecord:
		return "not an audit record"
	case Truncated:
		return "truncated record"
	case UnknownType:
		return "unknown record type"
	}
	return "LogProblem(" + strconv.Itoa(int(p)) + ")"
}

// LogIssue is one line of an auditd log that was skipped, or kept with a
// problem.
type LogIssue struct {
	Line    int64 // 1-based
	Offset  int64 // of the line, in the (decompressed) text
	Problem LogProblem
	Kept    bool  // the record was used all the same (UNKNOWN[N])
	Err     error // what is wrong, for people, without the line number
}

// LogStats describes what a LogReader made of a log.
type LogStats struct {
	File string
	Gzip bool // the file is gzip-compressed
	// Lines counts every line, blank ones included; Records the records
	// read; the others the lines of each problem (see LogProblem).
	Lines, Records                     int64
	NotRecords, Truncated, UnknownType int64
	// UnknownKept counts the UnknownType records kept (UNKNOWN[N]).
	UnknownKept int64
	// Issues lists the first MaxLogIssues problem lines.
	Issues []LogIssue
}

// Skipped counts the lines that held something but gave no record.
func (s *LogStats) Skipped() int64 {
	return s.NotRecords + s.Truncated + s.UnknownType - s.UnknownKept
}

// LogReader reads an auditd text log (/var/log/audit/audit.log, raw or
// enriched, optionally gzip-compressed) as audit records shaped like the
// recorder's: each line becomes the netlink message the kernel would have
// sent (a struct nlmsghdr whose type is the record type and whose length
// covers the header, then the text from "audit(" on). The enriched part of
// a line (after the 0x1d separator) and a leading "node=NAME " are not
// kept: they are not the kernel's.
//
// Lines are taken as they come: leading blanks are ignored (logs pasted
// into YAML or indented text), and a record preceded by a syslog prefix
// ("... audispd: type=SYSCALL msg=audit(...)") is found. Lines that are not
// records, cut records and records of unknown types are counted in
// [LogReader.LogStats], never fatal; cut records and read errors (a damaged
// gzip stream) are also [LogReader.Damage]. Memory is bounded by
// MaxLogLine.
//
// A LogReader is not safe for concurrent use.
type LogReader struct {
	br         *bufio.Reader
	name       string
	off        int64
	lineOff    int64
	buf        []byte
	msg        []byte
	stats      LogStats
	damage     []formats.Damage
	unreadable int64
	err        error
}

// NewLogReader returns a reader of the auditd log r; name is used in
// errors. r may be gzip-compressed: the reader looks at its first bytes.
func NewLogReader(r io.Reader, name string) *LogReader {
	l := &LogReader{name: name, stats: LogStats{File: name}}
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(2); isGzip(head) {
		l.stats.Gzip = true
		zr, err := gzip.NewReader(br)
		if err != nil {
			// A damaged gzip header: damage, like any read error.
			l.stats.Lines++
			l.issue(Truncated, false, fmt.Errorf("reading stopped: %w (gzip: %v)", ErrTruncated, err))
			l.err = io.EOF
			return l
		}
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	l.br = br
	return l
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// FileKind is what a file holds, judged by its content.
type FileKind uint8

const (
	KindUnknown FileKind = iota // neither
	KindCapture                 // a proctrail capture
	KindLog                     // an auditd text log, maybe gzip-compressed
)

// SniffLen is how many bytes Sniff wants to see, at most.
const SniffLen = 64 << 10

// Sniff tells, from head, the first SniffLen bytes of a file (fewer when
// the file is shorter), whether it is a proctrail capture or an auditd
// log. A file is a log when it is gzip-compressed, or when it holds an
// audit record line in head, or when head is text (a log whose first
// lines are comments; a log without any record is an error later, which
// says so). The file name plays no part.
func Sniff(head []byte) FileKind {
	switch {
	case formats.IsCapture(head):
		return KindCapture
	case isGzip(head):
		return KindLog
	case bytes.Contains(head, []byte("type=")) && bytes.Contains(head, []byte(" msg=audit(")):
		return KindLog
	case len(head) > 0 && isText(head):
		return KindLog
	}
	return KindUnknown
}

// isText reports whether b looks like text: no NULs or other C0 controls
// than tab, CR, LF, FF and the enriched format's GS. Bytes above 0x7f are
// allowed: old logs hold Latin-1 in untrusted strings.
func isText(b []byte) bool {
	bad := 0
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1d {
			bad++
		}
	}
	return bad == 0
}

// readLine returns the next line without its newline; tooLong reports a
// line longer than MaxLogLine, of which nothing is kept.
func (l *LogReader) readLine() (line []byte, tooLong bool, err error) {
	l.buf = l.buf[:0]
	read := false
	for {
		chunk, isPrefix, err := l.br.ReadLine()
		l.off += int64(len(chunk))
		if err != nil {
			if err == io.EOF && read {
				return l.buf, tooLong, nil // a last line without newline
			}
			return nil, tooLong, err
		}
		read = true
		if !tooLong {
			if len(l.buf)+len(chunk) > MaxLogLine {
				tooLong, l.buf = true, l.buf[:0]
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		if !isPrefix {
			l.off++ // the newline
			return l.buf, tooLong, nil
		}
	}
}

// issue counts a problem line and lists it while there is room; a
// truncated line is also damage.
func (l *LogReader) issue(p LogProblem, kept bool, err error) {
	s := &l.stats
	switch p {
	case NotRecord:
		s.NotRecords++
	case Truncated:
		s.Truncated++
	case UnknownType:
		s.UnknownType++
		if kept {
			s.UnknownKept++
		}
	}
	if len(s.Issues) < MaxLogIssues {
		s.Issues = append(s.Issues, LogIssue{Line: s.Lines, Offset: l.lineOff, Problem: p, Kept: kept, Err: err})
	}
	if p == Truncated {
		l.addDamage(fmt.Errorf("line %d: %w", s.Lines, err))
	}
}

func (l *LogReader) addDamage(err error) {
	n := max(l.off-l.lineOff, 0)
	l.unreadable += n
	if len(l.damage) < MaxLogIssues {
		l.damage = append(l.damage, formats.Damage{Offset: l.lineOff, Length: n, Err: &formats.CorruptError{File: l.name, Offset: l.lineOff, Err: err}})
	}
}

// ReadRecord is Next into *rec, as formats.Reader's.
func (l *LogReader) ReadRecord(rec *formats.Record) (err error) {
	*rec, err = l.Next()
	return err
}

// Next returns the next record: Source audit, Time from the record's audit
// header, Data the synthesized netlink message. Data is valid until the
// next call. It returns io.EOF at the end. An error reading the file (or
// decompressing it) ends it: it is reported as damage, not returned.
func (l *LogReader) Next() (formats.Record, error) {
	for {
		if l.err != nil {
			return formats.Record{}, l.err
		}
		l.lineOff = l.off
		line, tooLong, err := l.readLine()
		if err != nil {
			if err != io.EOF {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					err = fmt.Errorf("%w (%w)", ErrTruncated, err)
				} else {
					err = fmt.Errorf("%w: the file ends inside its gzip stream", ErrTruncated)
				}
				l.stats.Lines++
				l.issue(Truncated, false, fmt.Errorf("reading stopped: %w", err))
			}
			l.err = io.EOF
			continue
		}
		l.stats.Lines++
		if tooLong {
			l.issue(Truncated, false, fmt.Errorf("longer than %d bytes: %w", MaxLogLine, formats.ErrTooLarge))
			continue
		}
		line = bytes.TrimLeft(line, " \t")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, p, err := l.parse(line)
		if err != nil {
			l.issue(p, false, fmt.Errorf("%w: %q", err, snippet(line)))
			continue
		}
		l.stats.Records++
		return rec, nil
	}
}

var errNotRecord = errors.New("not an audit record")

// snippet is the start of a line, to show in an issue: at most 60 bytes,
// not cutting a UTF-8 sequence, with "…" when cut.
func snippet(line []byte) string {
	const max = 60
	if len(line) <= max {
		return string(line)
	}
	n := max
	for n > max-4 && n > 0 && line[n]&0xc0 == 0x80 {
		n--
	}
	return string(line[:n]) + "…"
}

// parse turns "[node=N ]type=NAME msg=audit(S.MS:SERIAL): BODY[\x1dENRICHED]"
// into a record without parsing BODY: decoding is the stream's job. On
// error it says which problem the line has.
func (l *LogReader) parse(line []byte) (formats.Record, LogProblem, error) {
	if i := bytes.IndexByte(line, 0x1d); i >= 0 {
		line = line[:i]
	}
	if !bytes.HasPrefix(line, []byte("type=")) && !bytes.HasPrefix(line, []byte("node=")) {
		// A syslog or journal prefix before the record?
		i := bytes.Index(line, []byte(" msg=audit("))
		j := bytes.LastIndex(line[:max(i, 0)], []byte("type="))
		if i < 0 || j < 0 {
			return formats.Record{}, NotRecord, errNotRecord
		}
		// Keep a "node=NAME " right before it.
		if pre := line[:j]; bytes.HasSuffix(pre, []byte(" ")) {
			if k := bytes.LastIndex(pre, []byte("node=")); k >= 0 && bytes.IndexByte(pre[k:len(pre)-1], ' ') < 0 {
				j = k
			}
		}
		line = line[j:]
	}
	if rest, ok := bytes.CutPrefix(line, []byte("node=")); ok {
		_, after, found := bytes.Cut(rest, []byte(" "))
		if !found {
			return formats.Record{}, Truncated, fmt.Errorf("%w: node= without a record", ErrMalformed)
		}
		line = after
	}
	rest, ok := bytes.CutPrefix(line, []byte("type="))
	if !ok {
		return formats.Record{}, Truncated, fmt.Errorf("%w: no type= after node=", ErrMalformed)
	}
	name, rest, ok := bytes.Cut(rest, []byte(" msg="))
	if !ok {
		return formats.Record{}, Truncated, fmt.Errorf("%w: no msg=", ErrMalformed)
	}
	typ, known, err := recordType(string(name))
	if err != nil {
		return formats.Record{}, UnknownType, err
	}
	text := bytes.TrimRight(rest, " \r\x00")
	ts, err := headerTime(text)
	if err != nil {
		return formats.Record{}, Truncated, err
	}
	if !known {
		l.issue(UnknownType, true, fmt.Errorf("record type %s (kept)", name))
	}
	n := nlmsgHdrLen + len(text)
	l.msg = l.msg[:0]
	l.msg = binary.NativeEndian.AppendUint32(l.msg, uint32(n))
	l.msg = binary.NativeEndian.AppendUint16(l.msg, typ)
	l.msg = append(l.msg, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) // flags, seq, pid
	l.msg = append(l.msg, text...)
	return formats.Record{Source: formats.SourceAudit, Time: ts, Data: l.msg}, 0, nil
}

// recordType maps a type= name ("SYSCALL", "UNKNOWN[1334]") to its number;
// known is false for UNKNOWN[N].
func recordType(name string) (typ uint16, known bool, err error) {
	if num, ok := bytes.CutPrefix([]byte(name), []byte("UNKNOWN[")); ok {
		v, err := strconv.ParseUint(string(bytes.TrimSuffix(num, []byte("]"))), 10, 16)
		if err != nil {
			return 0, false, fmt.Errorf("%w: record type %q", ErrMalformed, name)
		}
		return uint16(v), false, nil
	}
	t, err := auparse.GetAuditMessageType(name)
	if err != nil {
		return 0, false, fmt.Errorf("record type %q is not in the audit tables", name)
	}
	return uint16(t), true, nil
}

// headerTime reads the time of "audit(SEC.MS:SERIAL):" in ns since the
// Unix epoch.
func headerTime(text []byte) (int64, error) {
	rest, ok := bytes.CutPrefix(text, []byte("audit("))
	if !ok {
		return 0, fmt.Errorf("%w: no audit( header", ErrMalformed)
	}
	stamp, _, ok := bytes.Cut(rest, []byte(":"))
	if !ok {
		return 0, fmt.Errorf("%w: audit header without serial", ErrMalformed)
	}
	sec, ms, _ := bytes.Cut(stamp, []byte("."))
	s, err1 := strconv.ParseInt(string(sec), 10, 64)
	m, err2 := strconv.ParseInt(string(ms), 10, 64)
	if err1 != nil || err2 != nil || s < 0 || s > 1<<33 || m < 0 || m > 999 {
		return 0, fmt.Errorf("%w: audit header time %q", ErrMalformed, stamp)
	}
	return s*1e9 + m*1e6, nil
}

// FrameOffset returns the byte offset of the line read last.
func (l *LogReader) FrameOffset() int64 { return l.lineOff }

// Damage returns the truncated lines and read errors, at most
// MaxLogIssues.
func (l *LogReader) Damage() []formats.Damage { return append([]formats.Damage(nil), l.damage...) }

// UnreadableBytes counts the bytes of skipped lines.
func (l *LogReader) UnreadableBytes() int64 { return l.unreadable }

// LogStats returns what the reader made of the log so far. Its Issues are
// a copy.
func (l *LogReader) LogStats() LogStats {
	s := l.stats
	s.Issues = append([]LogIssue(nil), s.Issues...)
	return s
}

// Stats reports no counters: a log has no interface statistics.
func (l *LogReader) Stats(formats.Source) (formats.Stats, bool) { return formats.Stats{}, false }

// Close does nothing; the caller closes the underlying reader.
func (l *LogReader) Close() error { return nil }
