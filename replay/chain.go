package replay

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/elastic/go-libaudit/v2/auparse"

	"proctrail/formats"
	"proctrail/internal/pipe"
)

// chain is one capture set: its files in sequence order, read one after
// the other by a reader goroutine (see [chain.read]) that decodes batches
// of messages ahead of the Stream.
type chain struct {
	files []fileHead
	pipe  *pipe.Pipe[batch] // from the reader; taken by advance
	b     *batch            // the batch being consumed
	i     int               // next message of b
	at    *decoded          // the current message, in b
	ok    bool              // at holds a message
	last  [formats.NumSources]formats.Stats
	seen  [formats.NumSources]bool
}

type fileHead struct {
	name string
	hdr  formats.Header
	log  bool // an auditd text log, not a capture
}

// recordReader is what a chain reads: a capture file or an auditd log.
type recordReader interface {
	ReadRecord(*formats.Record) error // Next into a Record of the caller's
	FrameOffset() int64
	Stats(formats.Source) (formats.Stats, bool)
	Damage() []formats.Damage
	UnreadableBytes() int64
	Close() error
}

// decoded is one message as a chain's reader decoded it.
type decoded struct {
	time   int64
	source formats.Source
	file   int   // index in chain.files
	offset int64 // of its frame
	raw    []byte
	proc   *ProcEvent // a connector message's, from the reader's slabs
	audit  AuditRecord
	procfs *formats.ProcRecord
	err    error
	// kept says an audit record goes into its event: the Stream's
	// AuditTexts (all when nil) names its type.
	kept bool
}

// fileEnd is what a chain's reader learned at the end of a file.
type fileEnd struct {
	stats      [formats.NumSources]formats.Stats
	seen       [formats.NumSources]bool
	unreadable int64
	damage     []formats.Damage
	log        *LogStats // of an auditd log
}

// batch is what a chain's reader sends: up to pipe.Len messages, then the
// files that ended after them, then the error that stopped it, if any.
type batch struct {
	msgs []decoded
	ends []fileEnd
	err  error
}

func newBatch() *batch { return &batch{msgs: make([]decoded, 0, pipe.Len)} }

// reset empties b and drops its references to the arena's blocks and the
// files' damage.
func (b *batch) reset() {
	clear(b.msgs)
	clear(b.ends)
	b.msgs, b.ends, b.err = b.msgs[:0], b.ends[:0], nil
}

// read is a chain's reader goroutine: it opens the chain's files in turn,
// decodes their messages into batches and sends them on c.pipe, which it
// closes at the end or after an error. It gives up when the pipe stops.
//
// Once rawless is set (the Stream is read with NextEvent, which shows no
// Raw), only what the decoded messages keep is copied out of the frame:
// the text of audit records, of the types texts names (all when nil).
// Either way each audit record is marked kept or not (decoded.kept), and
// the merger leaves the others out of their events, whatever text a
// batch decoded before rawless was set copied; so rawless is looked at
// once a batch, not once a message: it shares a
// cache line with what the Stream's reader writes at every event, and
// loading it at every message from another core was 2% of the CPU of an
// analysis.
func (c *chain) read(open func(string) (io.ReadCloser, error), rawless *atomic.Bool, texts func(auparse.AuditMessageType) bool) {
	defer c.pipe.Close()
	var a arena
	var hc headerCache
	var procs []ProcEvent // slabs of decoded.proc
	b := c.pipe.Batch()
	noRaw := rawless.Load()
	send := func() bool {
		if !c.pipe.Send(b) {
			return false
		}
		b = c.pipe.Batch()
		if !noRaw {
			noRaw = rawless.Load()
		}
		return true
	}
	for fi, fh := range c.files {
		f, err := open(fh.name)
		if err != nil {
			b.err = fmt.Errorf("replay: %w", err)
			send()
			return
		}
		var r recordReader
		if fh.log {
			r = NewLogReader(f, fh.name)
		} else if r, err = formats.NewReader(f, &formats.ReaderOptions{Name: fh.name}); err != nil {
			f.Close()
			b.err = fmt.Errorf("replay: %w", err)
			send()
			return
		}
		var rec formats.Record
		for {
			err := r.ReadRecord(&rec)
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				f.Close()
				b.err = fmt.Errorf("replay: %w", err)
				send()
				return
			}
			b.msgs = append(b.msgs, decoded{time: rec.Time, source: rec.Source, file: fi, offset: r.FrameOffset()})
			d := &b.msgs[len(b.msgs)-1]
			if d.source == formats.SourceConnector {
				d.proc = fromSlab(&procs)
			}
			if noRaw {
				d.decodeRawless(rec.Data, &a, &hc, texts)
			} else {
				d.decode(a.copy(rec.Data), &hc, texts)
			}
			if len(b.msgs) == pipe.Len && !send() {
				r.Close()
				f.Close()
				return
			}
		}
		var end fileEnd
		for src := range formats.Source(formats.NumSources) {
			end.stats[src], end.seen[src] = r.Stats(src)
		}
		end.unreadable, end.damage = r.UnreadableBytes(), r.Damage()
		if l, ok := r.(*LogReader); ok {
			st := l.LogStats()
			end.log = &st
			if st.Records == 0 {
				r.Close()
				f.Close()
				b.err = fmt.Errorf("replay: %s: no audit record in %d lines: not an auditd log", fh.name, st.Lines)
				send()
				return
			}
		}
		r.Close()
		f.Close()
		b.ends = append(b.ends, end)
		if !send() {
			return
		}
	}
}

