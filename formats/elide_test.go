package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// auditMsg builds an audit message as the kernel's multicast sends it:
// nlmsghdr (nlmsg_len the whole message, flags, seq and pid 0) and the
// text "audit(1700000000.SEC:SERIAL): " + body.
func auditMsg(typ uint16, serial int, body string) []byte {
	text := fmt.Sprintf("audit(1700000000.%03d:%d): %s", serial%1000, serial, body)
	b := binary.LittleEndian.AppendUint32(nil, uint32(16+len(text)))
	b = binary.LittleEndian.AppendUint16(b, typ)
	b = append(b, make([]byte, 10)...)
	return append(b, text...)
}

const (
	typPath      = 1302
	typCwd       = 1307
	typProctitle = 1327
)

func syscallMsg(serial, pid int, exe string) []byte {
	return auditMsg(auditSyscall, serial, fmt.Sprintf("arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c items=1 ppid=1 pid=%d comm=\"x\" exe=\"%s\" key=(null)", pid, exe))
}

// openEvent is the records of one open(2) of path by a process of exe.
func openEvent(serial int, exe, path string) []Record {
	t := int64(1_700_000_000_000_000_000) + int64(serial)*1e6
	var recs []Record
	for _, m := range [][]byte{
		syscallMsg(serial, 100, exe),
		auditMsg(typCwd, serial, `cwd="/home"`),
		auditMsg(typPath, serial, `item=0 name="`+path+`" inode=5`),
		auditMsg(typProctitle, serial, "proctitle=6361740061"),
		auditMsg(auditEOE, serial, ""),
	} {
		recs = append(recs, Record{Source: SourceAudit, Time: t, Data: m})
	}
	return recs
}

// writeRecs writes recs with opts, calling between(i) before record i
// when set, and returns the file and the Writer.
func writeRecs(t testing.TB, recs []Record, opts *Options, between func(w *Writer, i int)) ([]byte, *Writer) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if between != nil {
			between(w, i)
		}
		if err := w.WritePacket(r.Source, r.Time, r.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w
}

