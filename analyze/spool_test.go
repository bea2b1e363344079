package analyze

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/replay"
)

// Sizes that put the spool in a file from its first records, write it in
// small pieces and read it in pieces smaller than a record.
var tinySpoolSizes = []spoolSizes{
	{mem: 0, read: 1},
	{mem: 100, read: 50},
	{mem: 4096, read: 7},
}

func withSpoolSizes(t *testing.T, z spoolSizes) {
	t.Helper()
	old := defaultSpoolSizes
	defaultSpoolSizes = z
	t.Cleanup(func() { defaultSpoolSizes = old })
}

// TestFileSpool adds, closes and reads back accesses of several processes
// against a plain list of them, in memory and in a file.
func TestFileSpool(t *testing.T) {
	for _, z := range append([]spoolSizes{defaultSpoolSizes}, tinySpoolSizes...) {
		t.Run(fmt.Sprintf("%+v", z), func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			rng := rand.New(rand.NewPCG(1, uint64(z.mem+z.read)))
			s := newFileSpool()
			s.sizes = z
			type rec struct {
				off int64
				f   File
			}
			const procs = 5
			want := make([][]*rec, procs)
			last := make([]int64, procs)
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
				r := &rec{off: s.add(last[p], &f), f: f}
				last[p] = r.off + 1
				want[p] = append(want[p], r)
				all = append(all, r)
				// Close some access made before, maybe long before.
				if c := all[rng.IntN(len(all))]; c.f.Close == 0 {
					c.f.Close = int64(i)*1e6 + 7
					s.setClose(c.off, c.f.Close)
				}
			}
			for p, recs := range want {
				next := recs[0].off + 1
				for i, r := range recs {
					if next != r.off+1 {
						t.Fatalf("process %d access %d: next %d, want %d", p, i, next-1, r.off)
					}
					var f *File
					f, next = s.get(next - 1)
					if f == nil {
						t.Fatalf("process %d access %d: %v", p, i, s.err)
					}
					if diff := cmp.Diff(r.f, *f); diff != "" {
						t.Fatalf("process %d access %d (-want +got):\n%s", p, i, diff)
					}
				}
				if next != 0 {
					t.Fatalf("process %d: next %d after its last access", p, next-1)
				}
			}
			// Closes and reads mixed: a close patches what the read
			// cache holds, whole or in part.
			for range 2000 {
				r := all[rng.IntN(len(all))]
				for range 2 {
					if f, _ := s.get(r.off); f == nil || *f != r.f {
						t.Fatalf("access at %d after closes: %+v, want %+v (%v)", r.off, f, r.f, s.err)
					}
					r.f.Close = rng.Int64N(1 << 50)
					s.setClose(r.off, r.f.Close)
				}
			}
			if s.err != nil {
				t.Fatal(s.err)
			}
			if inFile := s.f != nil; inFile != (z.mem < 1<<20) {
				t.Errorf("in a file: %v, with %+v", inFile, z)
			}
			s.close()
			if left, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "*")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			// A bad offset is an error, not a panic.
			if f, _ := s.get(1 << 40); f != nil || s.err == nil {
				t.Errorf("get of a bad offset: %v, %v", f, s.err)
			}
		})
	}
}

// countingFile counts the reads of a spool's file.
type countingFile struct {
	*os.File
	reads int
}

func (f *countingFile) ReadAt(b []byte, off int64) (int, error) {
	f.reads++
	return f.File.ReadAt(b, off)
}

// TestSpoolReadCache reads the accesses of three processes, each written
// in a part of the file of its own, in turns: the read cache keeps a piece
// of each part, so the file is read about once, not once a record.
func TestSpoolReadCache(t *testing.T) {
	old := createSpoolFile
	t.Cleanup(func() { createSpoolFile = old })
	var made *countingFile
	createSpoolFile = func() (spoolFile, error) {
		f, err := os.CreateTemp(t.TempDir(), "spool")
		made = &countingFile{File: f}
		return made, err
	}
	s := newFileSpool()
	s.sizes = spoolSizes{mem: 0, read: 4096}
	defer s.close()
	const n = 1000
	var offs [3][]int64
	for p := range offs {
		prev := int64(0)
		for i := range n {
			off := s.add(prev, &File{Path: fmt.Sprint("/p", p, "/", i), Op: "open", Open: int64(i)})
			offs[p] = append(offs[p], off)
			prev = off + 1
		}
	}
	s.spill()
	for i := range n {
		for p := range offs {
			if f, _ := s.get(offs[p][i]); f == nil || f.Path != fmt.Sprint("/p", p, "/", i) {
				t.Fatalf("process %d access %d: %+v (%v)", p, i, f, s.err)
			}
		}
	}
	if max := int(s.base)/s.sizes.read + 3; made.reads > max {
		t.Errorf("%d reads of a %d-byte file in pieces of %d, want at most %d", made.reads, s.base, s.sizes.read, max)
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
			for _, z := range tinySpoolSizes {
				withSpoolSizes(t, z)
				dir := t.TempDir()
				t.Setenv("TMPDIR", dir)
				check(fmt.Sprintf("in a file, %+v", z))
				if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) > 0 {
					t.Errorf("left behind: %v", left)
				}
				t.Setenv("TMPDIR", filepath.Join(dir, "missing"))
				check(fmt.Sprintf("no temporary file, %+v", z))
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

// failingFile is a temporary file whose writes fail after the first n,
// and whose reads fail when readErr is set.
type failingFile struct {
	*os.File
	n       int
	readErr bool
}

func (f *failingFile) WriteAt(b []byte, off int64) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("no space left on device")
	}
	f.n--
	return f.File.WriteAt(b, off)
}

