package analyze

import (
	"iter"
	"slices"
	"testing"

	"proctrail/internal/pipe"
)

// The encoder's reader stays in step with the made outputs when the
// encoder stops a list early or leaves one out.
func TestOutReaderLists(t *testing.T) {
	in := pipe.New(nil, newOutBatch, (*outBatch).reset)
	go func() {
		defer in.Close()
		p1, p2, p3 := &Process{PID: 1}, &Process{PID: 2}, &Process{PID: 3}
		bt := in.Batch()
		bt.files = []File{{Path: "/a"}, {Path: "/b"}}
		bt.nets = []NetEntry{{Op: "connect"}}
		bt.items = []outItem{
			{kind: outProc, proc: p1, hasFiles: true, hasNet: true},
			{kind: outFile, i: 0}, {kind: outFile, i: 1}, {kind: outEnd},
			{kind: outNet, i: 0}, {kind: outEnd},
		}
		in.Send(bt)
		bt = in.Batch()
		bt.files = append(bt.files, File{Path: "/c"})
		bt.items = append(bt.items,
			outItem{kind: outProc, proc: p2, hasFiles: true, hasNet: true},
			outItem{kind: outFile, i: 0}, outItem{kind: outEnd}, outItem{kind: outEnd},
			outItem{kind: outProc, proc: p3, hasFiles: true}, outItem{kind: outEnd})
		in.Send(bt)
	}()
	r := &outReader{in: in}
	files := func() iter.Seq[*File] { return outList(r, outFile, batchFiles) }
	nets := func() iter.Seq[*NetEntry] { return outList(r, outNet, batchNets) }

	it := r.proc()
	if it == nil || it.proc.PID != 1 {
		t.Fatalf("first process: %+v", it)
	}
	for f := range files() {
		if f.Path != "/a" {
			t.Errorf("first file %q", f.Path)
		}
		break // stops early: the rest of the list must be read anyway
	}
	var ops []string
	for e := range nets() {
		ops = append(ops, e.Op)
	}
	if !slices.Equal(ops, []string{"connect"}) {
		t.Errorf("network list after a file list stopped early: %v", ops)
	}
	// The second process's lists are left out whole.
	if it = r.proc(); it == nil || it.proc.PID != 2 {
		t.Fatalf("second process: %+v", it)
	}
	if it = r.proc(); it == nil || it.proc.PID != 3 {
		t.Fatalf("third process: %+v", it)
	}
	n := 0
	for range files() {
		n++
	}
	if n != 0 {
		t.Errorf("an empty list yielded %d files", n)
	}
	if it = r.proc(); it != nil {
		t.Errorf("after the end: %+v", it)
	}
}
