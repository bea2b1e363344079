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
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"

	"proctrail/formats"
	"proctrail/internal/pipe"
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

// NetlinkType returns the nlmsg_type of the netlink header Raw begins
// with: of an audit message, its record type (an auparse.AuditMessageType)
// or a netlink control type (NLMSG_ERROR …); of a connector message,
// NLMSG_DONE. It is there when the message did not decode too, which is
// when a caller needs it: to tell a control message or a reply from a
// record lost. Raw holds it when it has the header's first 6 bytes
// (nlmsg_len, nlmsg_type), even if the rest of the header is cut off. ok
// is false when it does not, for a procfs record, which is not a netlink
// message, and for a Message without Raw.
func (m *Message) NetlinkType() (typ uint16, ok bool) {
	if m.Source != formats.SourceAudit && m.Source != formats.SourceConnector {
		return 0, false
	}
	return nlType(m.Raw)
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
	// AuditTexts, when set, names the audit record types the events of
	// NextEvent carry: a record of another type groups and ends events as
	// before, but is left out of its event's Records, which may then be
	// empty. A reader of events that looks at few types (the analyzer) so
	// spares the copy of every other text out of its frame, and of every
	// other record into its event: PROCTITLE alone is a fifth of the text
	// of make bench's workload, and a third of its records. Next's
	// messages are not affected. It is called on the readers' goroutines
	// and the merger's, so concurrently.
	AuditTexts func(auparse.AuditMessageType) bool
}

// Stream replays one or many capture files, or auditd text logs, as one
// ordered stream. Files of one rotated set (same capture id) are read in
// sequence order; separate sets are merged by capture time.
//
// The work runs ahead of the caller on other goroutines, so that a second
// core does part of it: each set is read, decompressed and decoded by a
// goroutine of its own, and a Stream read with NextEvent merges the sets
// and reassembles audit events on one more, each ahead of the next through
// a [pipe.Pipe] (a few batches of messages or events). The order of the
// stream, and so everything computed from it, does not depend on how the
// goroutines are scheduled. Memory does not grow with the captures'
// length: one reader and a few batches per set, and the reassembler's
// bounds.
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
	texts  func(auparse.AuditMessageType) bool // Options.AuditTexts
	msg    Message
	proc   ProcEvent
	audit  AuditRecord
	err    error
	done   bool // all chains drained; the reassembler flushed
	slabs  slabs

	mode   int                 // how the Stream is read: modeUnset, modeMessages or modeEvents
	events *pipe.Pipe[evBatch] // modeEvents: from the merger
	eb     *evBatch            // the batch being consumed
	ei     int                 // its next item
	evInfo CaptureInfo         // modeEvents: the Info of the last event returned
	evErr  error               // modeEvents: the error returned last, returned again

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
	s := &Stream{open: o.Open, reasm: NewReassembler(o.Reassembler), stop: make(chan struct{}), texts: o.AuditTexts}
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
		c.pipe = pipe.New(s.stop, newBatch, (*batch).reset)
		s.workers.Go(func() { c.read(s.open, &s.rawless, s.texts) })
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

// FileHeader is a file a Stream reads: its name, its section header, and
// whether it is an auditd log (which has none: Header is zero).
type FileHeader struct {
	Name   string
	Header formats.Header
	Log    bool
}

// Files returns the files of s in replay order (the sets in the order
// they are merged, each set's files in sequence order), with their
// headers. The slice is the caller's.
func (s *Stream) Files() []FileHeader {
	var fs []FileHeader
	for _, c := range s.chains {
		for _, f := range c.files {
			fs = append(fs, FileHeader{f.name, f.hdr, f.log})
		}
	}
	return fs
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
		s.proc = *d.proc
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
