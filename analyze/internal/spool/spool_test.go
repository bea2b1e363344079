package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// Sizes that put the spool in a file from its first records, write it in
// small pieces and read it in pieces smaller than a record.
var tinySizes = []Sizes{
	{Mem: 1, Read: 1},
	{Mem: 100, Read: 50},
	{Mem: 4096, Read: 7},
}

// record is what a test wrote: its offset and data. Its first 8 bytes
// are a field the test patches.
type record struct {
	off  int64
	data []byte
}

func patched(r *record, v uint64) {
	binary.LittleEndian.PutUint64(r.data, v)
}

// TestSpool appends records of every size, patches some (before and
// after they go to the file, and while the read cache holds them), and
// reads them all back, in memory and in a file.
func TestSpool(t *testing.T) {
	for _, z := range append([]Sizes{DefaultSizes}, tinySizes...) {
		t.Run(fmt.Sprintf("%+v", z), func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			rng := rand.New(rand.NewPCG(1, uint64(z.Mem+z.Read)))
			s := New(&z)
			var all []*record
			for i := range 3000 {
				n := 8 + rng.IntN(60)
				if rng.IntN(500) == 0 {
					n = 200_000
				}
				r := &record{data: make([]byte, n)}
				for j := range r.data {
					r.data[j] = byte(rng.Uint32())
				}
				r.off = s.Append(r.data)
				all = append(all, r)
				if i%7 == 0 {
					// Patch a record made before, maybe long before.
					c := all[rng.IntN(len(all))]
					v := rng.Uint64()
					patched(c, v)
					s.Patch(c.off, 0, v)
				}
			}
			check := func() {
				t.Helper()
				for i, r := range all {
					if got := s.Record(r.off); !bytes.Equal(got, r.data) {
						t.Fatalf("record %d at %d: %d bytes, want %d (%v)", i, r.off, len(got), len(r.data), s.Err())
					}
				}
			}
			check()
			// Patches and reads mixed: a patch changes what the read
			// cache holds, whole or in part.
			for range 2000 {
				r := all[rng.IntN(len(all))]
				for range 2 {
					if got := s.Record(r.off); !bytes.Equal(got, r.data) {
						t.Fatalf("record at %d after patches differs (%v)", r.off, s.Err())
					}
					v := rng.Uint64()
					patched(r, v)
					s.Patch(r.off, 0, v)
				}
			}
			check()
			// Readers, each on a goroutine of its own, and the Spool's
			// own reads at the same time, once nothing is written: each
			// reads every record as it is, in an order of its own.
			var wg sync.WaitGroup
			bad := make(chan string, 4)
			for g := range 4 {
				wg.Go(func() {
					rd := s.NewReader()
					read := rd.Record
					if g == 0 {
						read = s.Record
					}
					order := rand.New(rand.NewPCG(uint64(g), 9)).Perm(len(all))
					for _, i := range order {
						if got := read(all[i].off); !bytes.Equal(got, all[i].data) {
							bad <- fmt.Sprintf("reader %d: record %d at %d differs", g, i, all[i].off)
							return
						}
						if g > 0 && len(all[i].data) < maxInternLen && rd.Intern(all[i].data) != string(all[i].data) {
							bad <- fmt.Sprintf("reader %d: Intern of record %d differs", g, i)
							return
						}
					}
				})
			}
			wg.Wait()
			close(bad)
			for msg := range bad {
				t.Error(msg)
			}
			if s.Err() != nil {
				t.Fatal(s.Err())
			}
			if s.InFile() != (z.Mem < 1<<20) {
				t.Errorf("in a file: %v, with %+v", s.InFile(), z)
			}
			s.Close()
			if left, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "*")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			// A bad offset is an error, not a panic.
			if got := s.Record(1 << 40); got != nil || s.Err() == nil {
				t.Errorf("record at a bad offset: %v, %v", got, s.Err())
			}
		})
	}
}