func (f *failingFile) ReadAt(b []byte, off int64) (int, error) {
	if f.readErr {
		return 0, errors.New("input/output error")
	}
	return f.File.ReadAt(b, off)
}

// TestFileSpoolWriteFails checks that a spool whose file stops taking
// writes goes on in memory with every record intact, and that one whose
// file cannot be read back either reports an error instead of panicking.
func TestFileSpoolWriteFails(t *testing.T) {
	for _, readErr := range []bool{false, true} {
		for _, n := range []int{0, 1, 5, 40} {
			t.Run(fmt.Sprintf("writes=%d/readErr=%v", n, readErr), func(t *testing.T) {
				old := createSpoolFile
				t.Cleanup(func() { createSpoolFile = old })
				var made *failingFile
				createSpoolFile = func() (spoolFile, error) {
					f, err := os.CreateTemp(t.TempDir(), "spool")
					made = &failingFile{File: f, n: n, readErr: readErr && n > 0}
					return made, err
				}
				s := newFileSpool()
				s.sizes = spoolSizes{mem: 64, read: 16}
				var offs []int64
				var want []File
				prev := int64(0)
				for i := range 200 {
					f := File{Path: fmt.Sprint("/f/", i), Op: "open", Mode: "r", Open: int64(i)}
					off := s.add(prev, &f)
					prev = off + 1
					offs, want = append(offs, off), append(want, f)
					if i%3 == 0 {
						// Close an access made long before: a patch in the file.
						j := i / 2
						want[j].Close = int64(i) + 1000
						s.setClose(offs[j], want[j].Close)
					}
				}
				if made == nil {
					t.Fatal("the spool never made its file")
				}
				if readErr && n > 0 {
					for next := offs[0] + 1; next != 0 && s.err == nil; {
						_, next = s.get(next - 1)
					}
					if s.err == nil {
						t.Fatal("no error although the file could not be read back")
					}
					return
				}
				if s.f != nil || !s.noFile {
					t.Fatalf("still on the file after a failed write: f=%v noFile=%v", s.f, s.noFile)
				}
				next := offs[0] + 1
				for i := range want {
					var f *File
					f, next = s.get(next - 1)
					if f == nil {
						t.Fatalf("access %d: %v", i, s.err)
					}
					if diff := cmp.Diff(want[i], *f); diff != "" {
						t.Fatalf("access %d (-want +got):\n%s", i, diff)
					}
				}
				if next != 0 || s.err != nil {
					t.Fatalf("next %d, err %v", next, s.err)
				}
			})
		}
	}
}

func withNoRetire(t *testing.T) {
	t.Helper()
	noRetire = true
	t.Cleanup(func() { noRetire = false })
}

