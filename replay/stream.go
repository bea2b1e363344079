package replay

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/elastic/go-libaudit/v2/auparse"

	"proctrail/formats"
)

// Message is one decoded message of a capture, in capture order.
type Message struct {
	// Time is the capture time of receipt, ns since the Unix epoch.
	Time   int64
	Source formats.Source
	// File and Offset name the capture file and the offset of the frame
	// that held the message.
	File   string
	Offset int64
	// Raw is the message as recorded; it is valid until the next call of
	// Next.
	Raw []byte
	// Exactly one of these is set, by Source, unless Err is set.
	Proc   *ProcEvent
	Audit  *AuditRecord
	ProcFS *formats.ProcRecord
	// Err is why the message could not be decoded; the stream goes on.
	Err error
}

// Event is one item of the event stream: a proc event, a procfs record, or
// a whole audit event (its records grouped by serial).
type Event struct {
	Time   int64 // capture time: of receipt, or of an audit event's first record
	Source formats.Source
	File   string
	Offset int64
	Proc   *ProcEvent
	Audit  *AuditEvent
	ProcFS *formats.ProcRecord
}

// CaptureInfo describes the captures a Stream reads. Counters are complete
// once Next or NextEvent has returned io.EOF.
type CaptureInfo struct {
	Files    []string // in replay order
	Host     string
	Kernel   string
	BootTime time.Time // of the first file; see formats.Header
	// Start and End are the first and last capture times, ns since the
	// Unix epoch; 0 when there were no messages.
	Start, End int64
	// Messages counts the messages read per source; Lost the losses the
	// recorder counted (interface statistics), summed over capture sets.
	Messages    [formats.NumSources]uint64
	Lost        [formats.NumSources]uint64
	AuditEvents uint64
	// AuditGaps counts audit serials that never arrived (the reassembler's
	// estimate of lost events; the kernel's own counter is in Lost).
	AuditGaps uint64
	// Undecodable counts messages that could not be decoded.
	Undecodable uint64
	// UnreadableBytes counts the bytes of all files that could not be read;
	// Damage says where.
	UnreadableBytes int64
	Damage          []formats.Damage
	// Logs describes each auditd log read to its end, in the order they
	// ended: its lines skipped and why.
	Logs []LogStats
	// AuditOnly is set when every file is an auditd log or a capture
	// imported from logs: no process connector or procfs data will come.
	AuditOnly bool
}

// SkippedLines counts the lines of the auditd logs read that gave no
// record (see LogStats.Skipped).
func (i *CaptureInfo) SkippedLines() (n int64) {
	for k := range i.Logs {
		n += i.Logs[k].Skipped()
	}
	return n
}

// Options configure a Stream. A nil *Options means the defaults.
type Options struct {
	// Reassembler bounds the audit reassembler.
	Reassembler *ReassemblerOptions
	// Open opens a capture file; default os.Open. Tests substitute it.
	// After Open has read the headers, the Stream's readers call it, one
	// goroutine per capture set: concurrently when there are several.
	Open func(name string) (io.ReadCloser, error)
}

// chain is one capture set: its files in sequence order, read one after
// the other by a reader goroutine (see [chain.read]) that decodes batches
// of messages ahead of the Stream.
type chain struct {
	files   []fileHead
	ahead   chan *batch // decoded batches, in order; closed after the last
	free    chan *batch // consumed batches, for reuse
	b       *batch      // the batch being consumed
	retired *batch      // the batch consumed before, to go back to the reader
	i       int         // next message of b
	at      *decoded    // the current message, in b
	ok      bool        // at holds a message
	last    [formats.NumSources]formats.Stats
	seen    [formats.NumSources]bool
}

type fileHead struct {
	name string
	hdr  formats.Header
	log  bool // an auditd text log, not a capture
}

// recordReader is what a chain reads: a capture file or an auditd log.
type recordReader interface {
	Next() (formats.Record, error)
	FrameOffset() int64
	Stats(formats.Source) (formats.Stats, bool)
	Damage() []formats.Damage
	UnreadableBytes() int64
	Close() error
}

