package replay

import (
	"container/heap"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// LogGrouper follows an auditd log as it is written, record by record, and
// groups the records into events as ausearch and aureport group them when
// they read the log back (audit-userspace 3.x, src/ausearch-lol.c
// lol_add_record and check_events):
//   - a record joins the event being built that has its
//     audit(SEC.MS:SERIAL) header (and node);
//   - any other record starts an event, except an EOE, which they drop
//     ("standalone EOE"): the rest of its event is not in the log (it
//     began before the capture, or in the previous file of a rotated
//     set) or was already completed;
//   - when an event starts, the events being built complete if their
//     first record's second is end_of_event_timeout (2 s) or more before
//     the new event's, or if their first record is of a type that ends an
//     event (PROCTITLE, and the types libaudit's audit_is_last_record
//     takes for one-record events: endsEvent); a new event of such a type
//     is complete at once.
//
// This is not proctrail's own grouping ([Reassembler]), which completes
// an event at its EOE or PROCTITLE and after MaxAge of capture time; on
// every kernel's capture the two agree but in rare cases (see notes.md),
// and TestReplayAuditWithAuditdTools checks both against ausearch.
//
// At most maxLogBuilding events are built at once; beyond, the oldest
// completes (a hostile log; ausearch keeps them all). The zero value is
// ready to use; a LogGrouper is not safe for concurrent use.
type LogGrouper struct {
	building map[logKey]struct{}
	byTime   logHeap // the events being built, oldest first second first
	events   uint64
	dropped  uint64
}

// maxLogBuilding bounds the events a LogGrouper builds at once.
const maxLogBuilding = 1 << 16

// eoeTimeout is ausearch's end_of_event_timeout, in seconds (its default;
// `ausearch --eoe-timeout` changes it).
const eoeTimeout = 2

type logKey struct {
	node   string
	ms     int64
	serial uint64
}

type logItem struct {
	sec int64
	key logKey
}

type logHeap []logItem

func (h logHeap) Len() int           { return len(h) }
func (h logHeap) Less(i, j int) bool { return h[i].sec < h[j].sec }
func (h logHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *logHeap) Push(x any)        { *h = append(*h, x.(logItem)) }
func (h *logHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Add takes rec, the next record of the log, and reports whether it is
// written: false only for an EOE that ausearch would drop, which is then
// counted in [LogGrouper.DroppedEOE].
func (g *LogGrouper) Add(rec AuditRecord) bool {
	if g.building == nil {
		g.building = map[logKey]struct{}{}
	}
	ms := rec.Time.UnixMilli()
	k := logKey{rec.Node, ms, rec.Serial}
	if _, ok := g.building[k]; ok {
		return true
	}
	if rec.Type == auparse.AUDIT_EOE {
		g.dropped++
		return false
	}
	g.events++
	sec := rec.Time.Unix() // floor, as ausearch's strtoul of the seconds
	for len(g.byTime) > 0 && (g.byTime[0].sec+eoeTimeout <= sec || len(g.byTime) >= maxLogBuilding) {
		delete(g.building, heap.Pop(&g.byTime).(logItem).key)
	}
	if !endsEvent(rec.Type) {
		g.building[k] = struct{}{}
		heap.Push(&g.byTime, logItem{sec, k})
	}
	return true
}

// Events returns the events started so far: the events ausearch reads in
// the records added.
func (g *LogGrouper) Events() uint64 { return g.events }

// DroppedEOE returns the EOE records [LogGrouper.Add] reported as not
// written.
func (g *LogGrouper) DroppedEOE() uint64 { return g.dropped }

// endsEvent is libaudit's audit_is_last_record as in audit 3.0.9 (Debian
// 12's; lib/common.c), found by feeding each type to its ausearch: record
// types that end an event (PROCTITLE, EOE) or are one-record events
// (user-space and daemon records below 1300, KERNEL, the MAC_UNLBL and
// CALIPSO range 1406-1419, and user-space anomalies and responses from
// 2100). ausearch applies it to an event's first record. (audit 3.1
// no longer takes LOGIN for a one-record event: the kernel logs it with
// its syscall's records.)
func endsEvent(t auparse.AuditMessageType) bool {
	return t == auparse.AUDIT_PROCTITLE || t == auparse.AUDIT_EOE ||
		t < firstEvent || t == auparse.AUDIT_KERNEL ||
		(t >= auparse.AUDIT_MAC_UNLBL_ALLOW && t <= auparse.AUDIT_MAC_CALIPSO_DEL) ||
		t >= auparse.AUDIT_ANOM_LOGIN_FAILURES
}

// firstEvent is AUDIT_FIRST_EVENT, the first kernel record type.
const firstEvent = 1300
