package replay

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/google/go-cmp/cmp"
)

const ms = int64(time.Millisecond)

// arec is a hand-built record of serial s; its text names the type so
// diffs stay readable.
func arec(typ auparse.AuditMessageType, s uint64) AuditRecord {
	return AuditRecord{
		Type:   typ,
		Serial: s,
		Time:   time.Unix(1700000000, 0).UTC(),
		Text:   "audit(1700000000.000:" + strconv.FormatUint(s, 10) + "): " + typ.String(),
	}
}

func nodeRec(node string, typ auparse.AuditMessageType, s uint64) AuditRecord {
	r := arec(typ, s)
	r.Node = node
	return r
}

type push struct {
	now int64
	rec AuditRecord
}

// summary is an event reduced to what the tests compare.
type summary struct {
	Node     string
	Serial   uint64
	Types    []auparse.AuditMessageType
	Received int64
	Complete bool
	End      EventEnd
}

func summarize(ev AuditEvent) summary {
	s := summary{Node: ev.Node, Serial: ev.Serial, Received: ev.Received, Complete: ev.Complete, End: ev.End}
	for _, r := range ev.Records {
		s.Types = append(s.Types, r.Type)
	}
	return s
}

func popAll(r *Reassembler) []summary {
	var out []summary
	for {
		ev, ok := r.Pop()
		if !ok {
			return out
		}
		out = append(out, summarize(ev))
	}
}

const (
	SYSCALL    = auparse.AUDIT_SYSCALL
	EXECVE     = auparse.AUDIT_EXECVE
	CWD        = auparse.AUDIT_CWD
	PATH       = auparse.AUDIT_PATH
	PROCTITLE  = auparse.AUDIT_PROCTITLE
	EOE        = auparse.AUDIT_EOE
	AVC        = auparse.AUDIT_AVC
	LOGIN      = auparse.AUDIT_LOGIN
	USER_ACCT  = auparse.AUDIT_USER_ACCT
	ANOM_ABEND = auparse.AUDIT_ANOM_ABEND
	ANOM_LOGIN = auparse.AUDIT_ANOM_LOGIN_FAILURES
)

func types(t ...auparse.AuditMessageType) []auparse.AuditMessageType { return t }