// decode decodes raw, the message d describes; hc is the reader's (see
// decodeAuditShared), texts the Stream's AuditTexts.
func (d *decoded) decode(raw []byte, hc *headerCache, texts func(auparse.AuditMessageType) bool) {
	d.raw = raw
	switch d.source {
	case formats.SourceConnector:
		*d.proc, d.err = DecodeProcEvent(raw)
	case formats.SourceAudit:
		if d.err = decodeAuditShared(&d.audit, raw, hc); d.err == nil {
			d.kept = texts == nil || texts(d.audit.Type)
		}
	case formats.SourceProcfs:
		p := new(formats.ProcRecord)
		if d.err = p.UnmarshalBinary(raw); d.err == nil {
			d.procfs = p
		}
	}
}

// decodeRawless decodes msg, which the reader will overwrite, with no Raw:
// proc events and procfs records copy what they keep, and an audit
// record's text is copied into a if texts (nil for all) names its type,
// or else left empty.
func (d *decoded) decodeRawless(msg []byte, a *arena, hc *headerCache, texts func(auparse.AuditMessageType) bool) {
	switch d.source {
	case formats.SourceConnector:
		*d.proc, d.err = DecodeProcEvent(msg)
	case formats.SourceAudit:
		if d.err = decodeAuditShared(&d.audit, msg, hc); d.err == nil {
			if d.kept = texts == nil || texts(d.audit.Type); d.kept {
				d.audit.Text = unsafeString(a.copy(unsafeBytes(d.audit.Text)))
			} else {
				d.audit.Text = ""
			}
		}
	case formats.SourceProcfs:
		p := new(formats.ProcRecord)
		if d.err = p.UnmarshalBinary(msg); d.err == nil {
			d.procfs = p
		}
	}
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// arenaBlock is the size of the blocks messages are copied into: the
// largest the allocator serves from its per-thread caches. The runtime
// takes an object as small up to 32 KiB less its 8-byte malloc header,
// whether it has one or not; a block of 32 KiB was a large object, a
// span of its own taken under the heap's lock and zeroed at each reuse.
const arenaBlock = 32<<10 - 8

// arena copies messages into shared blocks: one allocation for many
// messages instead of one each, which is most of what the garbage
// collector would otherwise do. A block is never written again where it
// was handed out, so the strings of decoded messages may point into it;
// it is freed when no message of it is referenced any more. Whoever keeps
// a string of a message for long (analyze's model does) clones it, or
// it keeps its whole block alive.
//
// A block is a strings.Builder's buffer: Grow is the standard library's
// one allocation that is not zeroed, and every byte of a block is
// written before it is handed out. The Builder only appends, so what it
// handed out stays as written.
type arena struct{ sb strings.Builder }

func (a *arena) copy(b []byte) []byte {
	n := len(b)
	switch {
	case n == 0:
		return nil
	case n > arenaBlock/8:
		return bytes.Clone(b)
	case a.sb.Cap()-a.sb.Len() < n:
		a.sb = strings.Builder{}
		a.sb.Grow(arenaBlock)
	}
	i := a.sb.Len()
	a.sb.Write(b)
	return unsafeBytes(a.sb.String()[i:])
}

// advance moves c to its next message, taking the next batch from its
// reader as needed and accounting for the files that ended on the way.
// The message c was at before stays valid until the next call: the pipe
// hands a batch back to the reader only at the second Take after it.
func (s *Stream) advance(c *chain) error {
	for {
		if b := c.b; b != nil {
			if c.i < len(b.msgs) {
				c.at, c.ok = &b.msgs[c.i], true
				c.i++
				return nil
			}
			for i := range b.ends {
				e := &b.ends[i]
				for src := range formats.NumSources {
					if e.seen[src] {
						c.last[src], c.seen[src] = e.stats[src], true
					}
				}
				s.info.UnreadableBytes += e.unreadable
				s.info.Damage = append(s.info.Damage, e.damage...)
				if e.log != nil {
					s.info.Logs = append(s.info.Logs, *e.log)
				}
			}
			c.b, c.at, c.ok = nil, nil, false
			if b.err != nil {
				return b.err
			}
		}
		b, ok := c.pipe.Take()
		if !ok {
			return nil
		}
		c.b, c.i = b, 0
	}
}
