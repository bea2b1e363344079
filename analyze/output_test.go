package analyze

import (
	"iter"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/replay"
)

// TestWalk: Walk visits the processes of Build's Model, depth first in
// output order, each with its parent, and stops at visit's error.
func TestWalk(t *testing.T) {
	captures, _ := filepath.Glob("../testdata/analyze/*/capture*.zst")
	if len(captures) == 0 {
		t.Fatal("no captures in ../testdata/analyze")
	}
	open := func(c string) EventSource {
		s, err := replay.Open([]string{c}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	for _, c := range captures {
		t.Run(filepath.Base(filepath.Dir(c)), func(t *testing.T) {
			for _, o := range []*Options{nil, {Pid: 1}, {PathGlob: "*.txt"}, {NoFiles: true}} {
				m, err := Build(open(c), o)
				if err != nil {
					t.Fatal(err)
				}
				// The Model, flattened as Walk should visit it.
				type visit struct {
					p      Process
					parent int32 // pid; 0 for a root
				}
				var want []visit
				var flat func(ps []*Process, parent int32)
				flat = func(ps []*Process, parent int32) {
					for _, p := range ps {
						v := *p
						v.Children = nil
						want = append(want, visit{v, parent})
						flat(p.Children, p.PID)
					}
				}
				flat(m.Processes, 0)
				var got []visit
				var head Capture
				var conts []Container
				err = Walk(open(c), o, func(c Capture, cs []Container) error {
					head, conts = c, cs
					return nil
				}, func(p, parent *Process, files iter.Seq[*File], net iter.Seq[*NetEntry]) error {
					v := visit{p: *p}
					if len(p.Files) != 0 || len(p.Net) != 0 {
						t.Errorf("pid %d: Walk gave Files or Net in the Process", p.PID)
					}
					if files != nil {
						for f := range files {
							v.p.Files = append(v.p.Files, *f)
						}
					}
					if net != nil {
						for e := range net {
							v.p.Net = append(v.p.Net, *e)
						}
					}
					if parent != nil {
						v.parent = parent.PID
					}
					got = append(got, v)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got, cmp.AllowUnexported(visit{})); diff != "" {
					t.Errorf("options %+v: visits (-want +got):\n%s", o, diff)
				}
				if diff := cmp.Diff(m.Capture, head); diff != "" {
					t.Errorf("capture (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(m.Containers, conts); diff != "" {
					t.Errorf("containers (-want +got):\n%s", diff)
				}
			}
			// An error from visit ends the walk.
			n := 0
			errStop := filepath.ErrBadPattern
			err := Walk(open(c), nil, func(Capture, []Container) error { return nil }, func(p, parent *Process, _ iter.Seq[*File], _ iter.Seq[*NetEntry]) error {
				n++
				return errStop
			})
			if err != errStop || n != 1 {
				t.Errorf("visit's error: %v after %d visits", err, n)
			}
		})
	}
}