// Stream replays one or many capture files, or auditd text logs, as one
// ordered stream. Files of one rotated set (same capture id) are read in
// sequence order; separate sets are merged by capture time.
//
// The work runs ahead of the caller on other goroutines, so that a second
// core does part of it: each set is read, decompressed and decoded by a
// goroutine of its own, up to batchesAhead batches of batchLen messages
// ahead; and a Stream read with NextEvent merges the sets and reassembles
// audit events on one more, up to batchesAhead batches of eventBatchLen
// events ahead. The order of the stream, and so everything computed from
// it, does not depend on how the goroutines are scheduled. Memory does not
// grow with the captures' length: one reader and a few batches per set,
// and the reassembler's bounds.
//
// A Stream is read with Next or with NextEvent, not both: the first call
// decides, and a call of Next after NextEvent fails. A Stream is not safe
// for concurrent use. Close stops its goroutines.
type Stream struct {
	open   func(string) (io.ReadCloser, error)
	chains []*chain
	h      chainHeap
	info   CaptureInfo
	reasm  *Reassembler
	msg    Message
	proc   ProcEvent
	audit  AuditRecord
	err    error
	done   bool // all chains drained; the reassembler flushed
	slabs  slabs

	mode   int           // how the Stream is read: modeUnset, modeMessages or modeEvents
	events chan *evBatch // modeEvents: the merger's output, closed after its last batch
	evFree chan *evBatch // consumed batches, for reuse
	eb     *evBatch      // the batch being consumed
	ei     int           // its next item
	evInfo CaptureInfo   // modeEvents: the Info of the last event returned
	evErr  error         // modeEvents: the error returned last, returned again

	rawless atomic.Bool   // set in modeEvents: the readers need not copy Raw
	stop    chan struct{} // closed by Close: the goroutines give up
	stopped bool
	workers sync.WaitGroup
}

// How a Stream is read; see [Stream].
const (
	modeUnset = iota
	modeMessages
	modeEvents
)

var (
	errMixed  = errors.New("replay: Next called on a stream read with NextEvent")
	errClosed = errors.New("replay: stream closed")
)

// Open reads the header of every file and returns a Stream positioned
// before the first message. A file that cannot be opened or is not a
// capture is an error naming it.
func Open(files []string, opts *Options) (*Stream, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Open == nil {
		o.Open = func(name string) (io.ReadCloser, error) { return os.Open(name) }
	}
	if len(files) == 0 {
		return nil, errors.New("replay: no capture files")
	}
	s := &Stream{open: o.Open, reasm: NewReassembler(o.Reassembler), stop: make(chan struct{})}
	sets := map[string]*chain{}
	for _, name := range files {
		hdr, log, err := readHeader(o.Open, name)
		if err != nil {
			return nil, err
		}
		key := hdr.CaptureID
		if key == "" || log {
			key = "file:" + name
		}
		c := sets[key]
		if c == nil {
			c = &chain{}
			sets[key] = c
			s.chains = append(s.chains, c)
		}
		c.files = append(c.files, fileHead{name, hdr, log})
	}
	for _, c := range s.chains {
		slices.SortStableFunc(c.files, func(a, b fileHead) int { return cmp.Compare(a.hdr.Sequence, b.hdr.Sequence) })
	}
	// Sets in order of their start, for a deterministic merge.
	slices.SortStableFunc(s.chains, func(a, b *chain) int {
		return cmp.Or(a.files[0].hdr.Start.Compare(b.files[0].hdr.Start), cmp.Compare(a.files[0].name, b.files[0].name))
	})
	for _, c := range s.chains {
		for _, f := range c.files {
			s.info.Files = append(s.info.Files, f.name)
		}
	}
	first := s.chains[0].files[0].hdr
	s.info.Host, s.info.Kernel, s.info.BootTime = first.Hostname, first.KernelRelease, first.BootTime
	s.info.AuditOnly = true
	for _, c := range s.chains {
		for _, f := range c.files {
			s.info.AuditOnly = s.info.AuditOnly && (f.log || f.hdr.ImportedFrom != nil)
		}
	}
	for _, c := range s.chains {
		c.ahead = make(chan *batch, batchesAhead)
		c.free = make(chan *batch, batchesAhead+2)
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			c.read(s.open, s.stop, &s.rawless)
		}()
	}
	for i, c := range s.chains {
		if err := s.advance(c); err != nil {
			s.Close()
			return nil, err
		}
		if c.ok {
			heap.Push(&s.h, chainItem{c, i})
		}
	}
	return s, nil
}

