package analyze

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/analyze/internal/procstore"
	"proctrail/analyze/internal/spool"
	"proctrail/replay"
)

// Sizes that put the spool in a file from its first records, write it in
// small pieces and read it in pieces smaller than a record.
var tinySpoolSizes = []spool.Sizes{
	{Mem: 1, Read: 1},
	{Mem: 100, Read: 50},
	{Mem: 4096, Read: 7},
}

func withSpoolSizes(t *testing.T, z spool.Sizes) {
	t.Helper()
	old := spoolSizes
	spoolSizes = &z
	t.Cleanup(func() { spoolSizes = old })
}

// TestFileRecords adds, closes and reads back the file accesses of
// several processes against a plain list of them, in memory and in a
// file.
func TestFileRecords(t *testing.T) {
	for _, z := range append([]spool.Sizes{spool.DefaultSizes}, tinySpoolSizes...) {
		t.Run(fmt.Sprintf("%+v", z), func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			withSpoolSizes(t, z)
			rng := rand.New(rand.NewPCG(1, uint64(z.Mem+z.Read)))
			b := newBuilder()
			defer b.spool.Close()
			type rec struct {
				open *procstore.OpenFile
				f    File
			}
			const procs = 5
			var ps []*proc
			b.procs.Update(0, func() {
				for range procs {
					ps = append(ps, b.procs.Add())
				}
			})
			want := make([][]*rec, procs)
			var all []*rec
			for i := range 3000 {
				p := rng.IntN(procs)
				f := File{
					Path:  "/p/" + strings.Repeat("x", rng.IntN(40)) + fmt.Sprint(i),
					Op:    []string{"open", "create", "rename", "unlink"}[rng.IntN(4)],
					Mode:  []string{"", "r", "w", "rw"}[rng.IntN(4)],
					Open:  int64(i) * 1e6,
					Close: int64(rng.IntN(2)) * (int64(i)*1e6 + 5),
				}
				if f.Op == "rename" {
					f.To = "/to\x00\n\xff" + fmt.Sprint(i)
				}
				if rng.IntN(10) == 0 {
					f.Error = "EACCES"
				}
				if rng.IntN(500) == 0 {
					f.Path = "/long/" + strings.Repeat("é", 100_000)
				}
				r := &rec{open: b.openFile(ps[p], b.addFile(ps[p], f)), f: f}
				want[p] = append(want[p], r)
				all = append(all, r)
				// Close some access made before, maybe long before.
				if c := all[rng.IntN(len(all))]; c.f.Close == 0 {
					c.f.Close = int64(i)*1e6 + 7
					b.closeFile(c.open, c.f.Close)
				}
			}
			check := func() {
				t.Helper()
				for p, recs := range want {
					i := 0
					for f := range b.spooled(ps[p].FirstFile) {
						if i == len(recs) {
							t.Fatalf("process %d: more than %d accesses", p, len(recs))
						}
						if diff := cmp.Diff(recs[i].f, *f); diff != "" {
							t.Fatalf("process %d access %d (-want +got):\n%s", p, i, diff)
						}
						i++
					}
					if i != len(recs) {
						t.Fatalf("process %d: %d accesses, want %d (%v)", p, i, len(recs), b.spool.Err())
					}
				}
			}
			check()
			// Closes and reads mixed: a close patches what the read
			// cache holds, whole or in part.
			r := fileReader{sp: b.spool}
			for range 2000 {
				c := all[rng.IntN(len(all))]
				for range 2 {
					if f, _ := r.read(c.open.Off); f == nil || *f != c.f {
						t.Fatalf("access at %d after closes: %+v, want %+v (%v)", c.open.Off, f, c.f, b.spool.Err())
					}
					c.f.Close = rng.Int64N(1 << 50)
					b.closeFile(c.open, c.f.Close)
				}
			}
			check()
			if err := b.spoolErr(); err != nil {
				t.Fatal(err)
			}
			// A record too short for an access is an error, not a panic.
			if f, _ := r.read(b.spool.Append([]byte("short"))); f != nil || b.spool.Err() == nil {
				t.Errorf("a short record read as %+v, %v", f, b.spool.Err())
			}
		})
	}
}

// TestSpoolInFileSameOutput checks that the output does not depend on
// where the file accesses are spooled: memory, a temporary file written
// and read in small pieces, or memory again when no temporary file can be
// made.
func TestSpoolInFileSameOutput(t *testing.T) {
	type input struct {
		name string
		src  func() EventSource
	}
	var inputs []input
	captures, _ := filepath.Glob("../testdata/analyze/*/capture*.zst")
	if len(captures) == 0 {
		t.Fatal("no captures in ../testdata/analyze")
	}
	for _, c := range captures {
		inputs = append(inputs, input{filepath.Base(filepath.Dir(c)), func() EventSource {
			s, err := replay.Open([]string{c}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}})
	}
	rich := richScript(t)
	inputs = append(inputs, input{"rich", func() EventSource { return rich.source() }})
	out := func(src func() EventSource) (json []byte, m *Model) {
		var buf bytes.Buffer
		if _, err := BuildJSON(&buf, src(), nil); err != nil {
			t.Fatal(err)
		}
		m, err := Build(src(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), m
	}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			wantJSON, wantModel := out(in.src)
			files := 0
			walk(wantModel.Processes, func(p *Process) { files += len(p.Files) })
			if files == 0 {
				t.Fatal("no file accesses to spool")
			}
			check := func(what string) {
				t.Helper()
				gotJSON, gotModel := out(in.src)
				if !bytes.Equal(gotJSON, wantJSON) {
					t.Fatalf("%s: JSON differs (-want +got):\n%s", what, cmp.Diff(string(wantJSON), string(gotJSON)))
				}
				if diff := cmp.Diff(wantModel, gotModel); diff != "" {
					t.Fatalf("%s: model differs (-want +got):\n%s", what, diff)
				}
			}
			// With no State kept, every process that can be is retired:
			// States in the file too. With few kept, some are.
			for _, kept := range []int{0, 3} {
				withKeptStates(t, kept)
				sizes := tinySpoolSizes
				if kept != 0 {
					sizes = sizes[1:2]
				}
				for _, z := range sizes {
					withSpoolSizes(t, z)
					dir := t.TempDir()
					t.Setenv("TMPDIR", dir)
					check(fmt.Sprintf("in a file, %+v, %d States kept", z, kept))
					if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) > 0 {
						t.Errorf("left behind: %v", left)
					}
					t.Setenv("TMPDIR", filepath.Join(dir, "missing"))
					check(fmt.Sprintf("no temporary file, %+v, %d States kept", z, kept))
				}
			}
		})
	}
}

