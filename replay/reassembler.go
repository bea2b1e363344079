package replay

import (
	"fmt"
	"sort"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// EventEnd says why an AuditEvent was completed.
type EventEnd uint8

// The reasons an event completes. The first three are marked by the audit
// stream itself (AuditEvent.Complete is true); the others are the
// reassembler giving up.
const (
	EndEOE        EventEnd = iota + 1 // its EOE record arrived
	EndProctitle                      // its PROCTITLE record arrived, the last before EOE
	EndStandalone                     // a record type that is an event by itself
	EndTimeout                        // open longer than MaxAge of capture time
	EndEvicted                        // the oldest open event when more than MaxInFlight were open
	EndOversize                       // it reached MaxRecords records
	EndFlush                          // still open at Flush
)

var eventEndNames = [...]string{
	EndEOE:        "eoe",
	EndProctitle:  "proctitle",
	EndStandalone: "standalone",
	EndTimeout:    "timeout",
	EndEvicted:    "evicted",
	EndOversize:   "oversize",
	EndFlush:      "flush",
}

// String returns the reason's lowercase name.
func (e EventEnd) String() string {
	if int(e) < len(eventEndNames) && eventEndNames[e] != "" {
		return eventEndNames[e]
	}
	return fmt.Sprintf("end(%d)", uint8(e))
}

// AuditEvent is one audit event: the records that share a serial (and a
// node, for logs gathered from several hosts), in arrival order, without
// the EOE record.
type AuditEvent struct {
	Serial uint64
	Node   string
	// Time is the audit header time of the first record.
	Time time.Time
	// Received is the capture time of the first record, nanoseconds since
	// the Unix epoch, as given to [Reassembler.Push].
	Received int64
	// Records are the event's records in arrival order; never empty, but
	// for a Stream's events with Options.AuditTexts. The slice belongs to
	// the caller once popped.
	Records []AuditRecord
	// Complete is true when the audit stream marked the end of the event
	// (End is EndEOE, EndProctitle or EndStandalone), false when the
	// reassembler completed it on a bound; such an event may lack records.
	Complete bool
	End      EventEnd
}

// Default bounds of a Reassembler.
const (
	DefaultMaxInFlight = 1000
	DefaultMaxAge      = 2 * time.Second
	DefaultMaxRecords  = 2048
	DefaultMaxReorder  = 1 << 16
	DefaultMaxGap      = 1<<24 - 1
)

// ReassemblerOptions are the bounds of a Reassembler. A nil
// *ReassemblerOptions, and zero fields, mean the defaults.
type ReassemblerOptions struct {
	// MaxInFlight bounds the open events: when one more opens, the oldest
	// completes (EndEvicted). It also bounds the serial gaps waiting to be
	// filled. Default DefaultMaxInFlight (1000), go-libaudit's usual
	// setting.
	MaxInFlight int
	// MaxAge is how long, in capture time, an event stays open waiting for
	// its end: an event whose first record was received more than MaxAge
	// before the latest push completes (EndTimeout), and a serial missing
	// for longer is counted lost. Default DefaultMaxAge (2 s).
	MaxAge time.Duration
	// MaxRecords bounds one event's records: the record that reaches it
	// completes the event (EndOversize) and later records of that serial
	// start a new one. It bounds memory together with MaxInFlight. A
	// 2 MiB argv makes about 600 EXECVE records. Default
	// DefaultMaxRecords (2048).
	MaxRecords int
	// MaxReorder is how far back, in serials, a record may arrive behind the
	// highest serial seen and still count as late. A serial farther back is
	// taken as a restart of the kernel's counter (a reboot between two
	// logs): losses pending are counted and tracking starts again there.
	// Default DefaultMaxReorder (65536).
	MaxReorder uint32
	// MaxGap is the largest forward jump of serials counted as loss; a
	// larger jump is taken as a restart, not as billions of lost events
	// (go-libaudit's maxSortRange, 2^24-1, plays this role). Default
	// DefaultMaxGap.
	MaxGap uint32
}

// maxNodes bounds the nodes whose serials are tracked for gaps; records of
// further nodes are reassembled but not counted for losses.
const maxNodes = 256

// Reassembler groups audit records into events by serial, driven only by
// the capture times it is given: the same pushes give the same pops,
// whatever the machine or the wall clock. (go-libaudit's Reassembler
// expires events with time.Now and emits them in serial order, so its
// output depends on when it runs.)
//
// An event completes, in this order of precedence, when
//   - its EOE record arrives (the record is not kept);
//   - its PROCTITLE record arrives: the kernel logs it last, right before
//     EOE (kernel/auditsc.c audit_log_exit), and auditd logs often lack EOE;
//   - it begins with a record type that stands alone: types up to 1299
//     (AUDIT_LAST_DAEMON: user-space and daemon records, LOGIN, …) and
//     from 2100 (AUDIT_ANOM_LOGIN_FAILURES: user-space anomalies and
//     responses). These are go-libaudit's rules (reassembler.go,
//     event.Add); kernel records 1300-2099 (SYSCALL…, AVC, ANOM_ABEND…)
//     wait for their end or a bound;
//   - it has been open more than MaxAge of capture time (EndTimeout), the
//     open event count exceeds MaxInFlight (the oldest is evicted), or it
//     reaches MaxRecords.
//
// Serial gaps are counted as losses, as go-libaudit does: a missing serial
// counts once it has been missing for MaxAge, falls more than MaxReorder
// behind, or at Flush; a late record fills its gap instead. The kernel's
// serial is 32 bits: gaps are computed modulo 2^32, so a wrap counts no
// loss, and jumps back beyond MaxReorder or forward beyond MaxGap are
// restarts, not losses. An EOE whose event is not open (already completed,
// or timed out) is dropped.
//
// Memory is bounded by MaxInFlight events of MaxRecords records plus the
// completed events not yet popped: call Pop until it reports false after
// each Push. A Reassembler is not safe for concurrent use.
type Reassembler struct {
	opts ReassemblerOptions

	now int64 // latest capture time pushed, never decreasing
	// queue holds the open events in the order they opened, from qhead
	// on; an event completed out of order stays in it, marked closed,
	// until it reaches the front (so completing one costs no search).
	queue []*openEvent
	qhead int
	nopen int // open events in queue
	// index holds every open event but last, unless it was last when
	// another opened or took a record (see setLast): the records of one
	// event mostly come one after the other, and an event that opens
	// and completes as last costs no map operation.
	index map[eventKey]*openEvent
	last  *openEvent    // the open event of the previous record, if any
	free  []*openEvent  // closed events off the queue, for reuse
	recs  []AuditRecord // the slab records are carved from (addRecord)
	tail  *openEvent    // the open event whose records end recs, if any
	done  []AuditEvent  // completed, not yet popped
	head  int           // done[head:] are still to pop

	gaps    map[string]*gapTracker // by node
	lastGap *gapTracker            // of the previous record's node
	lastGN  string
	lost    uint64
}

type eventKey struct {
	node   string
	serial uint64
}

type openEvent struct {
	key     eventKey
	ev      AuditEvent
	n       int // records pushed, kept or not
	closed  bool
	indexed bool // in Reassembler.index
}

// recsLen is the length of the slabs events' records are carved from:
// one allocation for many events, each taking exactly the slots it
// fills (see addRecord).
const recsLen = 256

// NewReassembler returns a Reassembler with the bounds of opts (nil for
// the defaults).
func NewReassembler(opts *ReassemblerOptions) *Reassembler {
	var o ReassemblerOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.MaxReorder == 0 {
		o.MaxReorder = DefaultMaxReorder
	}
	if o.MaxGap == 0 {
		o.MaxGap = DefaultMaxGap
	}
	return &Reassembler{
		opts:  o,
		index: map[eventKey]*openEvent{},
		gaps:  map[string]*gapTracker{},
	}
}

// Push adds a record received at capture time now (nanoseconds since the
// Unix epoch). A now earlier than a previous one is taken as no time
// passing. Push may complete events; Pop returns them.
func (r *Reassembler) Push(now int64, rec AuditRecord) { r.push(now, &rec, true) }

// push is Push of *rec, which it copies once, into its event: the Stream
// passes the record where its reader decoded it. A record not kept groups
// and ends its event as any other, but is left out of its Records: the
// Stream's AuditTexts leave out the records a reader does not look at.
func (r *Reassembler) push(now int64, rec *AuditRecord, keep bool) {
	if now > r.now {
		r.now = now
	}
	r.trackSerial(rec)
	r.expire()

	key := eventKey{rec.Node, rec.Serial}
	// Records of one event mostly come one after the other.
	oe := r.last
	if oe == nil || oe.closed || oe.key != key {
		oe = nil
		if len(r.index) > 0 {
			oe = r.index[key]
		}
	}
	if rec.Type == auparse.AUDIT_EOE {
		if oe != nil {
			r.complete(oe, EndEOE)
		}
		return
	}
	if oe == nil {
		oe = r.openEvent(key, rec)
	}
	r.setLast(oe)
	if keep {
		r.addRecord(oe, rec)
	}
	oe.n++
	switch {
	case rec.Type == auparse.AUDIT_PROCTITLE:
		r.complete(oe, EndProctitle)
	case oe.n == 1 && standalone(rec.Type):
		r.complete(oe, EndStandalone)
	case oe.n >= r.opts.MaxRecords:
		r.complete(oe, EndOversize)
	}
	for r.nopen > r.opts.MaxInFlight {
		r.complete(r.front(), EndEvicted)
	}
}

// openEvent opens the event of key, whose first record is rec.
func (r *Reassembler) openEvent(key eventKey, rec *AuditRecord) *openEvent {
	var oe *openEvent
	if n := len(r.free); n > 0 {
		oe, r.free = r.free[n-1], r.free[:n-1]
	} else {
		oe = new(openEvent)
	}
	*oe = openEvent{key: key, ev: AuditEvent{
		Serial:   rec.Serial,
		Node:     rec.Node,
		Time:     rec.Time,
		Received: r.now,
	}}
	r.queue = append(r.queue, oe)
	r.nopen++
	return oe
}

// addRecord appends *rec to oe's records. Records are carved from a
// shared slab, recs, filled from its start: the event that took the
// slots just before the slab's free room (tail) grows in place, and
// records come mostly one event after the other, so an event takes
// exactly the slots of its records. An event whose records lie elsewhere
// moves them to the free room, or to the heap when they would take more
// than a quarter of a slab. An event's slice ends at its own last slot
// (its capacity is its length), so that what its caller appends never
// reaches another's.
func (r *Reassembler) addRecord(oe *openEvent, rec *AuditRecord) {
	recs := oe.ev.Records
	n := len(recs)
	if oe == r.tail && len(r.recs) < cap(r.recs) {
		// recs ends where r.recs does: grow both by one slot.
		r.recs = append(r.recs, *rec)
		oe.ev.Records = r.recs[len(r.recs)-n-1 : len(r.recs) : len(r.recs)]
		return
	}
	if n+1 > recsLen/4 {
		oe.ev.Records = append(recs, *rec)
		if oe == r.tail {
			r.tail = nil
		}
		return
	}
	if cap(r.recs)-len(r.recs) < n+1 {
		r.recs = make([]AuditRecord, 0, recsLen)
	}
	r.recs = append(r.recs, recs...)
	r.recs = append(r.recs, *rec)
	oe.ev.Records = r.recs[len(r.recs)-n-1 : len(r.recs) : len(r.recs)]
	r.tail = oe
}

// setLast makes oe the last event, first putting the one before in the
// index if it is still open and not there yet.
func (r *Reassembler) setLast(oe *openEvent) {
	if l := r.last; l != nil && l != oe && !l.closed && !l.indexed {
		r.index[l.key] = l
		l.indexed = true
	}
	r.last = oe
}

// front returns the oldest open event, dropping the closed ones before it
// from the queue; nil when none is open.
func (r *Reassembler) front() *openEvent {
	for r.qhead < len(r.queue) {
		oe := r.queue[r.qhead]
		if !oe.closed {
			return oe
		}
		r.queue[r.qhead] = nil
		r.qhead++
		r.free = append(r.free, oe)
	}
	// Empty: start the queue over, keeping its array.
	r.queue, r.qhead = r.queue[:0], 0
	return nil
}

// standalone reports whether a record of type t is an event by itself,
// with no EOE to follow (go-libaudit reassembler.go, event.Add).
func standalone(t auparse.AuditMessageType) bool {
	return t <= auparse.AUDIT_LAST_DAEMON || t >= auparse.AUDIT_ANOM_LOGIN_FAILURES
}

// Pop returns the oldest completed event not yet popped, and false when
// there is none. Events come in the order they completed.
func (r *Reassembler) Pop() (ev AuditEvent, ok bool) {
	if ok = r.ready(); ok {
		r.popTo(&ev)
	}
	return ev, ok
}

// ready reports whether a completed event waits to be popped.
func (r *Reassembler) ready() bool { return r.head < len(r.done) }

// popTo is Pop into *dst, when ready: the Stream moves the event straight
// into the slab it hands out, where copying it through a value returned
// (88 bytes, written and read back at once) stalled on the stores.
func (r *Reassembler) popTo(dst *AuditEvent) {
	*dst = r.done[r.head]
	r.done[r.head] = AuditEvent{}
	r.head++
	if r.head == len(r.done) {
		r.done, r.head = r.done[:0], 0
	}
}

// Flush completes every open event, oldest first (EndFlush), and counts
// every pending serial gap as lost: the end of the stream. The Reassembler
// may be used again afterwards.
func (r *Reassembler) Flush() {
	for oe := r.front(); oe != nil; oe = r.front() {
		r.complete(oe, EndFlush)
	}
	for _, g := range r.gaps {
		r.lost += g.commitAll()
	}
}

// Lost returns the number of serials found missing so far: events the
// kernel numbered but the stream does not hold (dropped by the kernel's
// backlog or rate limit, or by the capture).
func (r *Reassembler) Lost() uint64 { return r.lost }

// InFlight returns the number of open events.
func (r *Reassembler) InFlight() int { return r.nopen }

func (r *Reassembler) complete(oe *openEvent, end EventEnd) {
	if oe.indexed {
		delete(r.index, oe.key)
		oe.indexed = false
	}
	if oe == r.tail {
		r.tail = nil
	}
	oe.ev.End = end
	oe.ev.Complete = end == EndEOE || end == EndProctitle || end == EndStandalone
	r.done = append(r.done, oe.ev)
	oe.ev = AuditEvent{} // the records are the caller's now
	oe.closed = true
	r.nopen--
	// Keep the queue from growing behind a long-open event: compact
	// when closed events make up most of it.
	if q := len(r.queue) - r.qhead; q > 1024 && r.nopen < q/4 {
		n := 0
		for _, e := range r.queue[r.qhead:] {
			if e.closed {
				r.free = append(r.free, e)
			} else {
				r.queue[n] = e
				n++
			}
		}
		clear(r.queue[n:])
		r.queue, r.qhead = r.queue[:n], 0
	}
}

// expire completes events and counts gaps older than MaxAge.
func (r *Reassembler) expire() {
	limit := r.now - int64(r.opts.MaxAge)
	if limit > r.now { // overflow for now near math.MinInt64
		limit = r.now
	}
	for oe := r.front(); oe != nil; oe = r.front() {
		if oe.ev.Received >= limit {
			break
		}
		r.complete(oe, EndTimeout)
	}
	if len(r.gaps) == 1 {
		r.lost += r.lastGap.commitBefore(limit) // the usual single node
		return
	}
	for _, g := range r.gaps {
		r.lost += g.commitBefore(limit)
	}
}

func (r *Reassembler) trackSerial(rec *AuditRecord) {
	g := r.lastGap
	if g == nil || r.lastGN != rec.Node {
		g = r.gaps[rec.Node]
		if g == nil {
			if len(r.gaps) >= maxNodes {
				return
			}
			g = &gapTracker{maxRanges: r.opts.MaxInFlight}
			r.gaps[rec.Node] = g
		}
		r.lastGap, r.lastGN = g, rec.Node
	}
	r.lost += g.see(uint32(rec.Serial), r.now, r.opts.MaxReorder, r.opts.MaxGap)
}

// gapTracker follows one node's serials. Serials are unwrapped into a
// 64-bit count (hi) so gaps across a wrap are plain ranges.
type gapTracker struct {
	started   bool
	last      uint32     // highest serial seen, as the kernel numbers it
	hi        uint64     // last, unwrapped
	pending   []gapRange // missing serials, ascending, oldest first
	maxRanges int
}

// gapRange is the missing serials lo..hi (unwrapped), missing since a
// capture time.
type gapRange struct {
	lo, hi uint64
	since  int64
}

// see records serial s seen at capture time now and returns the losses it
// makes certain.
func (g *gapTracker) see(s uint32, now int64, maxReorder, maxGap uint32) (lost uint64) {
	if !g.started {
		g.started, g.last, g.hi = true, s, uint64(s)
		return 0
	}
	fwd := s - g.last // modulo 2^32
	switch {
	case fwd == 0:
		return 0
	case fwd <= maxGap && fwd < 1<<31:
		if fwd > 1 {
			g.pending = append(g.pending, gapRange{lo: g.hi + 1, hi: g.hi + uint64(fwd) - 1, since: now})
		}
		g.last, g.hi = s, g.hi+uint64(fwd)
		// Gaps too far behind can no longer be filled by a late record.
		if g.hi > uint64(maxReorder) {
			lost += g.commitBelow(g.hi - uint64(maxReorder))
		}
		for len(g.pending) > g.maxRanges {
			lost += g.pending[0].size()
			g.pending = g.pending[1:]
		}
		return lost
	}
	back := g.last - s // modulo 2^32
	if fwd >= 1<<31 && back <= maxReorder {
		g.fill(g.hi - uint64(back)) // wraps harmlessly below the first serial: no range holds it
		return 0
	}
	// A restart: the counter began again elsewhere.
	lost = g.commitAll()
	g.last, g.hi = s, uint64(s)
	return lost
}

func (r gapRange) size() uint64 { return r.hi - r.lo + 1 }

// fill removes serial u from the pending gaps: it arrived late.
func (g *gapTracker) fill(u uint64) {
	i := sort.Search(len(g.pending), func(i int) bool { return g.pending[i].hi >= u })
	if i == len(g.pending) || g.pending[i].lo > u {
		return
	}
	p := g.pending[i]
	switch {
	case p.lo == p.hi:
		g.pending = append(g.pending[:i], g.pending[i+1:]...)
	case u == p.lo:
		g.pending[i].lo++
	case u == p.hi:
		g.pending[i].hi--
	default: // split in two
		right := gapRange{lo: u + 1, hi: p.hi, since: p.since}
		g.pending[i].hi = u - 1
		g.pending = append(g.pending, gapRange{})
		copy(g.pending[i+2:], g.pending[i+1:])
		g.pending[i+1] = right
	}
}

// commitBefore counts as lost the gaps missing since before limit.
func (g *gapTracker) commitBefore(limit int64) (lost uint64) {
	n := 0
	for n < len(g.pending) && g.pending[n].since < limit {
		lost += g.pending[n].size()
		n++
	}
	g.pending = g.pending[n:]
	return lost
}

// commitBelow counts as lost the gap serials below u.
func (g *gapTracker) commitBelow(u uint64) (lost uint64) {
	n := 0
	for n < len(g.pending) && g.pending[n].lo < u {
		p := &g.pending[n]
		if p.hi >= u {
			lost += u - p.lo
			p.lo = u
			break
		}
		lost += p.size()
		n++
	}
	g.pending = g.pending[n:]
	return lost
}

func (g *gapTracker) commitAll() (lost uint64) {
	for _, p := range g.pending {
		lost += p.size()
	}
	g.pending = g.pending[:0]
	return lost
}
