package replay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"

	"github.com/elastic/go-libaudit/v2/auparse"

	"proctrail/formats"
)

// MaxLogLine bounds one auditd log line; longer lines are skipped and
// reported as damage.
const MaxLogLine = 1 << 20

// LogReader reads an auditd text log (/var/log/audit/audit.log, raw or
// enriched) as audit records shaped like the recorder's: each line becomes
// the netlink message the kernel would have sent (a struct nlmsghdr whose
// type is the record type, then the text from "audit(" on). Lines that are
// not records are counted as damage and skipped. Memory is bounded by
// MaxLogLine.
//
// A LogReader is not safe for concurrent use.
type LogReader struct {
	br         *bufio.Reader
	name       string
	line       int
	off        int64
	lineOff    int64
	buf        []byte
	msg        []byte
	damage     []formats.Damage
	unreadable int64
	err        error
}

// NewLogReader returns a reader of the auditd log r; name is used in
// errors.
func NewLogReader(r io.Reader, name string) *LogReader {
	return &LogReader{br: bufio.NewReaderSize(r, 64<<10), name: name}
}

// IsLog reports whether b, the first bytes of a file, look like an auditd
// log rather than a capture.
func IsLog(b []byte) bool {
	return bytes.HasPrefix(b, []byte("type=")) || bytes.HasPrefix(b, []byte("node="))
}

// readLine returns the next line without its newline; tooLong reports a
// line longer than MaxLogLine, of which nothing is kept.
func (l *LogReader) readLine() (line []byte, tooLong bool, err error) {
	l.buf = l.buf[:0]
	for {
		chunk, isPrefix, err := l.br.ReadLine()
		l.off += int64(len(chunk))
		if err != nil {
			return nil, false, err
		}
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

func (l *LogReader) addDamage(err error) {
	n := l.off - l.lineOff
	l.unreadable += n
	if len(l.damage) < 1000 {
		l.damage = append(l.damage, formats.Damage{Offset: l.lineOff, Length: n, Err: &formats.CorruptError{File: l.name, Offset: l.lineOff, Err: err}})
	}
}

// Next returns the next record: Source audit, Time from the record's audit
// header, Data the synthesized netlink message. Data is valid until the
// next call. It returns io.EOF at the end.
func (l *LogReader) Next() (formats.Record, error) {
	for {
		if l.err != nil {
			return formats.Record{}, l.err
		}
		l.lineOff = l.off
		line, tooLong, err := l.readLine()
		if err != nil {
			if err == io.EOF {
				l.err = io.EOF
			} else {
				l.err = fmt.Errorf("replay: %s: %w", l.name, err)
			}
			continue
		}
		l.line++
		if tooLong {
			l.addDamage(fmt.Errorf("line %d longer than %d bytes: %w", l.line, MaxLogLine, formats.ErrTooLarge))
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, err := l.parse(line)
		if err != nil {
			l.addDamage(fmt.Errorf("line %d: %w", l.line, err))
			continue
		}
		return rec, nil
	}
}

// parse turns "[node=N ]type=NAME msg=audit(S.MS:SERIAL): BODY[\x1dENRICHED]"
// into a record without parsing BODY: decoding is the stream's job.
func (l *LogReader) parse(line []byte) (formats.Record, error) {
	if i := bytes.IndexByte(line, 0x1d); i >= 0 {
		line = line[:i]
	}
	if rest, ok := bytes.CutPrefix(line, []byte("node=")); ok {
		_, after, found := bytes.Cut(rest, []byte(" "))
		if !found {
			return formats.Record{}, fmt.Errorf("%w: node= without a record", ErrMalformed)
		}
		line = after
	}
	rest, ok := bytes.CutPrefix(line, []byte("type="))
	if !ok {
		return formats.Record{}, fmt.Errorf("%w: no type=", ErrMalformed)
	}
	name, rest, ok := bytes.Cut(rest, []byte(" msg="))
	if !ok {
		return formats.Record{}, fmt.Errorf("%w: no msg=", ErrMalformed)
	}
	typ, err := recordType(string(name))
	if err != nil {
		return formats.Record{}, err
	}
	text := bytes.TrimRight(rest, " \r\x00")
	ts, err := headerTime(text)
	if err != nil {
		return formats.Record{}, err
	}
	n := nlmsgHdrLen + len(text)
	l.msg = l.msg[:0]
	l.msg = binary.NativeEndian.AppendUint32(l.msg, uint32(n))
	l.msg = binary.NativeEndian.AppendUint16(l.msg, typ)
	l.msg = append(l.msg, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) // flags, seq, pid
	l.msg = append(l.msg, text...)
	return formats.Record{Source: formats.SourceAudit, Time: ts, Data: l.msg}, nil
}

// recordType maps a type= name ("SYSCALL", "UNKNOWN[1334]") to its number.
func recordType(name string) (uint16, error) {
	if num, ok := bytes.CutPrefix([]byte(name), []byte("UNKNOWN[")); ok {
		v, err := strconv.ParseUint(string(bytes.TrimSuffix(num, []byte("]"))), 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%w: record type %q", ErrMalformed, name)
		}
		return uint16(v), nil
	}
	t, err := auparse.GetAuditMessageType(name)
	if err != nil {
		return 0, fmt.Errorf("%w: record type %q", ErrMalformed, name)
	}
	return uint16(t), nil
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

// Damage returns the lines skipped, at most 1000.
func (l *LogReader) Damage() []formats.Damage { return append([]formats.Damage(nil), l.damage...) }

// UnreadableBytes counts the bytes of skipped lines.
func (l *LogReader) UnreadableBytes() int64 { return l.unreadable }

// Stats reports no counters: a log has no interface statistics.
func (l *LogReader) Stats(formats.Source) (formats.Stats, bool) { return formats.Stats{}, false }

// Close does nothing; the caller closes the underlying reader.
func (l *LogReader) Close() error { return nil }
