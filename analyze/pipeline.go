package analyze

import "proctrail/replay"

// How far reading runs ahead of the builder: batchesAhead batches of
// eventBatchLen events.
const (
	eventBatchLen = 128
	batchesAhead  = 2
)

// parsedEvent is an event with its audit records parsed, when it has a
// syscall the builder applies.
type parsedEvent struct {
	ev replay.Event
	c  call
	ok bool // c holds ev's syscall
}

// eventBatch is what readEvents sends: events, and after the last batch's
// events the error that ended the source (io.EOF at its end).
type eventBatch struct {
	events []parsedEvent
	items  []pathItem // the calls' PATH items
	err    error
}

// readAhead reads s to its end or first error, which it returns, and
// calls apply on each event in order, its audit records parsed.
func readAhead(s EventSource, apply func(*parsedEvent)) error {
	raw := make(chan *eventBatch, batchesAhead)
	batches := make(chan *eventBatch, batchesAhead)
	free := make(chan *eventBatch, 2*batchesAhead+3)
	go readEvents(s, raw, free)
	go parseEvents(raw, batches)
	var err error
	for bt := range batches {
		for i := range bt.events {
			apply(&bt.events[i])
		}
		err = bt.err
		clear(bt.events) // drop the references to the events
		bt.events, bt.items = bt.events[:0], bt.items[:0]
		select {
		case free <- bt:
		default:
		}
	}
	return err
}

// readEvents runs on a goroutine of its own: it reads s to its end or
// first error, in batches, and closes out after the batch holding the
// error. parseEvents, on another, parses their audit events (the pure
// half of the work on them, most of its cost) while the builder applies
// the batches before, in order, so the result is the same as without
// them. (Reading and parsing on one goroutine made it the pipeline's
// slowest stage: analyze of the issue-4 workload took 84 ms, 78 ms now.)
func readEvents(s EventSource, out chan<- *eventBatch, free <-chan *eventBatch) {
	defer close(out)
	bt := &eventBatch{events: make([]parsedEvent, 0, eventBatchLen)}
	for {
		ev, err := s.NextEvent()
		if err != nil {
			bt.err = err
			out <- bt
			return
		}
		bt.events = append(bt.events, parsedEvent{ev: ev})
		if len(bt.events) == eventBatchLen {
			out <- bt
			select {
			case bt = <-free:
			default:
				bt = &eventBatch{events: make([]parsedEvent, 0, eventBatchLen)}
			}
		}
	}
}

// parseEvents parses the audit events of the batches from in, in order,
// and passes the batches on.
func parseEvents(in <-chan *eventBatch, out chan<- *eventBatch) {
	defer close(out)
	var ps parser
	for bt := range in {
		for i := range bt.events {
			if pe := &bt.events[i]; pe.ev.Audit != nil {
				pe.ok, bt.items = ps.parse(&pe.c, pe.ev.Audit, pe.ev.Time, bt.items)
			}
		}
		out <- bt
	}
}
