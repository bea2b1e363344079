package replay

import (
	"io"

	"proctrail/formats"
	"proctrail/internal/pipe"
)

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
		s.events = pipe.New(s.stop, newEvBatch, (*evBatch).reset)
		s.workers.Go(s.merge)
	case modeMessages:
		return s.nextEvent()
	}
	for {
		if s.evErr != nil {
			return Event{}, s.evErr
		}
		if b := s.eb; b != nil && s.ei < len(b.items) {
			it := &b.items[s.ei]
			s.ei++
			it.counts.apply(&s.evInfo, b.damage, b.logs)
			if it.err != nil {
				s.evErr = it.err
				return Event{}, it.err
			}
			return it.ev, nil
		}
		b, ok := s.events.Take()
		if !ok {
			s.evErr = errClosed // the merger gave up: Close was called
			continue
		}
		s.eb, s.ei = b, 0
	}
}

// evBatch is what the merger sends: up to pipe.Len events, each with the
// counters of Info after it; the last may be an error (io.EOF at the end),
// after which it stops.
type evBatch struct {
	items []evItem
	// damage is Info's Damage after the batch's last event; an event's is
	// a prefix of it. The merger only appends to it: the elements of the
	// prefix are never written again.
	damage []formats.Damage
	logs   []LogStats // likewise, Info's Logs
}

func newEvBatch() *evBatch { return &evBatch{items: make([]evItem, 0, pipe.Len)} }

// reset empties b and drops its references to the events and to Info's
// slices.
func (b *evBatch) reset() {
	clear(b.items)
	b.items, b.damage, b.logs = b.items[:0], nil, nil
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
	defer s.events.Close()
	b := s.events.Batch()
	for {
		ev, err := s.nextEvent()
		// info's slices are only appended to, by this goroutine: the
		// copies' elements are never written again.
		b.items = append(b.items, evItem{ev: ev, counts: countsOf(&s.info), err: err})
		if err == nil && len(b.items) < pipe.Len {
			continue
		}
		b.damage, b.logs = s.info.Damage, s.info.Logs
		if !s.events.Send(b) || err != nil {
			return
		}
		b = s.events.Batch()
	}
}

// nextEvent is NextEvent without the merger.
func (s *Stream) nextEvent() (Event, error) {
	for {
		if s.reasm.ready() {
			s.info.AuditEvents++
			s.info.AuditGaps = s.reasm.Lost()
			// Moved to the heap, into a slab, only here: were a popped
			// event to escape, every Pop would allocate, events or not.
			e := s.slabs.auditEvent()
			s.reasm.popTo(e)
			return Event{Time: e.Received, Source: formats.SourceAudit, Audit: e}, nil
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
			// The reader decoded it into a slab of its own: the
			// caller may keep it.
			return Event{Time: d.time, Source: d.source, File: c.files[d.file].name, Offset: d.offset, Proc: d.proc}, nil
		case formats.SourceProcfs:
			// Each procfs record is decoded into a new ProcRecord: the
			// caller may keep it.
			return Event{Time: d.time, Source: d.source, File: c.files[d.file].name, Offset: d.offset, ProcFS: d.procfs}, nil
		case formats.SourceAudit:
			s.reasm.push(d.time, &d.audit, d.kept)
		}
	}
}

// slabs hand out the events NextEvent returns from arrays of slabLen, one
// allocation for many. Each event is the caller's; one kept for long
// keeps its slab.
type slabs struct {
	audit []AuditEvent
}

const slabLen = 64

func (sl *slabs) auditEvent() *AuditEvent { return fromSlab(&sl.audit) }

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