// checkRoundTrip reads b back and compares it with recs; it returns the
// Reader.
func checkRoundTrip(t testing.TB, b []byte, recs []Record) *Reader {
	t.Helper()
	r, got, err := readAll(t, b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range max(len(recs), len(got)) {
		if i >= len(recs) || i >= len(got) {
			t.Errorf("read %d records, want %d", len(got), len(recs))
			break
		}
		if w, g := recs[i], got[i]; w.Source != g.Source || w.Time != g.Time || !bytes.Equal(w.Data, g.Data) {
			t.Errorf("record %d: %s %d %q, want %s %d %q", i, g.Source, g.Time, g.Data, w.Source, w.Time, w.Data)
			break
		}
	}
	if d := r.Damage(); len(d) != 0 {
		t.Errorf("damage: %v", d)
	}
	return r
}

// TestElision writes audit events that can and cannot be predicted and
// checks how many messages are elided and that the reader restores every
// message exactly, in order.
func TestElision(t *testing.T) {
	two := append(openEvent(1, "/bin/cat", "/etc/a"), openEvent(2, "/bin/cat", "/etc/a")...)
	mod := func(recs []Record, i int, f func(m []byte) []byte) []Record {
		out := append([]Record(nil), recs...)
		out[i].Data = f(bytes.Clone(out[i].Data))
		return out
	}
	conn := Record{Source: SourceConnector, Time: two[0].Time, Data: []byte("fork")}
	for _, tc := range []struct {
		name    string
		recs    []Record
		opts    *Options
		between func(w *Writer, i int)
		elided  uint64
	}{
		// The first event's EOE; the second's CWD, PATH, PROCTITLE, EOE.
		{name: "repeated event", recs: two, elided: 5},
		{name: "no elision", recs: two, opts: &Options{NoElide: true}, elided: 0},
		{name: "exact times", recs: two, opts: &Options{ExactTimes: true}, elided: 5},
		{name: "another exe", recs: append(openEvent(1, "/bin/cat", "/etc/a"), openEvent(2, "/bin/dog", "/etc/a")...), elided: 2},
		// The changed record is written; the ones after it are elided on
		// its marker (a PATH's from the CWD's, and so on).
		{name: "path changed", recs: append(openEvent(1, "/bin/cat", "/etc/a"), openEvent(2, "/bin/cat", "/etc/b")...), elided: 1 + 3},
		{name: "proctitle changed", recs: mod(two, 8, func(m []byte) []byte { return grow(m, 'x') }), elided: 1 + 3},
		{name: "trailing NUL on a repeat", recs: mod(two, 7, func(m []byte) []byte { return grow(m, 0) }), elided: 1 + 3},
		{name: "trailing NUL on EOE", recs: mod(two, 4, func(m []byte) []byte { return grow(m, 0) }), elided: 0 + 4},
		// A message whose nlmsg_len follows neither convention.
		{name: "odd nlmsg_len", recs: mod(two, 9, func(m []byte) []byte { return append(m, 0) }), elided: 1 + 3},
		{name: "other nlmsg seq", recs: mod(two, 9, func(m []byte) []byte { m[8] = 7; return m }), elided: 1 + 3},
		// A CWD with other flags (pid) is written, and the PATH after
		// it, whose header the CWD's does not predict, too.
		{name: "other nlmsg flags", recs: mod(two, 6, func(m []byte) []byte { m[6] = 1; return m }), elided: 1 + 2},
		{name: "other nlmsg pid", recs: mod(two, 6, func(m []byte) []byte { m[12] = 7; return m }), elided: 1 + 2},
		// A SYSCALL without exe= has no key: its records no slots.
		{name: "syscall without exe", recs: mod(two, 5, func([]byte) []byte {
			return auditMsg(auditSyscall, 2, "arch=c000003e syscall=257 success=yes exit=3 pid=100")
		}), elided: 1 + 1},
		{name: "interleaved events", recs: []Record{two[0], two[5], two[1], two[6], two[4], two[9]}, elided: 0},
		// Only what follows an audit packet directly is elided.
		{name: "connector between", recs: append(append(append([]Record(nil), two[:6]...), conn), two[6:]...), elided: 1 + 3},
		{name: "frame boundary", recs: two, between: func(w *Writer, i int) {
			if i == 4 || i == 6 {
				w.Flush()
			}
		}, elided: 1},
		{name: "background frames", recs: two, opts: &Options{Background: true}, between: func(w *Writer, i int) {
			if i == 5 {
				w.Flush()
			}
		}, elided: 1 + 1},
		{name: "uncorrected nlmsg_len", recs: func() []Record {
			out := append([]Record(nil), two...)
			for i := range out {
				out[i].Data = bytes.Clone(out[i].Data)
				binary.LittleEndian.PutUint32(out[i].Data, uint32(len(out[i].Data)-16))
			}
			return out
		}(), elided: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, w := writeRecs(t, tc.recs, tc.opts, tc.between)
			if w.Elided() != tc.elided {
				t.Errorf("Elided() = %d, want %d", w.Elided(), tc.elided)
			}
			if w.Packets(SourceAudit)+w.Packets(SourceConnector) != uint64(len(tc.recs)) {
				t.Errorf("Packets() = %d, want %d", w.Packets(SourceAudit), len(tc.recs))
			}
			r := checkRoundTrip(t, b, tc.recs)
			if r.Restored() != tc.elided {
				t.Errorf("Restored() = %d, want %d", r.Restored(), tc.elided)
			}
		})
	}
	t.Run("other receipt ms", func(t *testing.T) {
		recs := append([]Record(nil), two...)
		recs[9].Time += 1e6
		b, w := writeRecs(t, recs, nil, nil)
		if w.Elided() != 4 {
			t.Errorf("Elided() = %d, want 4 (not the EOE received a ms later)", w.Elided())
		}
		checkRoundTrip(t, b, recs)
	})
}

// grow appends b to an audit message and fixes its nlmsg_len.
func grow(m []byte, b ...byte) []byte {
	m = append(m, b...)
	binary.LittleEndian.PutUint32(m, uint32(len(m)))
	return m
}