// readHeader reads a capture's section header, or reports an auditd log.
func readHeader(open func(string) (io.ReadCloser, error), name string) (formats.Header, bool, error) {
	f, err := open(name)
	if err != nil {
		return formats.Header{}, false, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, SniffLen)
	head, _ := br.Peek(SniffLen)
	kind := Sniff(head)
	if kind == KindLog {
		return formats.Header{}, true, nil
	}
	r, err := formats.NewReader(br, &formats.ReaderOptions{Name: name})
	if err != nil {
		if kind == KindUnknown && len(head) > 0 {
			return formats.Header{}, false, fmt.Errorf("replay: %w; nor is it an auditd log (binary data)", err)
		}
		return formats.Header{}, false, fmt.Errorf("replay: %w", err)
	}
	defer r.Close()
	return r.Header(), false, nil
}

// How far a chain's reader runs ahead: batchesAhead batches of batchLen
// messages, waiting while the Stream consumes one and the reader fills
// another. More would absorb the uneven cost of frames (a frame is
// decompressed at once) a little better, but every batch in flight holds
// its messages, and the memory of a whole analysis is a few tens of MiB:
// measured, four batches of 512 cost 8 MiB of peak memory and no time.
const (
	batchLen     = 256
	batchesAhead = 2
)

// decoded is one message as a chain's reader decoded it.
type decoded struct {
	time   int64
	source formats.Source
	file   int   // index in chain.files
	offset int64 // of its frame
	raw    []byte
	proc   ProcEvent
	audit  AuditRecord
	procfs *formats.ProcRecord
	err    error
}

// fileEnd is what a chain's reader learned at the end of a file.
type fileEnd struct {
	stats      [formats.NumSources]formats.Stats
	seen       [formats.NumSources]bool
	unreadable int64
	damage     []formats.Damage
	log        *LogStats // of an auditd log
}

// batch is what a chain's reader sends: messages, then the files that
// ended after them, then the error that stopped it, if any.
type batch struct {
	msgs []decoded
	ends []fileEnd
	err  error
}

