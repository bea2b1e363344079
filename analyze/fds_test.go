package analyze

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// TestFDTable drives an fdTable and two maps (the representation it
// replaced) with the same random operations, on fds that fall inline, in
// the map, and from 64 up, and compares every answer.
func TestFDTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var tb *fdTable
		ref := map[int32]*fdEntry{}
		closed := map[int32]bool{}
		span := int32([]int{3, 6, 12, 80, 300}[round%5])
		for range 400 {
			fd := rng.Int32N(span) - 1 // -1 too
			switch rng.IntN(4) {
			case 0, 1:
				e := &fdEntry{t: rng.Int64()}
				if tb == nil {
					tb = &fdTable{}
				}
				tb.set(fd, e)
				ref[fd] = e
				delete(closed, fd)
			case 2:
				got := tb.del(fd)
				if got != ref[fd] {
					t.Fatalf("round %d: del(%d) = %p, want %p", round, fd, got, ref[fd])
				}
				delete(ref, fd)
			case 3:
				if tb == nil {
					tb = &fdTable{}
				}
				tb.close(fd)
				closed[fd] = true
			}
			for fd := int32(-1); fd < span; fd++ {
				if got := tb.get(fd); got != ref[fd] {
					t.Fatalf("round %d: get(%d) = %p, want %p", round, fd, got, ref[fd])
				}
				if got := tb.closed(fd); got != closed[fd] {
					t.Fatalf("round %d: closed(%d) = %v, want %v", round, fd, got, closed[fd])
				}
			}
			all := map[int32]*fdEntry{}
			for fd, e := range tb.all {
				if _, dup := all[fd]; dup {
					t.Fatalf("round %d: all yields fd %d twice", round, fd)
				}
				all[fd] = e
			}
			if !maps.Equal(all, ref) {
				t.Fatalf("round %d: all = %v, want %v", round, slices.Sorted(maps.Keys(all)), slices.Sorted(maps.Keys(ref)))
			}
		}
	}
}

// TestStubSize guards the size of what the builder keeps for every
// process it has seen (see proc): a field that pushes the stub into the
// next size class costs 16 bytes a process.
func TestStubSize(t *testing.T) {
	if n := unsafe.Sizeof(proc{}); n > 128 {
		t.Errorf("proc stub is %d bytes, more than 128", n)
	}
	if n := unsafe.Sizeof(task{}); n > 24 {
		t.Errorf("task is %d bytes, more than 24", n)
	}
}

// TestInternIdentity: equal identities share one memo, different ones
// (nil and empty argv too, and fields that differ only in where a string
// ends) do not, and an identity too long to intern still gets a memo.
func TestInternIdentity(t *testing.T) {
	b := newBuilder()
	a1 := b.internIdentity(identity{exe: "/bin/sh", argv: []string{"sh", "-c", "x"}, cwd: "/", comm: "sh"})
	a2 := b.internIdentity(identity{exe: "/bin/sh", argv: []string{"sh", "-c", "x"}, cwd: "/", comm: "sh"})
	if a1 != a2 {
		t.Error("equal identities got different memos")
	}
	distinct := []identity{
		{exe: "/bin/sh", argv: []string{"sh", "-c", "x"}, cwd: "/", comm: "sh"},
		{exe: "/bin/sh", argv: []string{"sh", "-cx"}, cwd: "/", comm: "sh"},
		{exe: "/bin/sh", argv: []string{"sh", "-c", "x", ""}, cwd: "/", comm: "sh"},
		{exe: "/bin/s", argv: []string{"hsh", "-c", "x"}, cwd: "/", comm: "sh"},
		{exe: "/bin/sh", cwd: "/", comm: "sh"},
		{exe: "/bin/sh", argv: []string{}, cwd: "/", comm: "sh"},
		{exe: "/bin/sh", argv: []string{""}, cwd: "/", comm: "sh"},
		{exe: "/bin/sh/", comm: "sh"},
		{exe: "/bin/sh", cwd: "/sh"},
	}
	seen := map[*identity]int{}
	for i, id := range distinct {
		m := b.internIdentity(id)
		if j, ok := seen[m]; ok {
			t.Errorf("identities %d and %d share a memo: %+v, %+v", j, i, distinct[j], id)
		}
		seen[m] = i
		if m.exe != id.exe || m.cwd != id.cwd || m.comm != id.comm || !slices.Equal(m.argv, id.argv) || (m.argv == nil) != (id.argv == nil) {
			t.Errorf("memo %+v, want %+v", *m, id)
		}
	}
	long := identity{exe: "/bin/x", argv: []string{string(make([]byte, maxIdentityKey))}}
	if m1, m2 := b.internIdentity(long), b.internIdentity(long); m1 == m2 || m1.argv[0] != long.argv[0] {
		t.Error("a long identity was interned, or its memo differs")
	}
}