// TestRetireLate sends records for processes after they were retired: an
// fd a child inherited from its retired parent, a late record of the
// parent, setns into its namespace, pid reuse and a late record of the
// previous incarnation. The output must be the same as with every
// process kept in memory.
func TestRetireLate(t *testing.T) {
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

	b, _, err := replayEvents(s.source(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b.spool.close()
	if b.reloads == 0 || b.thaws == 0 {
		t.Fatalf("%d retired states and %d frozen stubs brought back: the test tests too little", b.reloads, b.thaws)
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
	withNoRetire(t)
	if _, err := BuildJSON(&want, s.source(), nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotJSON.Bytes(), want.Bytes()) {
		t.Fatalf("retiring changes the output (-kept +retired):\n%s", cmp.Diff(want.String(), gotJSON.String()))
	}
}

// TestRetireUnchanged checks that a state brought back and retired again
// unchanged adds nothing to the spool, and a changed one does.
func TestRetireUnchanged(t *testing.T) {
	b := newBuilder()
	defer b.spool.close()
	p := b.newProc(50, 1)
	p.execs = append(p.execs, &execEntry{t: 2, exe: "/bin/x", argv: []string{"x", ""}, hasArgv: true})
	b.markEnded(p, 3)
	b.retire(p)
	if p.procState != nil || p.retired == 0 {
		t.Fatal("not retired")
	}
	size := b.spool.base + int64(len(b.spool.buf))
	for range 3 {
		b.use(p)
		b.settle(true)
	}
	if p.procState != nil {
		t.Fatal("not retired again")
	}
	if grown := b.spool.base + int64(len(b.spool.buf)) - size; grown != 0 {
		t.Errorf("unchanged state grew the spool by %d bytes", grown)
	}
	b.use(p).execs[0].argv[1] = "y"
	b.settle(true)
	if b.spool.base+int64(len(b.spool.buf)) == size {
		t.Error("a changed state was not written")
	}
	if got := b.use(p).execs[0].argv; !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("argv = %q after coming back", got)
	}
}

// fill sets every field of the struct v points to a value that is not
// zero and differs between fields, recursively; links point to to.
func fill(t *testing.T, v reflect.Value, to *proc, n *int, skip ...string) {
	t.Helper()
	for i := range v.NumField() {
		if slices.Contains(skip, v.Type().Field(i).Name) {
			continue
		}
		f := v.Field(i)
		f = reflect.NewAt(f.Type(), f.Addr().UnsafePointer()).Elem() // unexported fields too
		*n++
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int32, reflect.Int64:
			f.SetInt(int64(*n) * 1001)
		case reflect.Uint64:
			f.SetUint(uint64(*n) * 1003)
		case reflect.String:
			f.SetString(fmt.Sprint("s", *n))
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), 2, 2)
			for j := range 2 {
				e := s.Index(j)
				switch e.Kind() {
				case reflect.String:
					e.SetString(fmt.Sprint("e", *n, j))
				case reflect.Struct:
					fill(t, e, to, n)
				case reflect.Pointer:
					e.Set(reflect.New(e.Type().Elem()))
					fill(t, e.Elem(), to, n)
				default:
					t.Fatalf("cannot fill %s", f.Type())
				}
			}
			f.Set(s)
		case reflect.Struct:
			if f.Type() == reflect.TypeFor[procLink]() {
				f.Set(reflect.ValueOf(link(to)))
			} else {
				fill(t, f, to, n)
			}
		default:
			t.Fatalf("field %s of %s: cannot fill a %s", v.Type().Field(i).Name, v.Type(), f.Kind())
		}
	}
}

// TestStateCodec checks that the spool keeps every field of a procState:
// a field added to procState and not to the encoding fails it.
func TestStateCodec(t *testing.T) {
	b := newBuilder()
	defer b.spool.close()
	other := b.newProc(7, 1)
	var st procState
	n := 0
	fill(t, reflect.ValueOf(&st).Elem(), other, &n)
	data := b.encodeState(nil, &st)
	got := b.decodeState(b.spool.addBlob(data))
	if got == nil {
		t.Fatalf("decode failed: %v", b.spool.err)
	}
	if !reflect.DeepEqual(*got, st) {
		t.Fatalf("state changed in the spool:\n got %+v\nwant %+v", *got, st)
	}
	// A nil argv and an empty one differ; both come back as they were.
	st = procState{base: identity{argv: []string{}}}
	if got := b.decodeState(b.spool.addBlob(b.encodeState(nil, &st))); got == nil || got.base.argv == nil || got.execs != nil {
		t.Fatalf("empty vs nil slices: %+v", got)
	}
	// A damaged record is an error, not a panic.
	for cut := range len(data) {
		if b.decodeState(b.spool.addBlob(data[:cut])) != nil {
			t.Fatalf("a record cut at %d of %d decoded", cut, len(data))
		}
	}
}

// TestStubCodec checks that a frozen stub keeps every field of a proc but
// those freeze leaves out on purpose: a field added to proc and not to the
// encoding fails it.
func TestStubCodec(t *testing.T) {
	b := newBuilder()
	defer b.spool.close()
	other := b.newProc(7, 1)
	p := b.newProc(8, 2)
	b.procs[p.seq] = nil // no stub in memory, as when frozen
	want := proc{seq: p.seq}
	n := 0
	fill(t, reflect.ValueOf(&want).Elem(), other, &n, "procState", "seq", "fds")
	c := stateCodec{b: b}
	c.stub(&want)
	data := c.out
	b.frozen[p.seq] = b.spool.addBlob(data) + 1
	got := b.at(int(p.seq))
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("stub changed in the spool:\n got %+v\nwant %+v", *got, want)
	}
	if b.at(int(p.seq)) != got || len(b.unfrozen) != 1 {
		t.Fatal("a stub thawed twice")
	}
	// A damaged record is an error, not a panic: a stub with no state.
	for cut := range len(data) {
		b.procs[p.seq], b.unfrozen = nil, nil
		b.frozen[p.seq] = b.spool.addBlob(data[:cut]) + 1
		if got := b.at(int(p.seq)); got.pid != 0 || got.retired != 0 || len(got.tasks) != 1 || !got.finalized {
			t.Fatalf("a record cut at %d of %d decoded: %+v", cut, len(data), got)
		}
	}
}

func TestSpoolDirs(t *testing.T) {
	t.Setenv("TMPDIR", "/some/where")
	if got := spoolDirs(); !slices.Equal(got, []string{"/some/where"}) {
		t.Errorf("with TMPDIR: %q", got)
	}
	t.Setenv("TMPDIR", "")
	if got := spoolDirs(); !slices.Equal(got, []string{"/var/tmp", "/tmp"}) {
		t.Errorf("without TMPDIR: %q", got)
	}
}