func TestReassembler(t *testing.T) {
	tests := []struct {
		name string
		opts *ReassemblerOptions
		in   []push
		// want are the events popped after the pushes (before Flush),
		// wantFlush those popped after Flush.
		want, wantFlush []summary
		wantLost        uint64
	}{
		{
			name: "EOE completes",
			in: []push{
				{0, arec(SYSCALL, 10)}, {1, arec(CWD, 10)}, {2, arec(PATH, 10)}, {3, arec(EOE, 10)},
			},
			want: []summary{{Serial: 10, Types: types(SYSCALL, CWD, PATH), Complete: true, End: EndEOE}},
		},
		{
			name: "PROCTITLE completes and the EOE after it is dropped",
			in: []push{
				{0, arec(SYSCALL, 10)}, {0, arec(EXECVE, 10)}, {0, arec(PROCTITLE, 10)}, {0, arec(EOE, 10)},
			},
			want: []summary{{Serial: 10, Types: types(SYSCALL, EXECVE, PROCTITLE), Complete: true, End: EndProctitle}},
		},
		{
			name: "standalone types complete at once",
			in: []push{
				{0, arec(USER_ACCT, 10)}, {0, arec(LOGIN, 11)}, {0, arec(ANOM_LOGIN, 12)},
			},
			want: []summary{
				{Serial: 10, Types: types(USER_ACCT), Complete: true, End: EndStandalone},
				{Serial: 11, Types: types(LOGIN), Complete: true, End: EndStandalone},
				{Serial: 12, Types: types(ANOM_LOGIN), Complete: true, End: EndStandalone},
			},
		},
		{
			// Kernel records 1300-2099 wait for their end.
			name:      "AVC and ANOM_ABEND wait",
			in:        []push{{0, arec(AVC, 10)}, {0, arec(ANOM_ABEND, 11)}},
			wantFlush: []summary{{Serial: 10, Types: types(AVC), End: EndFlush}, {Serial: 11, Types: types(ANOM_ABEND), End: EndFlush}},
		},
		{
			// A standalone type inside an open syscall event (LOGIN from a
			// write to /proc/self/loginuid) joins it.
			name: "standalone type joins an open event",
			in:   []push{{0, arec(AVC, 10)}, {0, arec(LOGIN, 10)}, {0, arec(SYSCALL, 10)}, {0, arec(EOE, 10)}},
			want: []summary{{Serial: 10, Types: types(AVC, LOGIN, SYSCALL), Complete: true, End: EndEOE}},
		},
		{
			name: "interleaved serials complete in completion order",
			in: []push{
				{0, arec(SYSCALL, 10)}, {0, arec(SYSCALL, 11)}, {0, arec(CWD, 10)}, {0, arec(CWD, 11)},
				{0, arec(EOE, 11)}, {0, arec(PATH, 10)}, {0, arec(EOE, 10)},
			},
			want: []summary{
				{Serial: 11, Types: types(SYSCALL, CWD), Complete: true, End: EndEOE},
				{Serial: 10, Types: types(SYSCALL, CWD, PATH), Complete: true, End: EndEOE},
			},
		},
		{
			// The open event the previous record went to is indexed only
			// when another one takes a record: each step here finds its
			// event either way.
			name: "records going back and forth between three open events",
			in: []push{
				{0, arec(SYSCALL, 10)}, {0, arec(SYSCALL, 11)}, {0, arec(CWD, 10)}, {0, arec(SYSCALL, 12)},
				{0, arec(CWD, 11)}, {0, arec(EOE, 12)}, {0, arec(PATH, 10)}, {0, arec(EOE, 11)},
				{0, arec(PATH, 11)}, {0, arec(EOE, 10)},
			},
			want: []summary{
				{Serial: 12, Types: types(SYSCALL), Complete: true, End: EndEOE},
				{Serial: 11, Types: types(SYSCALL, CWD), Complete: true, End: EndEOE},
				{Serial: 10, Types: types(SYSCALL, CWD, PATH), Complete: true, End: EndEOE},
			},
			wantFlush: []summary{{Serial: 11, Types: types(PATH), End: EndFlush}},
		},
		{
			name: "timeout by capture time",
			in: []push{
				{0, arec(SYSCALL, 10)},
				{2000 * ms, arec(SYSCALL, 11)}, // exactly MaxAge: still open
				{2001 * ms, arec(CWD, 11)},     // 10 is older than MaxAge now
			},
			want:      []summary{{Serial: 10, Types: types(SYSCALL), End: EndTimeout}},
			wantFlush: []summary{{Serial: 11, Types: types(SYSCALL, CWD), Received: 2000 * ms, End: EndFlush}},
		},
		{
			name: "a record after its event timed out starts a new one",
			in: []push{
				{0, arec(SYSCALL, 10)}, {3000 * ms, arec(PATH, 10)}, {3000 * ms, arec(EOE, 10)},
			},
			want: []summary{
				{Serial: 10, Types: types(SYSCALL), End: EndTimeout},
				{Serial: 10, Types: types(PATH), Received: 3000 * ms, Complete: true, End: EndEOE},
			},
		},
		{
			name: "capture time going back is no time passing",
			in: []push{
				{5000 * ms, arec(SYSCALL, 10)}, {0, arec(SYSCALL, 11)}, {6500 * ms, arec(SYSCALL, 12)},
			},
			wantFlush: []summary{
				{Serial: 10, Types: types(SYSCALL), Received: 5000 * ms, End: EndFlush},
				{Serial: 11, Types: types(SYSCALL), Received: 5000 * ms, End: EndFlush},
				{Serial: 12, Types: types(SYSCALL), Received: 6500 * ms, End: EndFlush},
			},
		},
		{
			name: "eviction at MaxInFlight",
			opts: &ReassemblerOptions{MaxInFlight: 2},
			in: []push{
				{0, arec(SYSCALL, 10)}, {0, arec(SYSCALL, 11)}, {0, arec(SYSCALL, 12)}, {0, arec(EOE, 12)},
			},
			want: []summary{
				{Serial: 10, Types: types(SYSCALL), End: EndEvicted},
				{Serial: 12, Types: types(SYSCALL), Complete: true, End: EndEOE},
			},
			wantFlush: []summary{{Serial: 11, Types: types(SYSCALL), End: EndFlush}},
		},
		{
			name: "MaxRecords",
			opts: &ReassemblerOptions{MaxRecords: 3},
			in: []push{
				{0, arec(SYSCALL, 10)}, {0, arec(EXECVE, 10)}, {0, arec(EXECVE, 10)}, {0, arec(PATH, 10)}, {0, arec(PROCTITLE, 10)},
			},
			want: []summary{
				{Serial: 10, Types: types(SYSCALL, EXECVE, EXECVE), End: EndOversize},
				{Serial: 10, Types: types(PATH, PROCTITLE), Complete: true, End: EndProctitle},
			},
		},
		{
			name: "nodes keep their serials apart",
			in: []push{
				{0, nodeRec("a", SYSCALL, 10)}, {0, nodeRec("b", SYSCALL, 10)},
				{0, nodeRec("b", EOE, 10)}, {0, nodeRec("a", PATH, 10)}, {0, nodeRec("a", EOE, 10)},
				{0, nodeRec("b", USER_ACCT, 11)}, {0, nodeRec("a", USER_ACCT, 13)},
			},
			want: []summary{
				{Node: "b", Serial: 10, Types: types(SYSCALL), Complete: true, End: EndEOE},
				{Node: "a", Serial: 10, Types: types(SYSCALL, PATH), Complete: true, End: EndEOE},
				{Node: "b", Serial: 11, Types: types(USER_ACCT), Complete: true, End: EndStandalone},
				{Node: "a", Serial: 13, Types: types(USER_ACCT), Complete: true, End: EndStandalone},
			},
			wantLost: 2, // a: 11, 12
		},
		{
			name: "EOE alone is dropped",
			in:   []push{{0, arec(EOE, 10)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReassembler(tt.opts)
			for _, p := range tt.in {
				r.Push(p.now, p.rec)
			}
			if diff := cmp.Diff(tt.want, popAll(r)); diff != "" {
				t.Errorf("events before Flush mismatch (-want +got):\n%s", diff)
			}
			r.Flush()
			if diff := cmp.Diff(tt.wantFlush, popAll(r)); diff != "" {
				t.Errorf("events after Flush mismatch (-want +got):\n%s", diff)
			}
			if got := r.Lost(); got != tt.wantLost {
				t.Errorf("Lost() = %d, want %d", got, tt.wantLost)
			}
			if n := r.InFlight(); n != 0 {
				t.Errorf("InFlight() after Flush = %d", n)
			}
		})
	}
}

// serials pushes standalone records of the given serials, 1 ms apart, and
// returns Lost before and after Flush.
func lostFor(opts *ReassemblerOptions, serials ...uint64) (before, after uint64) {
	r := NewReassembler(opts)
	for i, s := range serials {
		r.Push(int64(i)*ms, arec(USER_ACCT, s))
	}
	before = r.Lost()
	r.Flush()
	return before, r.Lost()
}

func TestReassemblerLost(t *testing.T) {
	const max32 = 1<<32 - 1
	tests := []struct {
		name                  string
		opts                  *ReassemblerOptions
		serials               []uint64
		wantBefore, wantAfter uint64
	}{
		{"no gap", nil, []uint64{1, 2, 3, 3, 4}, 0, 0},
		{"gap counted at Flush", nil, []uint64{1, 2, 5}, 0, 2},
		{"late serials fill their gap", nil, []uint64{1, 4, 2, 6, 3, 5}, 0, 0},
		{"late serial splits a gap", nil, []uint64{1, 10, 5}, 0, 7},
		{"wrap", nil, []uint64{max32 - 1, max32, 0, 1, 2}, 0, 0},
		{"gap across a wrap", nil, []uint64{max32 - 1, 2}, 0, 3}, // max32, 0, 1
		{"late across a wrap", nil, []uint64{max32 - 1, 1, max32, 0}, 0, 0},
		{"restart to a lower serial", nil, []uint64{900000, 900001, 5, 6, 8}, 0, 1},
		{"pending gaps counted at a restart", nil, []uint64{900000, 900003, 5}, 2, 2},
		{"huge forward jump is a restart", nil, []uint64{10, 10 + 1<<25, 11 + 1<<25}, 0, 0},
		{"jump within MaxGap is loss", &ReassemblerOptions{MaxGap: 100}, []uint64{10, 110}, 0, 99},
		{"jump beyond MaxGap is a restart", &ReassemblerOptions{MaxGap: 100}, []uint64{10, 111}, 0, 0},
		{"gaps falling behind MaxReorder", &ReassemblerOptions{MaxReorder: 10}, []uint64{100, 120, 121}, 10, 19},
		{"late beyond MaxReorder is a restart", &ReassemblerOptions{MaxReorder: 10}, []uint64{100, 120, 105, 106}, 19, 19},
		{"gap ranges bounded by MaxInFlight", &ReassemblerOptions{MaxInFlight: 2}, []uint64{1, 3, 5, 7, 9}, 2, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, after := lostFor(tt.opts, tt.serials...)
			if diff := cmp.Diff([]uint64{tt.wantBefore, tt.wantAfter}, []uint64{before, after}); diff != "" {
				t.Errorf("Lost before and after Flush mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A gap missing longer than MaxAge of capture time is counted without
// waiting for Flush; a record arriving after that does not undo it.
func TestReassemblerLostByAge(t *testing.T) {
	r := NewReassembler(nil)
	r.Push(0, arec(USER_ACCT, 1))
	r.Push(0, arec(USER_ACCT, 4))
	r.Push(2000*ms, arec(USER_ACCT, 5))
	if got := r.Lost(); got != 0 {
		t.Fatalf("Lost() at MaxAge = %d, want 0", got)
	}
	r.Push(2001*ms, arec(USER_ACCT, 6))
	if got := r.Lost(); got != 2 {
		t.Fatalf("Lost() after MaxAge = %d, want 2", got)
	}
	r.Push(2002*ms, arec(USER_ACCT, 2))
	r.Flush()
	if got := r.Lost(); got != 2 {
		t.Fatalf("Lost() at the end = %d, want 2", got)
	}
}

// The same pushes give the same events, whatever else happens.
func TestReassemblerDeterministic(t *testing.T) {
	kinds := []auparse.AuditMessageType{SYSCALL, EXECVE, CWD, PATH, PROCTITLE, EOE, AVC, USER_ACCT, LOGIN}
	rng := rand.New(rand.NewPCG(1, 2))
	var in []push
	var now int64
	serial := uint64(1000)
	for range 5000 {
		now += rng.Int64N(50 * ms)
		s := serial + uint64(rng.IntN(8))
		if rng.IntN(4) == 0 {
			serial++
		}
		node := ""
		if rng.IntN(10) == 0 {
			node = "other"
		}
		in = append(in, push{now, nodeRec(node, kinds[rng.IntN(len(kinds))], s)})
	}
	run := func() ([]summary, uint64) {
		r := NewReassembler(&ReassemblerOptions{MaxInFlight: 16})
		var out []summary
		for _, p := range in {
			r.Push(p.now, p.rec)
			out = append(out, popAll(r)...)
			if r.InFlight() > 16 {
				t.Fatalf("InFlight() = %d > MaxInFlight", r.InFlight())
			}
		}
		r.Flush()
		return append(out, popAll(r)...), r.Lost()
	}
	first, lost1 := run()
	second, lost2 := run()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second run differs (-first +second):\n%s", diff)
	}
	if lost1 != lost2 {
		t.Errorf("Lost differs: %d then %d", lost1, lost2)
	}
	var records int
	for _, s := range first {
		records += len(s.Types)
	}
	var eoes int
	for _, p := range in {
		if p.rec.Type == EOE {
			eoes++
		}
	}
	if records != len(in)-eoes {
		t.Errorf("%d records out, want %d (all but EOEs)", records, len(in)-eoes)
	}
}

func TestEventEndString(t *testing.T) {
	got := []string{EndEOE.String(), EndFlush.String(), EventEnd(0).String(), EventEnd(99).String()}
	want := []string{"eoe", "flush", "end(0)", "end(99)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("String mismatch (-want +got):\n%s", diff)
	}
}

// TestReassemblerRecords checks the records events carry when they share
// slabs: events interleave, grow past a slab and past a quarter of one,
// and some records are pushed without being kept. Each kept record must
// come out once, in its event, in push order; what a caller appends to
// an event's records, and the events popped after it, must leave it as
// it was popped.
func TestReassemblerRecords(t *testing.T) {
	kinds := []auparse.AuditMessageType{SYSCALL, EXECVE, CWD, PATH, AVC}
	rng := rand.New(rand.NewPCG(3, 4))
	r := NewReassembler(&ReassemblerOptions{MaxInFlight: 8, MaxRecords: 150})
	type popped struct {
		recs  []AuditRecord
		texts []string
	}
	var out []popped
	seen := map[string]int{} // text → pops
	kept := 0
	take := func() {
		for {
			ev, ok := r.Pop()
			if !ok {
				return
			}
			p := popped{recs: ev.Records}
			for i, rec := range ev.Records {
				p.texts = append(p.texts, rec.Text)
				seen[rec.Text]++
				if rec.Serial != ev.Serial {
					t.Fatalf("serial %d's event holds a record of %d", ev.Serial, rec.Serial)
				}
				if i > 0 {
					a, _ := strconv.Atoi(rec.Text[strings.LastIndexByte(rec.Text, ' ')+1:])
					b, _ := strconv.Atoi(ev.Records[i-1].Text[strings.LastIndexByte(ev.Records[i-1].Text, ' ')+1:])
					if a <= b {
						t.Fatalf("serial %d's records out of push order: %q after %q", ev.Serial, rec.Text, ev.Records[i-1].Text)
					}
				}
			}
			_ = append(ev.Records, arec(LOGIN, 1)) // the caller's to append to
			out = append(out, p)
		}
	}
	var now int64
	for i := range 20000 {
		now += ms
		s := uint64(1000 + i/100 + rng.IntN(3)) // about 100 records an event, 3 open at once
		if rng.IntN(8) == 0 {
			s = uint64(1000 + rng.IntN(i/100+1)) // now and then one already gone
		}
		rec := arec(kinds[rng.IntN(len(kinds))], s)
		rec.Text += " " + strconv.Itoa(i)
		keep := rng.IntN(5) != 0
		if keep {
			kept++
		}
		r.push(now, &rec, keep)
		take()
	}
	r.Flush()
	take()
	if len(seen) != kept {
		t.Errorf("%d records came out, %d were kept", len(seen), kept)
	}
	for text, n := range seen {
		if n != 1 {
			t.Fatalf("%q came out %d times", text, n)
		}
	}
	var big int
	for _, p := range out {
		if len(p.recs) > recsLen/4 {
			big++
		}
		for i, rec := range p.recs {
			if rec.Text != p.texts[i] {
				t.Fatalf("a popped event's record %d changed: %q, popped as %q", i, rec.Text, p.texts[i])
			}
		}
	}
	if big == 0 || len(out) < 100 {
		t.Fatalf("%d events, %d of more than %d records: the test needs both many and large ones", len(out), big, recsLen/4)
	}
}