// TestElisionOrdinals: an event's PATH records are predicted by their
// position among the event's PATH records, and a chain of elisions stops
// at MaxElided per packet.
func TestElisionOrdinals(t *testing.T) {
	event := func(serial int, n int) []Record {
		ts := int64(1_700_000_000_000_000_000)
		recs := []Record{{SourceAudit, ts, syscallMsg(serial, 100, "/bin/mv")}}
		for i := range n {
			recs = append(recs, Record{SourceAudit, ts, auditMsg(typPath, serial, fmt.Sprintf("item=%d name=\"/f%d\"", i, i))})
		}
		return recs
	}
	recs := append(event(1, 3), event(2, 3)...)
	b, w := writeRecs(t, recs, nil, nil)
	if w.Elided() != 3 {
		t.Errorf("Elided() = %d, want 3", w.Elided())
	}
	checkRoundTrip(t, b, recs)

	recs = append(event(1, 2*MaxElided+5), event(2, 2*MaxElided+5)...)
	b, w = writeRecs(t, recs, nil, nil)
	// The second event: the first MaxElided PATHs on the SYSCALL, the
	// next on the first PATH not elided, and so on.
	if want := uint64(2*MaxElided + 5 - 2); w.Elided() != want {
		t.Errorf("Elided() = %d, want %d", w.Elided(), want)
	}
	checkRoundTrip(t, b, recs)
	if n := bytes.Count(decompressAll(t, b), []byte(elidedPrefix)); n != 3 {
		t.Errorf("%d markers, want 3", n)
	}
}

// captureFiles globs the repository's test captures; it fails when there
// are none.
func captureFiles(t *testing.T) []string {
	files, err := filepath.Glob("../testdata/*/*/*.zst")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test captures (%v)", err)
	}
	return files
}