// TestNoFiles checks that Options.NoFiles drops the files and nothing
// else, and that PathGlob still selects by them.
func TestNoFiles(t *testing.T) {
	captures, _ := filepath.Glob("../testdata/analyze/*/capture*.zst")
	if len(captures) == 0 {
		t.Fatal("no captures in ../testdata/analyze")
	}
	for _, c := range captures {
		t.Run(filepath.Base(filepath.Dir(c)), func(t *testing.T) {
			build := func(o *Options) *Model {
				s, err := replay.Open([]string{c}, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				m, err := Build(s, o)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			all := build(nil)
			var glob string
			walk(all.Processes, func(p *Process) {
				if glob == "" && len(p.Files) > 0 {
					glob = p.Files[len(p.Files)-1].Path
				}
				p.Files = nil
			})
			if diff := cmp.Diff(all, build(&Options{NoFiles: true})); diff != "" {
				t.Fatalf("NoFiles (-want +got):\n%s", diff)
			}
			byGlob := build(&Options{PathGlob: glob})
			walk(byGlob.Processes, func(p *Process) { p.Files = nil })
			got := build(&Options{PathGlob: glob, NoFiles: true})
			if diff := cmp.Diff(byGlob, got); diff != "" {
				t.Fatalf("NoFiles with PathGlob %q (-want +got):\n%s", glob, diff)
			}
			if len(got.Processes) == 0 {
				t.Fatalf("PathGlob %q selected nothing", glob)
			}
		})
	}
}

// withKeptStates sets keptStates to n for t.
func withKeptStates(t *testing.T, n int) {
	t.Helper()
	old := keptStates
	keptStates = n
	t.Cleanup(func() { keptStates = old })
}

func withKeepInMemory(t *testing.T) {
	t.Helper()
	keepInMemory = true
	t.Cleanup(func() { keepInMemory = false })
}

// TestRetireLate sends records for processes after they were retired: an
// fd a child inherited from its retired parent, a late record of the
// parent, setns into its namespace, pid reuse and a late record of the
// previous incarnation. The output must be the same as with every
// process kept in memory.
func TestRetireLate(t *testing.T) {
	withKeptStates(t, 0)
	s := newScript(t)
	s.at(0).fork(1, 80)
	s.at(1).audit(80, 1, "openat", "exit=3 a0=ffffff9c a2=10000", cwd("/"), dirPath(0, "/data", "NORMAL", 5))
	s.at(2).fork(80, 81)
	s.at(3).fork(1, 82)
	s.at(10).exit(80, 80, 0, 0, 1)
	// 80 is retired at the first event a second after its end; its fd
	// table lives on.
	s.at(2000).fork(1, 90)
	s.at(3000).audit(81, 1, "fchdir", "a0=3", cwd("/"))
	s.at(3001).audit(81, 1, "openat", "exit=4 a0=ffffff9c a2=0", cwd("/data"), pathRec(0, "x", "NORMAL"))
	s.header(5).at(3500).audit(80, 1, "openat", "exit=5 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/late", "NORMAL"))
	s.at(4000).audit(82, 1, "openat", "exit=7 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/proc/80/ns/mnt", "NORMAL"))
	s.at(4001).audit(82, 1, "setns", "a0=7")
	s.at(15000).fork(1, 80) // pid reuse, 80 finalized and retired
	s.header(6).at(15001).audit(80, 1, "openat", "exit=6 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/later", "NORMAL"))
	s.at(15002).exec(80)
	s.at(16000).exit(81, 81, 3, 0, 1)
	s.at(16001).exit(82, 82, 0, 0, 1)
	s.at(20000).audit(81, 1, "close", "a0=4")

	b, _, err := runFilter(s.source(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.spool.Close()
	if states, stubs := b.procs.Reloads(); states == 0 || stubs == 0 {
		t.Fatalf("%d retired states and %d frozen stubs brought back: the test tests too little", states, stubs)
	}
	m := s.build(nil)
	var got []string
	for _, f := range one(t, m, 81).Files {
		got = append(got, f.Op+" "+f.Path)
	}
	if want := []string{"chdir /data", "open /data/x"}; !slices.Equal(got, want) {
		t.Errorf("files of 81 = %q, want %q", got, want)
	}
	var want, gotJSON bytes.Buffer
	if _, err := BuildJSON(&gotJSON, s.source(), nil); err != nil {
		t.Fatal(err)
	}
	withKeepInMemory(t)
	if _, err := BuildJSON(&want, s.source(), nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotJSON.Bytes(), want.Bytes()) {
		t.Fatalf("retiring changes the output (-kept +retired):\n%s", cmp.Diff(want.String(), gotJSON.String()))
	}
}
