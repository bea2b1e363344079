//go:build linux

package record_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"proctrail/formats"
	"proctrail/record"
)

// TestIntegrationElision records a command that opens the same file many
// times: the recorder elides most of its audit messages (the EOEs, and the
// CWD, PATH and PROCTITLE records that repeat those of the open before),
// which makes the capture smaller, and the reader restores them: the
// capture re-encoded through the Writer with and without elision reads
// back as the same messages.
func TestIntegrationElision(t *testing.T) {
	needRoot(t)
	out := filepath.Join(t.TempDir(), "trace.zst")
	res, err := record.Record(context.Background(), &record.Config{
		Output: out, Audit: true,
		Command: []string{"sh", "-c", "for i in $(seq 300); do read x < /etc/hostname; done; /bin/true; /bin/true"},
	})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("record: %v, exit %d", err, res.ExitCode)
	}
	recs, restored := readRecords(t, out)
	audit := 0
	for _, r := range recs {
		if r.Source == formats.SourceAudit {
			audit++
		}
	}
	// At least the EOE and the repeated records of most of 300 opens.
	if restored < 300 || audit < 1200 {
		t.Errorf("%d of %d audit messages restored: want most opens' EOE, CWD, PATH and PROCTITLE", restored, audit)
	}

	var sizes [2]int
	for i, noElide := range []bool{false, true} {
		var buf bytes.Buffer
		w, err := formats.NewWriter(&buf, &formats.Options{NoElide: noElide, ExactTimes: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := w.WritePacket(r.Source, r.Time, r.Data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		sizes[i] = buf.Len()
		path := filepath.Join(t.TempDir(), "re.zst")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		got, n := readRecords(t, path)
		if n != w.Elided() || (n == 0) != noElide {
			t.Errorf("no elision %v: %d restored, %d elided", noElide, n, w.Elided())
		}
		if len(got) != len(recs) {
			t.Fatalf("no elision %v: read %d messages back, want %d", noElide, len(got), len(recs))
		}
		for j := range recs {
			if a, b := recs[j], got[j]; a.Source != b.Source || a.Time != b.Time || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("no elision %v: message %d reads back as %s %d %q, want %s %d %q", noElide, j, b.Source, b.Time, b.Data, a.Source, a.Time, a.Data)
			}
		}
	}
	if sizes[0] >= sizes[1]*9/10 {
		t.Errorf("with elision %d bytes, without %d: want at least 10%% less", sizes[0], sizes[1])
	}
	t.Logf("%d messages, %d audit, %d restored; re-encoded %d bytes with elision, %d without", len(recs), audit, restored, sizes[0], sizes[1])
}

// readRecords reads a capture's messages, their data copied, and how many
// were restored from elision markers; damage fails the test.
func readRecords(t *testing.T, path string) ([]formats.Record, uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := formats.NewReader(f, &formats.ReaderOptions{Name: path})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []formats.Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rec.Data = bytes.Clone(rec.Data)
		recs = append(recs, rec)
	}
	if d := r.Damage(); len(d) > 0 {
		t.Fatalf("damage: %v", d)
	}
	return recs, r.Restored()
}
