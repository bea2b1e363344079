package replay

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
		rec := formats.ProcRecord{Kind: formats.ProcSnapshot, PID: int32(ts % 100000)}
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
	for {
		m, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Err != nil || m.ProcFS == nil {
			t.Fatalf("message %+v did not decode", m)
		}
		got = append(got, fmt.Sprintf("%d %s", m.Time, filepath.Base(m.File)))
	}
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
	for {
		if _, err := s.NextEvent(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
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
