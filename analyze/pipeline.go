package analyze

import (
	"sync"

	"proctrail/internal/pipe"
	"proctrail/replay"
)

// parsedEvent is an event with its audit records parsed, when it has a
// syscall the builder applies.
type parsedEvent struct {
	ev replay.Event
	c  call
	ok bool // c holds ev's syscall
}

// eventBatch is a batch of events on their way to the builder, and
// after the last batch's events the error that ended the source (io.EOF
// at its end).
type eventBatch struct {
	events []parsedEvent
	items  []pathItem // the calls' PATH items
	err    error
}

func newEventBatch() *eventBatch { return &eventBatch{events: make([]parsedEvent, 0, pipe.Len)} }

func (bt *eventBatch) reset() {
	clear(bt.events) // drop the references to the events
	bt.events, bt.items, bt.err = bt.events[:0], bt.items[:0], nil
}

// readAhead reads s to its end or first error, which it returns, and
// calls apply on each event in order, its audit records parsed.
//
// Reading and parsing run on a goroutine of their own, a pipe.Len of
// events ahead, while the builder applies the events before: parsing is
// pure (the parser holds a cache, no state of the analysis), so the
// result is the same as without it. The replay's readers and merger run
// ahead of it on theirs.
func readAhead(s EventSource, apply func(*parsedEvent)) error {
	events := pipe.New(nil, newEventBatch, (*eventBatch).reset)
	var wg sync.WaitGroup
	wg.Go(func() { readEvents(s, events) })
	// s is not safe for concurrent use: the caller may use it when
	// readAhead returns.
	defer wg.Wait()
	var err error
	for {
		bt, ok := events.Take()
		if !ok {
			return err
		}
		for i := range bt.events {
			apply(&bt.events[i])
		}
		err = bt.err
	}
}

// readEvents reads s to its end or first error and sends its events on
// out, their audit records parsed, and the error after the last.
func readEvents(s EventSource, out *pipe.Pipe[eventBatch]) {
	defer out.Close()
	var ps parser
	bt := out.Batch()
	for {
		ev, err := s.NextEvent()
		if err != nil {
			bt.err = err
			out.Send(bt)
			return
		}
		bt.events = append(bt.events, parsedEvent{ev: ev})
		if pe := &bt.events[len(bt.events)-1]; ev.Audit != nil {
			pe.ok, bt.items = ps.parse(&pe.c, ev.Audit, ev.Time, bt.items)
		}
		if len(bt.events) == pipe.Len {
			if !out.Send(bt) {
				return
			}
			bt = out.Batch()
		}
	}
}