func readFile(t testing.TB, name string) []Record {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	_, recs, err := readAll(t, b)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestElisionTestdata re-encodes every test capture with elision, also
// with small frames and frames written in the background, and reads back
// the same messages; the captures with audit events elide some. (With
// their nanosecond receipt times kept, the messages of an event were
// received at different times: few are elided then, but the messages
// still come back.)
func TestElisionTestdata(t *testing.T) {
	for _, name := range captureFiles(t) {
		t.Run(strings.TrimPrefix(name, "../testdata/"), func(t *testing.T) {
			recs := readFile(t, name)
			events := 0
			for _, r := range recs {
				if r.Source == SourceAudit && len(r.Data) > 4 && binary.LittleEndian.Uint16(r.Data[4:]) == auditEOE {
					events++
				}
			}
			ms := append([]Record(nil), recs...)
			for i := range ms {
				ms[i].Time -= ms[i].Time % TimeUnit(ms[i].Source)
			}
			for _, o := range []Options{
				{},
				{FrameSize: 4096},
				{FrameSize: 64 << 10, Background: true},
				{ExactTimes: true},
			} {
				want := ms
				if o.ExactTimes {
					want = recs
				}
				b, w := writeRecs(t, recs, &o, nil)
				r := checkRoundTrip(t, b, want)
				if r.Restored() != w.Elided() {
					t.Errorf("frames of %d: restored %d, elided %d", o.FrameSize, r.Restored(), w.Elided())
				}
				t.Logf("frames of %d, exact times %v: %d of %d messages elided (%d events), %d bytes", o.FrameSize, o.ExactTimes, w.Elided(), len(recs), events, len(b))
				if !o.ExactTimes && events > 10 && w.Elided() < uint64(events/2) {
					t.Errorf("frames of %d: %d elided for %d events", o.FrameSize, w.Elided(), events)
				}
			}
		})
	}
}

// markLast gives the frame's last block, a packet without options, an
// opt_comment for each of vs.
func markLast(w *Writer, vs ...string) {
	b := w.buf
	n := int(binary.LittleEndian.Uint32(b[len(b)-4:]))
	start := len(b) - n
	b = b[:len(b)-4]
	for _, v := range vs {
		b = appendOption(b, optComment, []byte(v))
	}
	b = appendOption(b, optEnd, nil)
	total := len(b) - start + 4
	binary.LittleEndian.PutUint32(b[start+4:], uint32(total))
	w.buf = binary.LittleEndian.AppendUint32(b, uint32(total))
}

// TestMalformedMarkers: a marker the reader cannot follow is damage
// naming the file and the frame's offset; the rest of that frame is
// dropped and the next frame is read.
func TestMalformedMarkers(t *testing.T) {
	ev := openEvent(1, "/bin/cat", "/etc/a")
	next := openEvent(2, "/bin/cat", "/etc/b")
	conn := Record{Source: SourceConnector, Time: ev[0].Time, Data: []byte("fork")}
	many := elidedPrefix + strings.Repeat("1320,", MaxElided) + "1320"
	for _, tc := range []struct {
		name   string
		first  []Record // the first frame; the marker goes on its last packet
		marker string
		want   int // records read from the first frame
		errs   string
	}{
		{"syscall", ev[:1], elidedPrefix + "1300", 0, "bad record type"},
		{"not a number", ev[:1], elidedPrefix + "13x0", 0, "bad record type"},
		{"empty", ev[:1], elidedPrefix, 0, "bad record type"},
		{"zero", ev[:1], elidedPrefix + "0", 0, "bad record type"},
		{"too large", ev[:1], elidedPrefix + "70000", 0, "bad record type"},
		{"trailing comma", ev[:1], elidedPrefix + "1320,", 0, "ends with a comma"},
		{"too many", ev[:1], many, 0, "more than 64"},
		{"nothing predicts", ev[:1], elidedPrefix + "1327", 1, "nothing predicts"},
		{"after a restored one", ev[:1], elidedPrefix + "1320,1302", 2, "nothing predicts"},
		{"no header", []Record{{SourceAudit, ev[0].Time, []byte("0123456789abcdef no header")}}, elidedPrefix + "1320", 0, "no audit message"},
		{"connector", []Record{conn}, elidedPrefix + "1320", 0, "no audit message"},
		{"two markers", ev[:1], "", 0, "two elision markers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, &Options{NoElide: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.first {
				w.WritePacket(r.Source, r.Time, r.Data)
			}
			if tc.marker == "" {
				markLast(w, elidedPrefix+"1320", elidedPrefix+"1320")
			} else {
				markLast(w, tc.marker)
			}
			w.Flush()
			for _, r := range next {
				w.WritePacket(r.Source, r.Time, r.Data)
			}
			w.Close()
			r, got, err := readAll(t, buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(next, got[min(tc.want, len(got)):]); diff != "" {
				t.Errorf("the next frame (-want +got):\n%s", diff)
			}
			if len(got) != tc.want+len(next) {
				t.Errorf("read %d records, want %d", len(got), tc.want+len(next))
			}
			d := r.Damage()
			var ce *CorruptError
			if len(d) != 1 || !errors.As(d[0].Err, &ce) || !errors.Is(d[0].Err, ErrCorrupt) || ce.File != "t.zst" || ce.Offset == 0 ||
				!strings.Contains(d[0].Err.Error(), tc.errs) {
				t.Errorf("damage %v, want one corrupt frame in t.zst: %q", d, tc.errs)
			}
		})
	}
}