// read is a chain's reader goroutine: it opens the chain's files in turn,
// decodes their messages into batches and sends them on c.ahead, which it
// closes at the end or after an error. It gives up when stop is closed.
//
// Once rawless is set (the Stream is read with NextEvent, which shows no
// Raw), only what the decoded messages keep is copied out of the frame:
// the text of audit records.
func (c *chain) read(open func(string) (io.ReadCloser, error), stop <-chan struct{}, rawless *atomic.Bool) {
	defer close(c.ahead)
	var a arena
	b := &batch{msgs: make([]decoded, 0, batchLen)}
	send := func() bool {
		select {
		case c.ahead <- b:
		case <-stop:
			return false
		}
		select {
		case b = <-c.free:
			b.msgs, b.ends, b.err = b.msgs[:0], b.ends[:0], nil
		default:
			b = &batch{msgs: make([]decoded, 0, batchLen)}
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
		for {
			rec, err := r.Next()
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
			if d := &b.msgs[len(b.msgs)-1]; rawless.Load() {
				d.decodeRawless(rec.Data, &a)
			} else {
				d.decode(a.copy(rec.Data))
			}
			if len(b.msgs) == batchLen && !send() {
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

// decode decodes raw, the message d describes.
func (d *decoded) decode(raw []byte) {
	d.raw = raw
	switch d.source {
	case formats.SourceConnector:
		d.proc, d.err = DecodeProcEvent(raw)
	case formats.SourceAudit:
		d.audit, d.err = decodeAuditShared(raw)
	case formats.SourceProcfs:
		p := new(formats.ProcRecord)
		if d.err = p.UnmarshalBinary(raw); d.err == nil {
			d.procfs = p
		}
	}
}

// decodeRawless decodes msg, which the reader will overwrite, with no Raw:
// proc events and procfs records copy what they keep, and an audit
// record's text is copied into a.
func (d *decoded) decodeRawless(msg []byte, a *arena) {
	switch d.source {
	case formats.SourceConnector:
		d.proc, d.err = DecodeProcEvent(msg)
	case formats.SourceAudit:
		if d.audit, d.err = decodeAuditShared(msg); d.err == nil {
			d.audit.Text = unsafeString(a.copy(unsafeBytes(d.audit.Text)))
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

// decodeAuditShared is DecodeAuditMessage for a msg that is never modified
// afterwards. It allocates nothing: the record's text points into msg, and
// the record has no cached body (Fields parses its Text at each call, as
// for a record built by hand), since auparse's message and its cache cost
// two allocations a record and most records are never asked for their
// fields. The header is parsed as auparse.Parse parses it; whatever this
// fast path does not accept goes to DecodeAuditMessage, for its error.
func decodeAuditShared(msg []byte) (AuditRecord, error) {
	if len(msg) < nlmsgHdrLen {
		return DecodeAuditMessage(msg)
	}
	h, _ := parseNLHeader(msg)
	typ := auparse.AuditMessageType(h.Type)
	// The kernel's replies are all numbered below AUDIT_GET_FEATURE+1:
	// records, from 1100 on, skip the map.
	if uint64(h.Len) > uint64(len(msg)) || h.Type < nlmsgMinType || (typ <= auparse.AUDIT_GET_FEATURE && auditReplyTypes[typ]) {
		return DecodeAuditMessage(msg)
	}
	text := msg[nlmsgHdrLen:]
	line := trimText(unsafe.String(unsafe.SliceData(text), len(text)))
	// auparse's parseAuditHeader: "…(SEC.MSEC:SERIAL)…".
	start := strings.IndexByte(line, '(')
	if start < 0 {
		return DecodeAuditMessage(msg)
	}
	dot := strings.IndexByte(line[start:], '.')
	if dot < 0 {
		return DecodeAuditMessage(msg)
	}
	dot += start
	sep := strings.IndexByte(line[dot:], ':')
	if sep < 0 {
		return DecodeAuditMessage(msg)
	}
	sep += dot
	end := strings.IndexByte(line[sep:], ')')
	if end < 0 {
		return DecodeAuditMessage(msg)
	}
	end += sep
	// Plain digits, as the kernel writes them; anything else (signs,
	// overflow) goes the long way, for auparse's result or error.
	sec, ok1 := digits(line[start+1:dot], 18)
	msec, ok2 := digits(line[dot+1:sep], 18)
	serial, ok3 := digits(line[sep+1:end], 10)
	if !ok1 || !ok2 || !ok3 || serial > math.MaxUint32 {
		return DecodeAuditMessage(msg)
	}
	return AuditRecord{
		Type:   typ,
		Serial: serial,
		Time:   time.Unix(int64(sec), int64(msec)*int64(time.Millisecond)).UTC(),
		Text:   line,
	}, nil
}

// digits parses s, 1 to max decimal digits and nothing else; max 18 or
// less keeps it within an int64.
func digits(s string, max int) (uint64, bool) {
	if len(s) == 0 || len(s) > max {
		return 0, false
	}
	var v uint64
	for i := range len(s) {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + uint64(c)
	}
	return v, true
}

// arenaBlock is the size of the blocks messages are copied into: the
// largest the allocator serves from its per-thread caches (larger ones
// take a lock and a span of their own).
const arenaBlock = 32 << 10

// arena copies messages into shared blocks: one allocation for many
// messages instead of one each, which is most of what the garbage
// collector would otherwise do. A block is never written again where it
// was handed out, so the strings of decoded messages may point into it;
// it is freed when no message of it is referenced any more. Whoever keeps
// a string of a message for long (analyze's model does) clones it, or
// it keeps its whole block alive.
type arena struct{ block []byte }

func (a *arena) copy(b []byte) []byte {
	n := len(b)
	switch {
	case n == 0:
		return nil
	case n > arenaBlock/8:
		return bytes.Clone(b)
	case cap(a.block)-len(a.block) < n:
		a.block = make([]byte, 0, arenaBlock)
	}
	i := len(a.block)
	a.block = append(a.block, b...)
	return a.block[i:len(a.block):len(a.block)]
}

// advance moves c to its next message, taking the next batch from its
// reader as needed and accounting for the files that ended on the way.
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
			err := b.err
			c.b, c.at, c.ok = nil, nil, false
			// The batch before goes back to the reader; this one once the
			// message taken last from it is done with (see take).
			if r := c.retired; r != nil {
				clear(r.msgs) // drop the references to the arena
				select {
				case c.free <- r:
				default:
				}
			}
			c.retired = b
			if err != nil {
				return err
			}
		}
		b, ok := <-c.ahead
		if !ok {
			return nil
		}
		c.b, c.i = b, 0
	}
}

// Next returns the next message in capture order, decoded. It returns
// io.EOF after the last one. A message that does not decode is returned
// with Err set. The returned Message and what it points to are
// overwritten by the next call, but for Raw and the strings of Audit,
// which the Stream never overwrites; they share memory with neighbouring
// messages (blocks of 32 KiB), so a copy is better to keep one for long.
// Next fails on a Stream read with NextEvent.
func (s *Stream) Next() (*Message, error) {
	switch s.mode {
	case modeUnset:
		s.mode = modeMessages
	case modeEvents:
		return nil, errMixed
	}
	if s.stopped {
		return nil, errClosed
	}
	return s.next()
}

// next is Next.
func (s *Stream) next() (*Message, error) {
	d, c, err := s.take()
	if err != nil {
		return nil, err
	}
	m := &s.msg
	*m = Message{Time: d.time, Source: d.source, File: c.files[d.file].name, Offset: d.offset, Raw: d.raw}
	if err := d.err; err != nil {
		m.Err = fmt.Errorf("%s: offset %d: %w", m.File, m.Offset, err)
		return m, nil
	}
	switch d.source {
	case formats.SourceConnector:
		s.proc = d.proc
		m.Proc = &s.proc
	case formats.SourceAudit:
		s.audit = d.audit
		m.Audit = &s.audit
	case formats.SourceProcfs:
		m.ProcFS = d.procfs
	}
	return m, nil
}

// take returns the next message in capture order, with its chain, counts
// it in Info and moves past it. The message stays valid until the next
// call: its batch goes back to the reader one batch late. An error moving
// past it is returned by the next call.
func (s *Stream) take() (*decoded, *chain, error) {
	if s.err != nil {
		return nil, nil, s.err
	}
	if s.h.Len() == 0 {
		s.finish()
		s.err = io.EOF
		return nil, nil, io.EOF
	}
	c := s.h[0].c
	d := c.at
	s.info.Messages[d.source]++
	if s.info.Start == 0 || d.time < s.info.Start {
		s.info.Start = d.time
	}
	s.info.End = max(s.info.End, d.time)
	if d.err != nil {
		s.info.Undecodable++
	}
	if err := s.advance(c); err != nil {
		s.err = err
		return d, c, nil
	}
	switch {
	case !c.ok:
		heap.Pop(&s.h)
	case len(s.h) > 1:
		heap.Fix(&s.h, 0)
	}
	return d, c, nil
}

// finish flushes the reassembler and totals the losses.
func (s *Stream) finish() {
	if s.done {
		return
	}
	s.done = true
	s.reasm.Flush()
	for _, c := range s.chains {
		for src := range formats.NumSources {
			if c.seen[src] {
				s.info.Lost[src] += c.last[src].Dropped
			}
		}
	}
}

// NextEvent returns the next event: proc events and procfs records as they
// come, audit records grouped into events by the reassembler, driven by
// capture time only. Messages that do not decode are counted in
// CaptureInfo.Undecodable and skipped. It returns io.EOF after the last
// event; after an error, every later call returns it again. The returned
// Event is the caller's; the strings of its audit records share memory as
// Next's do.
//
// On a Stream not yet read, NextEvent starts a goroutine that merges and
// reassembles ahead (see [Stream]); after Next, it does that work itself.
func (s *Stream) NextEvent() (Event, error) {
	if s.stopped {
		return Event{}, errClosed
	}
	switch s.mode {
	case modeUnset:
		s.mode = modeEvents
		s.rawless.Store(true)
		s.evInfo = s.info
		s.events = make(chan *evBatch, batchesAhead)
		s.evFree = make(chan *evBatch, batchesAhead+2)
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			s.merge()
		}()
	case modeMessages:
		return s.nextEvent()
	}
	for {
		if s.evErr != nil {
			return Event{}, s.evErr
		}
		if b := s.eb; b != nil {
			if s.ei < len(b.items) {
				it := &b.items[s.ei]
				s.ei++
				it.counts.apply(&s.evInfo, b.damage, b.logs)
				if it.err != nil {
					s.evErr = it.err
					return Event{}, it.err
				}
				return it.ev, nil
			}
			s.eb = nil
			clear(b.items) // drop the references to the events
			select {
			case s.evFree <- b:
			default:
			}
		}
		b, ok := <-s.events
		if !ok {
			s.evErr = errClosed // the merger gave up: Close was called
			continue
		}
		s.eb, s.ei = b, 0
	}
}

// eventBatchLen is how many events the merger sends at once.
const eventBatchLen = 128

// evBatch is what the merger sends: events, each with the counters of
// Info after it; the last may be an error (io.EOF at the end), after which
// it stops.
type evBatch struct {
	items []evItem
	// damage is Info's Damage after the batch's last event; an event's is
	// a prefix of it. The merger only appends to it: the elements of the
	// prefix are never written again.
	damage []formats.Damage
	logs   []LogStats // likewise, Info's Logs
}

type evItem struct {
	ev     Event
	counts infoCounts
	err    error
}

// infoCounts are the parts of CaptureInfo that change as a Stream is
// read: a copy per event holds no pointer, so it costs the garbage
// collector nothing.
type infoCounts struct {
	start, end      int64
	messages, lost  [formats.NumSources]uint64
	auditEvents     uint64
	auditGaps       uint64
	undecodable     uint64
	unreadableBytes int64
	damage, logs    int
}

func countsOf(i *CaptureInfo) infoCounts {
	return infoCounts{i.Start, i.End, i.Messages, i.Lost, i.AuditEvents, i.AuditGaps, i.Undecodable, i.UnreadableBytes, len(i.Damage), len(i.Logs)}
}

// apply sets the counters of i, and its Damage and Logs to the prefixes
// of damage and logs.
func (c *infoCounts) apply(i *CaptureInfo, damage []formats.Damage, logs []LogStats) {
	i.Start, i.End, i.Messages, i.Lost = c.start, c.end, c.messages, c.lost
	i.AuditEvents, i.AuditGaps, i.Undecodable, i.UnreadableBytes = c.auditEvents, c.auditGaps, c.undecodable, c.unreadableBytes
	i.Damage = nil
	if c.damage > 0 {
		i.Damage = damage[:c.damage:c.damage]
	}
	i.Logs = nil
	if c.logs > 0 {
		i.Logs = logs[:c.logs:c.logs]
	}
}

// merge is the merger goroutine of a Stream read with NextEvent: it runs
// nextEvent, which owns the chains, the reassembler and info from then
// on, and sends its results in batches on s.events until an error or the
// end, or until Close. The Info of each event travels with it, so that
// Info is what it would be without the merger.
func (s *Stream) merge() {
	defer close(s.events)
	b := &evBatch{items: make([]evItem, 0, eventBatchLen)}
	for {
		ev, err := s.nextEvent()
		// info's slices are only appended to, by this goroutine: the
		// copies' elements are never written again.
		b.items = append(b.items, evItem{ev: ev, counts: countsOf(&s.info), err: err})
		if err == nil && len(b.items) < eventBatchLen {
			continue
		}
		b.damage, b.logs = s.info.Damage, s.info.Logs
		select {
		case s.events <- b:
		case <-s.stop:
			return
		}
		if err != nil {
			return
		}
		select {
		case b = <-s.evFree:
			b.items, b.damage, b.logs = b.items[:0], nil, nil
		default:
			b = &evBatch{items: make([]evItem, 0, eventBatchLen)}
		}
	}
}

// nextEvent is NextEvent without the merger.
func (s *Stream) nextEvent() (Event, error) {
	for {
		if ev, ok := s.reasm.Pop(); ok {
			s.info.AuditEvents++
			s.info.AuditGaps = s.reasm.Lost()
			// A copy to the heap, made only here: were ev itself to escape,
			// every call of Pop would allocate, events or not.
			e := s.slabs.auditEvent()
			*e = ev
			return Event{Time: ev.Received, Source: formats.SourceAudit, Audit: e}, nil
		}
		if s.done {
			s.info.AuditGaps = s.reasm.Lost()
			return Event{}, io.EOF
		}
		d, c, err := s.take()
		if err == io.EOF {
			continue // finish flushed the reassembler
		}
		if err != nil {
			return Event{}, err
		}
		if d.err != nil {
			continue
		}
		switch d.source {
		case formats.SourceConnector:
			p := s.slabs.procEvent()
			*p = d.proc
			return Event{Time: d.time, Source: d.source, File: c.files[d.file].name, Offset: d.offset, Proc: p}, nil
		case formats.SourceProcfs:
			// Each procfs record is decoded into a new ProcRecord: the
			// caller may keep it.
			return Event{Time: d.time, Source: d.source, File: c.files[d.file].name, Offset: d.offset, ProcFS: d.procfs}, nil
		case formats.SourceAudit:
			s.reasm.Push(d.time, d.audit)
		}
	}
}

// slabs hand out the events NextEvent returns from arrays of slabLen, one
// allocation for many. Each event is the caller's; one kept for long
// keeps its slab.
type slabs struct {
	audit []AuditEvent
	proc  []ProcEvent
}

const slabLen = 64

func (sl *slabs) auditEvent() *AuditEvent { return fromSlab(&sl.audit) }
func (sl *slabs) procEvent() *ProcEvent   { return fromSlab(&sl.proc) }

// fromSlab takes the next element of *slab, a new slab of slabLen when it
// is used up.
func fromSlab[T any](slab *[]T) *T {
	if len(*slab) == 0 {
		*slab = make([]T, slabLen)
	}
	e := &(*slab)[0]
	*slab = (*slab)[1:]
	return e
}

// Info returns what is known of the captures so far; it is complete after
// io.EOF. Its slices are shared with the Stream.
func (s *Stream) Info() CaptureInfo {
	if s.mode == modeEvents {
		return s.evInfo
	}
	return s.info
}

// Close stops the Stream's goroutines and closes the open files. It waits
// for the goroutines to finish; later calls do nothing.
func (s *Stream) Close() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	close(s.stop)
	s.workers.Wait()
	return nil
}

type chainItem struct {
	c     *chain
	order int
}

// chainHeap orders chains by their current message's time, then by set
// order, so equal times replay deterministically.
type chainHeap []chainItem

func (h chainHeap) Len() int { return len(h) }
func (h chainHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.c.at.time != b.c.at.time {
		return a.c.at.time < b.c.at.time
	}
	return a.order < b.order
}
func (h chainHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *chainHeap) Push(x any)   { *h = append(*h, x.(chainItem)) }
func (h *chainHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
