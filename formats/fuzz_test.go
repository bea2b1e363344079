package formats

import (
	"bytes"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the Reader: it must never panic, must
// return a nil Reader exactly when it returns an error, and must stop.
func FuzzReader(f *testing.F) {
	f.Add(writeCapture(f, testRecords(12), 4))
	f.Add(writeCapture(f, nil, 0))
	b := writeCapture(f, testRecords(5), 0)
	f.Add(b[:len(b)-3])
	// Elision markers, restorable and not.
	ev := append(openEvent(1, "/bin/cat", "/etc/a"), openEvent(2, "/bin/cat", "/etc/a")...)
	b, _ = writeRecs(f, ev, nil, nil)
	f.Add(b)
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, &Options{NoElide: true})
	w.WritePacket(ev[0].Source, ev[0].Time, ev[0].Data)
	markLast(w, elidedPrefix+"1320,1327,1302")
	w.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReader(bytes.NewReader(in), &ReaderOptions{MaxFrameSize: 1 << 20})
		if (r == nil) != (err != nil) {
			t.Fatalf("reader %v with error %v", r, err)
		}
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			rec, err := r.Next()
			if err != nil {
				if err != io.EOF {
					t.Fatalf("Next: %v", err)
				}
				break
			}
			if rec.Source >= NumSources {
				t.Fatalf("record of source %d", rec.Source)
			}
			if i > len(in) {
				t.Fatal("more records than input bytes")
			}
		}
		if r.UnreadableBytes() > int64(len(in)) {
			t.Fatalf("%d unreadable bytes of %d", r.UnreadableBytes(), len(in))
		}
	})
}

// FuzzProcRecord checks that decoding never panics and that what decodes
// re-encodes to something that decodes the same.
func FuzzProcRecord(f *testing.F) {
	rec := ProcRecord{Kind: ReasonExec, PID: 42, PPID: 1, TIDs: []int32{42, 43}, Comm: "sh", Cmdline: []string{"sh", "-c", "x"},
		Cgroup: "0::/docker/abc\n", Namespaces: []Namespace{{"mnt", 4026531841}}}
	b, _ := rec.AppendBinary(nil)
	f.Add(b)
	f.Add([]byte{1, 2, 1, 0, 5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var p ProcRecord
		if err := p.UnmarshalBinary(in); err != nil {
			return
		}
		out, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		var q ProcRecord
		if err := q.UnmarshalBinary(out); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
	})
}
