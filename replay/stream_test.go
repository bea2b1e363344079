package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"proctrail/formats"
)

// writeFile writes a capture holding procfs records of the given pids at
// the given times.
func writeFile(t *testing.T, dir, name string, hdr formats.Header, times []int64, lost uint64) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := formats.NewWriter(&buf, &formats.Options{Header: hdr})
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range times {
		rec := formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: int32(ts % 100000)}
		b, _ := rec.AppendBinary(nil)
		if err := w.WritePacket(formats.SourceProcfs, ts, b); err != nil {
			t.Fatal(err)
		}
	}
	w.SetStats(formats.SourceAudit, formats.Stats{Time: 1, Received: 10, Dropped: lost})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStreamOrdersSetsAndMergesCaptures(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	setA := formats.Header{CaptureID: "a", Start: t0, Hostname: "h1"}
	setB := formats.Header{CaptureID: "b", Start: t0.Add(time.Second), Hostname: "h1"}
	a0, a1 := setA, setA
	a1.Sequence = 1
	// Set a: two rotated files; set b overlaps it in time.
	fa1 := writeFile(t, dir, "a.1.zst", a1, []int64{300, 400}, 5)
	fa0 := writeFile(t, dir, "a.zst", a0, []int64{100, 200}, 2)
	fb := writeFile(t, dir, "b.zst", setB, []int64{150, 350}, 1)

	s, err := Open([]string{fb, fa1, fa0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	forEach(t, s.Next, func(m *Message) {
		if m.Err != nil || m.ProcFS == nil {
			t.Fatalf("message %+v did not decode", m)
		}
		got = append(got, fmt.Sprintf("%d %s", m.Time, filepath.Base(m.File)))
	})
	want := []string{"100 a.zst", "150 b.zst", "200 a.zst", "300 a.1.zst", "350 b.zst", "400 a.1.zst"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	info := s.Info()
	if diff := cmp.Diff([]string{fa0, fa1, fb}, info.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	// Losses: the last statistics of each set, summed over sets.
	if info.Lost[formats.SourceAudit] != 5+1 {
		t.Errorf("audit lost %d, want 6", info.Lost[formats.SourceAudit])
	}
	if info.Start != 100 || info.End != 400 || info.Messages[formats.SourceProcfs] != 6 {
		t.Errorf("info %+v", info)
	}
}

func TestStreamReportsDamageAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "t.zst", formats.Header{CaptureID: "x"}, []int64{1, 2, 3}, 0)
	b, _ := os.ReadFile(p)
	// Cut the file inside its last frame.
	if err := os.WriteFile(p, b[:len(b)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	forEach(t, s.NextEvent, func(Event) {})
	if info := s.Info(); info.UnreadableBytes == 0 || len(info.Damage) != 1 {
		t.Errorf("damage not reported: %+v", info)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not a capture at all, no frames here"), 0o600)
	for _, files := range [][]string{nil, {filepath.Join(dir, "missing.zst")}, {junk}} {
		if s, err := Open(files, nil); err == nil || s != nil {
			t.Errorf("Open(%q) = %v, %v; want an error", files, s, err)
		}
	}
}

// checkSharedDecode fails when decodeAuditShared and DecodeAuditMessage
// disagree on msg: the same record (but for the cached body), the same
// fields, or the same error.
func checkSharedDecode(t *testing.T, msg []byte) {
	t.Helper()
	want, werr := DecodeAuditMessage(msg)
	var got AuditRecord
	gerr := decodeAuditShared(&got, bytes.Clone(msg), nil)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("decodeAuditShared(%q) error %v, DecodeAuditMessage %v", msg, gerr, werr)
	}
	if diff := cmp.Diff(want, got, ignoreBody); diff != "" {
		t.Fatalf("decodeAuditShared(%q) (-DecodeAuditMessage +decodeAuditShared):\n%s", msg, diff)
	}
	// With a header cache: first one that held another header, then the
	// same cache again, which now holds msg's header if it was parsed.
	hc := headerCache{n: 7, b: [40]byte{'(', '1', '.', '2', ':', '3', ')'}, serial: 3, time: time.Unix(1, 2e6).UTC()}
	for i := range 2 {
		var r AuditRecord
		err := decodeAuditShared(&r, bytes.Clone(msg), &hc)
		if (err == nil) != (gerr == nil) || (err != nil && err.Error() != gerr.Error()) {
			t.Fatalf("decodeAuditShared(%q) with a header cache (%d): error %v, without %v", msg, i, err, gerr)
		}
		if !reflect.DeepEqual(r, got) {
			t.Fatalf("decodeAuditShared(%q) with a header cache (%d): %+v, without %+v", msg, i, r, got)
		}
	}
	// Into a record that held another one (the reader's batches are
	// reused), every field is written again.
	stale := AuditRecord{Type: 1, Serial: 2, Time: time.Unix(3, 0), Node: "stale", Text: "old", body: &recordBody{}}
	if err := decodeAuditShared(&stale, bytes.Clone(msg), nil); (err == nil) != (gerr == nil) {
		t.Fatalf("decodeAuditShared(%q) over a used record: error %v, over a zero one %v", msg, err, gerr)
	}
	if gerr == nil && !reflect.DeepEqual(stale, got) {
		t.Fatalf("decodeAuditShared(%q) over a used record: %+v, want %+v", msg, stale, got)
	}
	if werr != nil {
		return
	}
	wf, werr := want.Fields()
	gf, gerr := got.Fields()
	if diff := cmp.Diff(wf, gf); diff != "" || (werr == nil) != (gerr == nil) {
		t.Fatalf("Fields of %q differ (%v, %v) (-DecodeAuditMessage +decodeAuditShared):\n%s", msg, werr, gerr, diff)
	}
}

var sharedDecodeSeeds = [][]byte{
	auditMsg(uint16(auparse.AUDIT_SYSCALL), textSyscall, false),
	auditMsg(uint16(auparse.AUDIT_SYSCALL), textSyscall+"\x00\x00", true),
	auditMsg(uint16(auparse.AUDIT_EOE), textEOE, true),
	auditMsg(uint16(auparse.AUDIT_PATH), "  "+textPath+" \n\x00", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(+1.-5:7)", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1.5:4294967296): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1795729552.269:4294967295): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(99999999999999999999.1:1): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1:5.7): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(999999999999999999.999999999999999999:4294967295): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1000000000000000000.1:1): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1.1000000000000000000:1): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1.1:00000000001): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(.1:1): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1.:1): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1.1:): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1.1:1 ): x=1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "audit(1.1:1", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "x(1(2.3:4)", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "no header", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "\u00a0audit(1.2:3)\u0085", false),
	auditMsg(uint16(auparse.AUDIT_GET), "\x01\x02", false),
	auditMsg(nlmsgError, "\xfe\xff\xff\xff", false),
	auditMsg(uint16(auparse.AUDIT_CWD), "", false)[:10],
	append(auditMsg(uint16(auparse.AUDIT_CWD), "audit(1.2:3)", false)[:4], 0xff, 0xff),
}

func TestDecodeAuditSharedMatches(t *testing.T) {
	for _, msg := range sharedDecodeSeeds {
		checkSharedDecode(t, msg)
	}
	big := make([]byte, 4)
	binary.LittleEndian.PutUint32(big, 1<<31)
	checkSharedDecode(t, append(big, auditMsg(uint16(auparse.AUDIT_CWD), "audit(1.2:3)", false)[4:]...))
}

func FuzzDecodeAuditShared(f *testing.F) {
	for _, msg := range sharedDecodeSeeds {
		f.Add(msg)
	}
	f.Fuzz(checkSharedDecode)
}

// writeMixed writes a capture of n audit events (some never ended, some
// records undecodable), connector and procfs messages, frames of a few
// messages each, and returns its path.
func writeMixed(t *testing.T, dir, name string, hdr formats.Header, t0 int64, n int) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := formats.NewWriter(&buf, &formats.Options{Header: hdr, FrameSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ts := t0 + int64(i)*int64(time.Millisecond)
		serial := 1000 + i
		text := fmt.Sprintf("audit(1700000000.%03d:%d): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c items=1 ppid=1 pid=%d comm=\"x\" exe=\"/x\"", i%1000, serial, 100+i%7)
		w.WritePacket(formats.SourceAudit, ts, auditMsg(uint16(auparse.AUDIT_SYSCALL), text, i%2 == 0))
		if i%5 != 0 { // every fifth event never ends
			w.WritePacket(formats.SourceAudit, ts+1, auditMsg(uint16(auparse.AUDIT_EOE), fmt.Sprintf("audit(1700000000.%03d:%d): ", i%1000, serial), false))
		}
		switch i % 4 {
		case 0:
			w.WritePacket(formats.SourceConnector, ts+2, procMsg(procEventExec, 0, uint64(ts), uint32(100+i%7), uint32(100+i%7)))
		case 1:
			rec := formats.ProcRecord{Kind: formats.ReasonExec, PID: int32(100 + i%7), Comm: "x"}
			b, _ := rec.AppendBinary(nil)
			w.WritePacket(formats.SourceProcfs, ts+2, b)
		case 2:
			w.WritePacket(formats.SourceAudit, ts+2, []byte("junk"))
		}
	}
	w.SetStats(formats.SourceAudit, formats.Stats{Time: 1, Received: uint64(n), Dropped: 3})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNextEventMerger checks that NextEvent gives the same events, and
// Info after each, with the merger goroutine as without it, on merged
// sets, rotated files and a damaged one, at any GOMAXPROCS.
func TestNextEventMerger(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a0 := formats.Header{CaptureID: "a", Start: t0}
	a1 := a0
	a1.Sequence = 1
	b := formats.Header{CaptureID: "b", Start: t0.Add(time.Millisecond)}
	files := []string{
		writeMixed(t, dir, "a.zst", a0, t0.UnixNano(), 900),
		writeMixed(t, dir, "a.1.zst", a1, t0.UnixNano()+int64(900*time.Millisecond), 700),
		writeMixed(t, dir, "b.zst", b, t0.UnixNano()+int64(500*time.Microsecond), 1500),
	}
	raw, _ := os.ReadFile(files[2])
	os.WriteFile(files[2], raw[:len(raw)*2/3], 0o600) // a truncated tail

	type step struct {
		Ev   string
		Info CaptureInfo
	}
	read := func(inline bool) []step {
		s, err := Open(files, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if inline {
			s.mode = modeMessages // NextEvent after Next: no merger
		}
		var steps []step
		for {
			ev, err := s.NextEvent()
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			desc := fmt.Sprintf("%d %v %q %d", ev.Time, ev.Source, ev.File, ev.Offset)
			switch {
			case ev.Audit != nil:
				desc += fmt.Sprintf(" audit %d %d records %v", ev.Audit.Serial, len(ev.Audit.Records), ev.Audit.End)
			case ev.Proc != nil:
				desc += fmt.Sprintf(" proc %v %d", ev.Proc.Kind, ev.Proc.PID)
			case ev.ProcFS != nil:
				desc += fmt.Sprintf(" procfs %d", ev.ProcFS.PID)
			}
			steps = append(steps, step{desc, s.Info()})
			if err == io.EOF {
				return steps
			}
		}
	}
	want := read(true)
	if len(want) < 2000 || want[len(want)-1].Info.UnreadableBytes == 0 || want[len(want)-1].Info.Undecodable == 0 {
		t.Fatalf("the capture lacks what the test needs: %d events, %+v", len(want), want[len(want)-1].Info)
	}
	for _, procs := range []int{1, 4} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			errText := cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) && (a == nil || a.Error() == b.Error()) })
			if diff := cmp.Diff(want, read(false), errText); diff != "" {
				t.Errorf("events with the merger (-without +with):\n%s", diff)
			}
		})
	}
}

// TestNextThenNextEvent checks the documented rule: a Stream is read with
// one of Next and NextEvent.
func TestNextThenNextEvent(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "t.zst", formats.Header{CaptureID: "x"}, []int64{1, 2, 3}, 0)
	s, err := Open([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextEvent(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); err == nil {
		t.Error("Next after NextEvent did not fail")
	}
	s.Close()
	if _, err := s.NextEvent(); err == nil {
		t.Error("NextEvent after Close did not fail")
	}
	// Closing a stream in the middle stops its goroutines (the race
	// detector and goleak-style checks would see them otherwise).
	s2, err := Open([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	s2.Close()
}

// TestAuditReplyTypesBound guards decodeAuditShared's shortcut: every
// reply type is at most AUDIT_GET_FEATURE.
func TestAuditReplyTypesBound(t *testing.T) {
	for typ := range auditReplyTypes {
		if typ > auparse.AUDIT_GET_FEATURE {
			t.Errorf("reply type %v is above AUDIT_GET_FEATURE: decodeAuditShared would take it for a record", typ)
		}
	}
}

// forEach calls f on what next gives, in turn, until io.EOF; any other
// error fails t. What next gives may be valid only until its next call.
func forEach[T any](t testing.TB, next func() (T, error), f func(T)) {
	t.Helper()
	for {
		v, err := next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		f(v)
	}
}

// TestAuditTexts checks Options.AuditTexts: the events are those of a
// Stream without it, Info after each too, without the records of other
// types, whether the readers or the merger left their text out.
func TestAuditTexts(t *testing.T) {
	var buf bytes.Buffer
	w, err := formats.NewWriter(&buf, &formats.Options{Header: formats.Header{CaptureID: "x"}, FrameSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 600 {
		ts := int64(i+1) * int64(time.Millisecond)
		head := fmt.Sprintf("audit(1700000000.%03d:%d): ", i%1000, 500+i)
		w.WritePacket(formats.SourceAudit, ts, auditMsg(uint16(auparse.AUDIT_SYSCALL), head+fmt.Sprintf("arch=c000003e syscall=257 success=yes exit=3 items=1 ppid=1 pid=%d comm=\"x\" exe=\"/x\"", 100+i%7), false))
		w.WritePacket(formats.SourceAudit, ts, auditMsg(uint16(auparse.AUDIT_PATH), head+fmt.Sprintf("item=0 name=\"/f%d\" nametype=NORMAL", i), false))
		switch i % 3 {
		case 0: // ended by its PROCTITLE
			w.WritePacket(formats.SourceAudit, ts, auditMsg(uint16(auparse.AUDIT_PROCTITLE), head+"proctitle=2F78", i%2 == 0))
		case 1:
			w.WritePacket(formats.SourceAudit, ts, auditMsg(uint16(auparse.AUDIT_PROCTITLE), head+"proctitle=2F79", false))
			w.WritePacket(formats.SourceAudit, ts, auditMsg(uint16(auparse.AUDIT_EOE), head, false))
		case 2: // a standalone record of a type not kept
			w.WritePacket(formats.SourceAudit, ts, auditMsg(uint16(auparse.AUDIT_EOE), head, false))
			w.WritePacket(formats.SourceAudit, ts+1, auditMsg(uint16(auparse.AUDIT_CONFIG_CHANGE), fmt.Sprintf("audit(1700000000.%03d:%d): op=x res=1", i%1000, 100000+i), false))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "t.zst")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	keep := func(t auparse.AuditMessageType) bool { return t == auparse.AUDIT_SYSCALL || t == auparse.AUDIT_PATH }
	type step struct {
		Ev      Event
		Records []AuditRecord
		Info    CaptureInfo
	}
	read := func(texts func(auparse.AuditMessageType) bool, inline bool) []step {
		s, err := Open([]string{p}, &Options{AuditTexts: texts})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if inline {
			s.mode = modeMessages // NextEvent after Next: no merger, texts kept by the readers
		}
		var steps []step
		forEach(t, s.NextEvent, func(ev Event) {
			st := step{Ev: ev, Info: s.Info()}
			if ev.Audit != nil {
				st.Records = ev.Audit.Records
				st.Ev.Audit = nil
			}
			steps = append(steps, st)
		})
		return steps
	}
	all := read(nil, false)
	want := make([]step, len(all))
	var kept, left, empty int
	for i, st := range all {
		want[i] = st
		want[i].Records = nil
		for _, r := range st.Records {
			if r.Text == "" {
				t.Fatalf("a %v record without text, even without AuditTexts", r.Type)
			}
			if keep(r.Type) {
				want[i].Records = append(want[i].Records, r)
				kept++
			} else {
				left++
			}
		}
		if st.Records != nil && want[i].Records == nil {
			empty++
		}
	}
	if len(all) != 800 || kept != 1200 || left != 600 || empty != 200 {
		t.Fatalf("the capture lacks what the test needs: %d events, %d records kept, %d left out, %d events left empty", len(all), kept, left, empty)
	}
	for _, inline := range []bool{false, true} {
		if diff := cmp.Diff(want, read(keep, inline), cmpopts.IgnoreUnexported(AuditRecord{}), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("inline %v: events with AuditTexts (-want +got):\n%s", inline, diff)
		}
	}
}