// TestElisionAllocatesNothing: the elision of a steady stream of events
// allocates nothing once its maps and buffers have their working size,
// when writing nor when reading.
func TestElisionAllocatesNothing(t *testing.T) {
	var recs []Record
	for i := range 100 {
		recs = append(recs, openEvent(i+1, "/bin/cat", "/etc/a")...)
	}
	w, err := NewWriter(io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	write := func() {
		for _, r := range recs {
			w.WritePacket(r.Source, r.Time, r.Data)
		}
		w.Flush()
	}
	write()
	if n := testing.AllocsPerRun(20, write); n != 0 {
		t.Errorf("writing %d events allocates %.1f times", len(recs)/5, n)
	}
	if w.Elided() < 20*uint64(len(recs))/2 {
		t.Errorf("only %d elided", w.Elided())
	}
}

// FuzzElisionRoundTrip writes a stream of audit messages made from the
// input (types, serials, bodies, header bytes, frame ends) and checks
// that the reader restores exactly what was written: the Writer must
// never elide what the Reader would restore differently.
func FuzzElisionRoundTrip(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x00\x01\x02\x03\x04\x10\x00\x11"))
	f.Add([]byte("\x00\x02\x02\x02\x04\x00\x82\x02\x02\x05\x04\x20\x00\x02\x22"))
	f.Fuzz(func(t *testing.T, in []byte) {
		types := []uint16{auditSyscall, typCwd, typPath, typProctitle, auditEOE, 1309, 1305}
		bodies := []string{"", "x", "item=0 name=\"/a\"", "syscall=1 exe=\"/a\"", "syscall=1 exe=\"/b\" pid=3", "a\x00"}
		var recs []Record
		serial := 1
		flush := map[int]bool{}
		for i, c := range in {
			if c == 0x11 {
				flush[len(recs)] = true
				continue
			}
			if c&0x80 != 0 {
				serial++
			}
			typ := types[int(c&0x7f)%len(types)]
			body := bodies[int(c>>4&7)%len(bodies)]
			if typ == auditSyscall && c&0x40 == 0 {
				body = "arch=1 syscall=1 exe=\"/a\""
			}
			m := auditMsg(typ, serial, body)
			if c == 0x20 {
				m[8] = byte(i) // another nlmsg_seq
			}
			if c == 0x22 {
				m = m[:16+3] // no header
			}
			src := SourceAudit
			if c == 0x7f {
				src = SourceConnector
			}
			recs = append(recs, Record{Source: src, Time: 1_700_000_000_000_000_000 + int64(serial%3)*1e6, Data: m})
		}
		b, w := writeRecs(t, recs, &Options{ExactTimes: true}, func(w *Writer, i int) {
			if flush[i] {
				w.Flush()
			}
		})
		r := checkRoundTrip(t, b, recs)
		if r.Restored() != w.Elided() {
			t.Errorf("restored %d, elided %d", r.Restored(), w.Elided())
		}
	})
}

// TestEventKeyFields pins the fields an event's key is made of: the first
// syscall= (at the start or after a space) and the last exe= after a space.
func TestEventKeyFields(t *testing.T) {
	for _, tc := range []struct {
		body, sc, exe string
		ok            bool
	}{
		{`arch=c000003e syscall=257 comm="a" exe="/bin/a" key=(null)`, "257", `"/bin/a"`, true},
		{`syscall=2 exe=/x`, "2", "/x", true},
		{`nosyscall=1 syscall=3 exe=a exe=b`, "3", "b", true},
		{`syscall=4 xexe=a exe=`, "4", "", true},
		{`syscall=5 comm="exe=a"`, "", "", false},
		{`exe=/a syscall=6`, "", "", false},
		{`sys=1 exe=/a`, "", "", false},
	} {
		sc, ok1 := field([]byte(tc.body), keySyscall)
		exe, ok2 := lastField([]byte(tc.body), "exe")
		if ok := ok1 && ok2; ok != tc.ok || ok && (string(sc) != tc.sc || string(exe) != tc.exe) {
			t.Errorf("%q: syscall %q (%v), exe %q (%v); want %q, %q, %v", tc.body, sc, ok1, exe, ok2, tc.sc, tc.exe, tc.ok)
		}
	}
}

// TestElisionKeyMemo: the key ids advance gives SYSCALL messages are
// those of their (syscall, exe) whether or not a body of the same length
// came before (the memo's index), and a frame that ends takes its bodies
// with it: the next frame's bytes at the same place are read afresh.
func TestElisionKeyMemo(t *testing.T) {
	a := syscallMsg(1, 100, "/bin/a")
	b := syscallMsg(2, 100, "/bin/b") // the length of a, another key
	c := syscallMsg(3, 101, "/bin/a") // the length and key of a, another body
	d := syscallMsg(4, 1000, "/bin/a")
	ids := func(s *elideState, msgs ...[]byte) (got []int32) {
		var frame []byte
		for _, m := range msgs {
			frame = append(frame, m...)
		}
		for off := 0; off < len(frame); {
			end := off + len(msgs[len(got)])
			typ, prefix := auditText(frame[off:end])
			s.ev = span{}
			s.advance(frame, off, end, typ, prefix)
			if s.ev.n == 0 {
				t.Fatalf("message %d: no event", len(got))
			}
			got = append(got, s.evKey)
			off = end
		}
		return got
	}
	var s elideState
	if got, want := ids(&s, a, b, a, a, c, b, d, c), []int32{0, 1, 0, 0, 0, 1, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("key ids %v, want %v", got, want)
	}
	s.reset()
	// b where the last frame had a: a key the state has, another body.
	if got, want := ids(&s, b, b, a), []int32{1, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("after reset: key ids %v, want %v", got, want)
	}
	s.reset()
	if got, want := ids(&s, syscallMsg(5, 100, "/bin/c"), a), []int32{2, 0}; !slices.Equal(got, want) {
		t.Errorf("a new key after reset: key ids %v, want %v", got, want)
	}
}

// TestElisionKeyReset: a frame with more distinct (syscall, exe) keys than
// the state keeps makes it forget them at the frame's end; frames after
// it still elide, and every message reads back as written.
func TestElisionKeyReset(t *testing.T) {
	var recs []Record
	serial := 1
	frame := func(keys int) {
		for range 2 {
			for k := range keys {
				recs = append(recs, openEvent(serial, fmt.Sprintf("/bin/p%d", k), "/etc/a")...)
				serial++
			}
		}
	}
	frame(5000)
	ends := []int{len(recs)}
	frame(3)
	ends = append(ends, len(recs))
	frame(5000)
	ends = append(ends, len(recs))
	frame(3)
	next := 0
	b, w := writeRecs(t, recs, &Options{FrameSize: 64 << 20}, func(w *Writer, i int) {
		if next < len(ends) && i == ends[next] {
			next++
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	})
	// Every EOE, and the second round of each frame but its SYSCALLs.
	if want := uint64(5 * (2*5000 + 2*3)); w.Elided() != want {
		t.Errorf("Elided() = %d, want %d", w.Elided(), want)
	}
	checkRoundTrip(t, b, recs)
}

// TestElisionManyTypes: one key's events bring more record types over a
// frame than an event may have (maxEventTypes); the slots of every type
// are kept, so the second round of events is elided whole.
func TestElisionManyTypes(t *testing.T) {
	var recs []Record
	ts := int64(1_700_000_000_000_000_000)
	serial := 1
	for range 2 {
		for typ := range uint16(3 * maxEventTypes) {
			recs = append(recs, Record{SourceAudit, ts, syscallMsg(serial, 100, "/bin/x")},
				Record{SourceAudit, ts, auditMsg(1400+typ, serial, fmt.Sprintf("t=%d", typ))})
			serial++
		}
	}
	b, w := writeRecs(t, recs, nil, nil)
	if w.Elided() != 3*maxEventTypes {
		t.Errorf("Elided() = %d, want %d", w.Elided(), 3*maxEventTypes)
	}
	checkRoundTrip(t, b, recs)
}

// TestAuditText: the header prefix is found as bytes.Index finds "): " in
// the text's first maxPrefix bytes.
func TestAuditText(t *testing.T) {
	for _, text := range []string{
		"audit(1700000000.123:42): arch=c000003e",
		"audit(1.2:3): ",
		"audit(1.2:3):",
		"audit(1.2:3)",
		"audit(1.2:3) x): y",
		"audit()): ): ",
		"audit(" + strings.Repeat(")", 70) + ": x",
		"audit(" + strings.Repeat("1", 55) + "): x",
		"audit(" + strings.Repeat("1", 56) + "): x",
		"audit(" + strings.Repeat("1", 57) + "): x",
		"audit(1.2:3)): ",
		"type=1300",
		"",
	} {
		msg := append(make([]byte, 16), text...)
		binary.LittleEndian.PutUint16(msg[4:], 1300)
		want := 0
		if strings.HasPrefix(text, "audit(") {
			if i := bytes.Index([]byte(text[:min(len(text), maxPrefix)]), []byte("): ")); i >= 0 {
				want = i + 3
			}
		}
		if typ, got := auditText(msg); typ != 1300 || got != want {
			t.Errorf("auditText(%q) = %d, %d; want 1300, %d", text, typ, got, want)
		}
	}
}
