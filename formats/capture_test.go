package formats

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/zstd"
)

var testHeader = Header{
	Hostname:      "host-a",
	KernelRelease: "6.18.44-test",
	Machine:       "x86_64",
	BootTime:      time.Date(2026, 11, 26, 8, 0, 0, 123456789, time.UTC),
	Version:       "0.1.0",
	CommandLine:   []string{"proctrail", "record", "-o", "t.zst", "--", "sh", "-c", "echo \"hi\"\n"},
	CaptureID:     "00112233445566778899aabbccddeeff",
	Sequence:      2,
	Start:         time.Date(2026, 11, 26, 9, 0, 0, 1, time.UTC),
}

// writeCapture writes recs with a frame closed after every perFrame records
// and the given stats after each frame.
func writeCapture(t testing.TB, recs []Record, perFrame int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &Options{Header: testHeader})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if err := w.WritePacket(r.Source, r.Time, r.Data); err != nil {
			t.Fatal(err)
		}
		if perFrame > 0 && (i+1)%perFrame == 0 {
			w.SetStats(SourceAudit, Stats{Time: r.Time, Received: uint64(i + 1), Dropped: 7})
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.SetStats(SourceConnector, Stats{Time: 99, Received: uint64(len(recs)), Dropped: 3})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Written() != int64(buf.Len()) {
		t.Errorf("Written() = %d, file has %d bytes", w.Written(), buf.Len())
	}
	return buf.Bytes()
}

func testRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		src := Source(i % numSources)
		data := []byte(fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte{'x'}, i%7)))
		// Whole milliseconds: every source's time unit (see TimeUnit).
		recs[i] = Record{Source: src, Time: 1_700_000_000_000_000_000 + int64(i)*1_000_000, Data: data}
	}
	return recs
}

// readAll reads every record of a capture, copying Data.
func readAll(t testing.TB, b []byte) (*Reader, []Record, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), &ReaderOptions{Name: "t.zst"})
	if err != nil {
		return nil, nil, err
	}
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r, out, nil
		}
		if err != nil {
			return r, out, err
		}
		rec.Data = append([]byte(nil), rec.Data...)
		out = append(out, rec)
	}
}