// TestBadRecord: a record whose length field lies, read from memory or
// the file, is an error, not a panic.
func TestBadRecord(t *testing.T) {
	for _, z := range tinySizes {
		t.Setenv("TMPDIR", t.TempDir())
		s := New(&z)
		off := s.Append([]byte("12345678"))
		s.Append([]byte("x"))
		s.patch(off, 2) // the length field: less than itself
		if got := s.Record(off); got != nil || s.Err() == nil {
			t.Errorf("%+v: record with a bad length: %q, %v", z, got, s.Err())
		}
		s.Close()
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

// TestReadCache reads the records of three writers, each in a part of
// the file of its own, in turns: the read cache keeps a piece of each
// part, so the file is read about once, not once a record.
func TestReadCache(t *testing.T) {
	old := createFile
	t.Cleanup(func() { createFile = old })
	var made *countingFile
	createFile = func() (file, error) {
		f, err := os.CreateTemp(t.TempDir(), "spool")
		made = &countingFile{File: f}
		return made, err
	}
	s := New(&Sizes{Mem: 1, Read: 4096})
	defer s.Close()
	const n = 1000
	var offs [3][]int64
	for p := range offs {
		for i := range n {
			offs[p] = append(offs[p], s.Append(fmt.Appendf(nil, "/p%d/%d", p, i)))
		}
	}
	s.spill()
	for i := range n {
		for p := range offs {
			if got := s.Record(offs[p][i]); string(got) != fmt.Sprintf("/p%d/%d", p, i) {
				t.Fatalf("writer %d record %d: %q (%v)", p, i, got, s.Err())
			}
		}
	}
	if limit := int(s.base)/s.sizes.Read + 3; made.reads > limit {
		t.Errorf("%d reads of a %d-byte file in pieces of %d, want at most %d", made.reads, s.base, s.sizes.Read, limit)
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

// TestWriteFails checks that a spool whose file stops taking writes goes
// on in memory with every record intact, and that one whose file cannot
// be read back either reports an error instead of panicking.
func TestWriteFails(t *testing.T) {
	for _, readErr := range []bool{false, true} {
		for _, n := range []int{0, 1, 5, 40} {
			t.Run(fmt.Sprintf("writes=%d/readErr=%v", n, readErr), func(t *testing.T) {
				old := createFile
				t.Cleanup(func() { createFile = old })
				var made *failingFile
				createFile = func() (file, error) {
					f, err := os.CreateTemp(t.TempDir(), "spool")
					made = &failingFile{File: f, n: n, readErr: readErr && n > 0}
					return made, err
				}
				s := New(&Sizes{Mem: 64, Read: 16})
				var all []*record
				for i := range 200 {
					r := &record{data: fmt.Appendf(make([]byte, 8), "/f/%d", i)}
					r.off = s.Append(r.data)
					all = append(all, r)
					if i%3 == 0 {
						// Patch a record made long before: in the file.
						c := all[i/2]
						patched(c, uint64(i)+1000)
						s.Patch(c.off, 0, uint64(i)+1000)
					}
				}
				if made == nil {
					t.Fatal("the spool never made its file")
				}
				if readErr && n > 0 {
					for _, r := range all {
						if s.Record(r.off) == nil {
							break
						}
					}
					if s.Err() == nil {
						t.Fatal("no error although the file could not be read back")
					}
					return
				}
				if s.InFile() || !s.noFile {
					t.Fatalf("still on the file after a failed write: noFile=%v", s.noFile)
				}
				for i, r := range all {
					if got := s.Record(r.off); !bytes.Equal(got, r.data) {
						t.Fatalf("record %d: %q, want %q", i, got, r.data)
					}
				}
				if s.Err() != nil {
					t.Fatal(s.Err())
				}
			})
		}
	}
}

// TestNoFile: when no temporary file can be made, the records stay in
// memory.
func TestNoFile(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	s := New(&Sizes{Mem: 10, Read: 1})
	defer s.Close()
	var offs []int64
	for i := range 100 {
		offs = append(offs, s.Append([]byte(strings.Repeat("x", i))))
	}
	for i, off := range offs {
		if got := s.Record(off); string(got) != strings.Repeat("x", i) {
			t.Fatalf("record %d: %q", i, got)
		}
	}
	if s.InFile() || s.Err() != nil {
		t.Errorf("in a file %v, err %v", s.InFile(), s.Err())
	}
}

func TestIntern(t *testing.T) {
	s := New(nil)
	a, b := s.Intern([]byte("/usr/bin/sh")), s.Intern([]byte("/usr/bin/sh"))
	if a != "/usr/bin/sh" || b != a || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("equal strings not shared")
	}
	long := bytes.Repeat([]byte("y"), maxInternLen+1)
	if got := s.Intern(long); got != string(long) || len(s.own.strs) != 1 {
		t.Errorf("a long string was kept: %d strings", len(s.own.strs))
	}
	for i := range maxInterned + 10 {
		s.Intern(fmt.Append(nil, i))
	}
	if len(s.own.strs) > maxInterned {
		t.Errorf("%d strings kept, more than %d", len(s.own.strs), maxInterned)
	}
}

func TestDirs(t *testing.T) {
	t.Setenv("TMPDIR", "/some/where")
	if got := Dirs(); !slices.Equal(got, []string{"/some/where"}) {
		t.Errorf("with TMPDIR: %q", got)
	}
	t.Setenv("TMPDIR", "")
	if got := Dirs(); !slices.Equal(got, []string{"/var/tmp", "/tmp"}) {
		t.Errorf("without TMPDIR: %q", got)
	}
}
