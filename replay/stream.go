package replay

import (
	"bufio"
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

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
}

// Options configure a Stream. A nil *Options means the defaults.
type Options struct {
	// Reassembler bounds the audit reassembler.
	Reassembler *ReassemblerOptions
	// Open opens a capture file; default os.Open. Tests substitute it.
	Open func(name string) (io.ReadCloser, error)
}

// chain is one capture set: its files in sequence order, read one after
// the other.
type chain struct {
	files []fileHead
	i     int
	f     io.ReadCloser
	r     recordReader
	cur   formats.Record
	ok    bool // cur holds a record
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
	Next() (formats.Record, error)
	FrameOffset() int64
	Stats(formats.Source) (formats.Stats, bool)
	Damage() []formats.Damage
	UnreadableBytes() int64
	Close() error
}

// Stream replays one or many capture files, or auditd text logs, as one
// ordered stream. Files of
// one rotated set (same capture id) are read in sequence order; separate
// sets are merged by capture time. Memory does not grow with the captures'
// length: one reader per set, and the reassembler's bounds.
//
// A Stream is not safe for concurrent use.
type Stream struct {
	open   func(string) (io.ReadCloser, error)
	chains []*chain
	h      chainHeap
	info   CaptureInfo
	reasm  *Reassembler
	msg    Message
	proc   ProcEvent
	audit  AuditRecord
	procfs formats.ProcRecord
	err    error
	done   bool // all chains drained; the reassembler flushed
}

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
	s := &Stream{open: o.Open, reasm: NewReassembler(o.Reassembler)}
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
	br := bufio.NewReader(f)
	if head, _ := br.Peek(5); IsLog(head) {
		return formats.Header{}, true, nil
	}
	r, err := formats.NewReader(br, &formats.ReaderOptions{Name: name})
	if err != nil {
		return formats.Header{}, false, fmt.Errorf("replay: %w", err)
	}
	defer r.Close()
	return r.Header(), false, nil
}

// advance moves c to its next record, opening its next file as needed.
func (s *Stream) advance(c *chain) error {
	for {
		if c.r == nil {
			if c.i >= len(c.files) {
				c.ok = false
				return nil
			}
			name := c.files[c.i].name
			f, err := s.open(name)
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			if c.files[c.i].log {
				c.f, c.r = f, NewLogReader(f, name)
			} else {
				r, err := formats.NewReader(f, &formats.ReaderOptions{Name: name})
				if err != nil {
					f.Close()
					return fmt.Errorf("replay: %w", err)
				}
				c.f, c.r = f, r
			}
		}
		rec, err := c.r.Next()
		if err == nil {
			c.cur, c.ok = rec, true
			return nil
		}
		if err != io.EOF {
			return fmt.Errorf("replay: %w", err)
		}
		for src := range formats.Source(formats.NumSources) {
			if st, ok := c.r.Stats(src); ok {
				c.last[src], c.seen[src] = st, true
			}
		}
		s.info.UnreadableBytes += c.r.UnreadableBytes()
		s.info.Damage = append(s.info.Damage, c.r.Damage()...)
		c.r.Close()
		c.f.Close()
		c.r, c.f = nil, nil
		c.i++
	}
}

// Next returns the next message in capture order, decoded. It returns
// io.EOF after the last one. A message that does not decode is returned
// with Err set. The returned Message and what it points to are
// overwritten by the next call.
func (s *Stream) Next() (*Message, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.h.Len() == 0 {
		s.finish()
		s.err = io.EOF
		return nil, io.EOF
	}
	it := s.h[0]
	c := it.c
	rec := c.cur
	m := &s.msg
	*m = Message{Time: rec.Time, Source: rec.Source, File: c.files[c.i].name, Offset: c.r.FrameOffset(), Raw: rec.Data}
	s.info.Messages[rec.Source]++
	if s.info.Start == 0 || rec.Time < s.info.Start {
		s.info.Start = rec.Time
	}
	s.info.End = max(s.info.End, rec.Time)
	var err error
	switch rec.Source {
	case formats.SourceConnector:
		if s.proc, err = DecodeProcEvent(rec.Data); err == nil {
			m.Proc = &s.proc
		}
	case formats.SourceAudit:
		if s.audit, err = DecodeAuditMessage(rec.Data); err == nil {
			m.Audit = &s.audit
		}
	case formats.SourceProcfs:
		if err = s.procfs.UnmarshalBinary(rec.Data); err == nil {
			m.ProcFS = &s.procfs
		}
	}
	if err != nil {
		m.Err = fmt.Errorf("%s: offset %d: %w", m.File, m.Offset, err)
		s.info.Undecodable++
	}
	// The record's data stays valid until this chain's reader moves on,
	// which happens on the next call: copy what the message keeps.
	m.Raw = append([]byte(nil), rec.Data...)
	if err := s.advance(c); err != nil {
		s.err = err
		return m, nil
	}
	if c.ok {
		heap.Fix(&s.h, 0)
	} else {
		heap.Pop(&s.h)
	}
	return m, nil
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
// event. The returned Event is the caller's.
func (s *Stream) NextEvent() (Event, error) {
	for {
		if ev, ok := s.reasm.Pop(); ok {
			s.info.AuditEvents++
			s.info.AuditGaps = s.reasm.Lost()
			return Event{Time: ev.Received, Source: formats.SourceAudit, Audit: &ev}, nil
		}
		if s.done {
			s.info.AuditGaps = s.reasm.Lost()
			return Event{}, io.EOF
		}
		m, err := s.Next()
		if err == io.EOF {
			continue // finish flushed the reassembler
		}
		if err != nil {
			return Event{}, err
		}
		if m.Err != nil {
			continue
		}
		switch {
		case m.Proc != nil:
			p := *m.Proc
			return Event{Time: m.Time, Source: m.Source, File: m.File, Offset: m.Offset, Proc: &p}, nil
		case m.ProcFS != nil:
			p := *m.ProcFS
			return Event{Time: m.Time, Source: m.Source, File: m.File, Offset: m.Offset, ProcFS: &p}, nil
		case m.Audit != nil:
			s.reasm.Push(m.Time, *m.Audit)
		}
	}
}

// Info returns what is known of the captures so far; it is complete after
// io.EOF. Its slices are shared with the Stream.
func (s *Stream) Info() CaptureInfo { return s.info }

// Close closes the open files.
func (s *Stream) Close() error {
	for _, c := range s.chains {
		if c.r != nil {
			c.r.Close()
			c.f.Close()
			c.r, c.f = nil, nil
		}
	}
	return nil
}

type chainItem struct {
	c     *chain
	order int
}

// chainHeap orders chains by their current record's time, then by set
// order, so equal times replay deterministically.
type chainHeap []chainItem

func (h chainHeap) Len() int { return len(h) }
func (h chainHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.c.cur.Time != b.c.cur.Time {
		return a.c.cur.Time < b.c.cur.Time
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