// TestTimeUnits checks that audit receipt times are kept to the
// millisecond (truncated), connector and procfs times and statistics to
// the nanosecond.
func TestTimeUnits(t *testing.T) {
	const ts = 1_700_000_000_123_456_789
	var buf bytes.Buffer
	w, err := NewWriter(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	for src := range Source(numSources) {
		w.WritePacket(src, ts, []byte("x"))
		w.SetStats(src, Stats{Time: ts, Received: 1})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, got, err := readAll(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := map[Source]int64{SourceConnector: ts, SourceAudit: 1_700_000_000_123_000_000, SourceProcfs: ts}
	for _, rec := range got {
		if rec.Time != want[rec.Source] || rec.Time%TimeUnit(rec.Source) != 0 {
			t.Errorf("%s: time %d, want %d", rec.Source, rec.Time, want[rec.Source])
		}
	}
	r, _ := NewReader(bytes.NewReader(buf.Bytes()), nil)
	for r.Next(); ; {
		if _, err := r.Next(); err != nil {
			break
		}
	}
	for src := range Source(numSources) {
		if st, ok := r.Stats(src); !ok || st.Time != ts {
			t.Errorf("%s statistics time %d (%v), want %d", src, st.Time, ok, ts)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		perFrame int
	}{
		{"empty", 0, 0},
		{"one frame", 10, 0},
		{"many frames", 100, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := testRecords(tc.n)
			b := writeCapture(t, recs, tc.perFrame)
			r, got, err := readAll(t, b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(testHeader, r.Header()); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(recs, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if s, ok := r.Stats(SourceConnector); !ok || s != (Stats{Time: 99, Received: uint64(tc.n), Dropped: 3}) {
				t.Errorf("connector stats = %+v, %v", s, ok)
			}
			if r.UnreadableBytes() != 0 || r.TruncatedBytes() != 0 || len(r.Damage()) != 0 {
				t.Errorf("clean file reports damage: %v", r.Damage())
			}
		})
	}
}

func TestFrameSizeClosesFrames(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &Options{FrameSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := w.WritePacket(SourceAudit, 1, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Frames() < 10 {
		t.Errorf("Frames() = %d, want at least 10 frames of 1 KiB", w.Frames())
	}
	r, recs, err := readAll(t, buf.Bytes())
	if err != nil || len(recs) != 100 {
		t.Fatalf("read %d records, err %v", len(recs), err)
	}
	if r.Frames() != w.Frames() {
		t.Errorf("reader saw %d frames, writer wrote %d", r.Frames(), w.Frames())
	}
}

// frameEnds returns the offsets at which each frame of b ends.
func frameEnds(t testing.TB, b []byte) []int {
	var ends []int
	for off := 0; off < len(b); {
		if off+indexLen > len(b) {
			t.Fatalf("partial index at %d", off)
		}
		clen := int(uint32(b[off+12]) | uint32(b[off+13])<<8 | uint32(b[off+14])<<16 | uint32(b[off+15])<<24)
		off += indexLen + clen
		ends = append(ends, off)
	}
	return ends
}

func TestTruncationAtEveryOffset(t *testing.T) {
	recs := testRecords(40)
	b := writeCapture(t, recs, 5)
	ends := frameEnds(t, b)
	for cut := 0; cut < len(b); cut++ {
		r, got, err := readAll(t, b[:cut])
		if cut < indexLen {
			if err == nil {
				t.Fatalf("cut %d: NewReader accepted a partial index", cut)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		// Records of every frame that ends before the cut are read.
		want := 0
		for i, e := range ends {
			if e <= cut && i > 0 {
				want = min(5*i, len(recs))
			}
		}
		if len(got) != want {
			t.Fatalf("cut %d: read %d records, want %d", cut, len(got), want)
		}
		complete := false
		for _, e := range ends {
			complete = complete || e == cut
		}
		if !complete && (r.TruncatedBytes() == 0 || r.UnreadableBytes() != r.TruncatedBytes()) {
			t.Fatalf("cut %d: truncated %d, unreadable %d", cut, r.TruncatedBytes(), r.UnreadableBytes())
		}
		if complete && r.TruncatedBytes() != 0 {
			t.Fatalf("cut %d at a frame end reports %d truncated bytes", cut, r.TruncatedBytes())
		}
	}
}

func TestCorruptFrameIsSkipped(t *testing.T) {
	recs := testRecords(30)
	b := writeCapture(t, recs, 10)
	ends := frameEnds(t, b)
	for _, tc := range []struct {
		name string
		at   int // byte to flip
	}{
		{"frame body", ends[1] + indexLen + 10}, // inside the second data frame
		{"frame index", ends[1] + 2},            // in its index: resync
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Clone(b)
			bad[tc.at] ^= 0xff
			r, got, err := readAll(t, bad)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append([]Record(nil), recs[:10]...), recs[20:]...)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			d := r.Damage()
			if len(d) != 1 || d[0].Offset != int64(ends[1]) || r.UnreadableBytes() == 0 {
				t.Fatalf("damage = %+v, unreadable %d; want one at %d", d, r.UnreadableBytes(), ends[1])
			}
			var ce *CorruptError
			if !errors.As(d[0].Err, &ce) || ce.File != "t.zst" || !errors.Is(d[0].Err, ErrCorrupt) {
				t.Errorf("damage error %v is not a CorruptError naming the file", d[0].Err)
			}
		})
	}
}

func TestNotACapture(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("hello world, this is not a capture file"), make([]byte, 100)} {
		if _, err := NewReader(bytes.NewReader(in), nil); err == nil {
			t.Errorf("NewReader(%q) accepted it", in)
		}
	}
}

func TestHostileLengths(t *testing.T) {
	// An index with a valid CRC claiming a 4 GiB frame is skipped, not
	// allocated.
	b := writeCapture(t, testRecords(3), 0)
	huge := make([]byte, indexLen)
	putIndex(huge, 1<<32-1, 1<<32-1)
	r, got, err := readAll(t, append(bytes.Clone(b), huge...))
	if err != nil || len(got) != 3 {
		t.Fatalf("read %d records, %v", len(got), err)
	}
	if d := r.Damage(); len(d) != 1 || !errors.Is(d[0].Err, ErrTooLarge) {
		t.Errorf("damage = %v, want one ErrTooLarge", d)
	}
}

func TestWritePacketAllocatesNothing(t *testing.T) {
	w, err := NewWriter(io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 200)
	for range 1000 { // grow the frame buffer to its working size
		w.WritePacket(SourceAudit, 1, data)
	}
	w.Flush()
	allocs := testing.AllocsPerRun(1000, func() {
		w.WritePacket(SourceAudit, 1, data)
		if w.Buffered() > 64<<10 {
			w.Flush()
		}
	})
	if allocs != 0 {
		t.Errorf("WritePacket allocates %.1f times per call", allocs)
	}
}

func BenchmarkWritePacket(b *testing.B) {
	w, _ := NewWriter(io.Discard, nil)
	msg := bytes.Repeat([]byte("type=SYSCALL msg=audit(1700000000.123:4567): arch=c000003e syscall=257 "), 3)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; b.Loop(); i++ {
		w.WritePacket(SourceAudit, int64(i), msg)
	}
	w.Close()
}

func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, nil)
	msg := bytes.Repeat([]byte("type=SYSCALL msg=audit(1700000000.123:4567): arch=c000003e syscall=257 "), 3)
	for i := range 100000 {
		w.WritePacket(SourceAudit, int64(i), msg)
	}
	w.Close()
	b.ReportAllocs()
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		r, _ := NewReader(bytes.NewReader(buf.Bytes()), nil)
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
		r.Close()
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestBackgroundWriter(t *testing.T) {
	recs := testRecords(200)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &Options{Header: testHeader, Background: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if err := w.WritePacket(r.Source, r.Time, r.Data); err != nil {
			t.Fatal(err)
		}
		if i%9 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Written() != int64(buf.Len()) {
		t.Errorf("Written() = %d, file has %d bytes", w.Written(), buf.Len())
	}
	_, got, err := readAll(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recs, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}

	// A write error surfaces by Close at the latest.
	w, err = NewWriter(&failWriter{after: 2}, &Options{Background: true})
	if err != nil {
		t.Fatal(err)
	}
	var sawErr error
	for i := 0; i < 10 && sawErr == nil; i++ {
		w.WritePacket(SourceAudit, 1, []byte("x"))
		sawErr = w.Flush()
	}
	if cerr := w.Close(); sawErr == nil && cerr == nil {
		t.Error("a failing writer reported no error")
	}
}

// TestLostHeaderFrame corrupts the first frame, which holds the section
// header and the interfaces: the packets after it are read with the
// recording's fixed interface order and time units.
func TestLostHeaderFrame(t *testing.T) {
	recs := testRecords(30)
	for i := range recs {
		recs[i].Time += int64(recs[i].Source) * 123_456 // sub-ms, except for audit
		recs[i].Time -= recs[i].Time % TimeUnit(recs[i].Source)
	}
	b := writeCapture(t, recs, 10)
	b[indexLen+5] ^= 0xff // inside the first frame's zstd data
	r, got, err := readAll(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recs, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if r.UnreadableBytes() == 0 {
		t.Error("the lost first frame is not reported")
	}
}

// TestCutRoundTrip: a cut's provenance in the section header and its
// accepted and masked counts in the statistics come back as written; a
// capture that is no cut has neither.
func TestCutRoundTrip(t *testing.T) {
	h := testHeader
	h.Cut = &CutInfo{From: []string{"aa", "bb"}, Files: []string{"t.zst", "t.1.zst"}, Selection: []string{"--pid", "7", "--path", "/etc/*"}, Redactions: 2}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &Options{Header: h})
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Time: 5, Received: 100, Dropped: 2, Accepted: 40, Masked: 9}
	w.SetStats(SourceAudit, want)
	zero := Stats{Time: 5, Received: 3}
	w.SetStats(SourceProcfs, zero)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, _, err := readAll(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, r.Header()); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if got, _ := r.Stats(SourceAudit); got != want {
		t.Errorf("audit stats %+v, want %+v", got, want)
	}
	if got, _ := r.Stats(SourceProcfs); got != zero {
		t.Errorf("procfs stats %+v, want %+v", got, zero)
	}
	// Without Cut, no isb_filteraccept and no masked comment are written.
	b := writeCapture(t, testRecords(3), 0)
	if bytes.Contains(decompressAll(t, b), []byte("proctrail.masked=")) {
		t.Error("a capture that is no cut has a masked count")
	}
}

// decompressAll is zstd -dc: the pcapng of a capture.
func decompressAll(t *testing.T, b []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
