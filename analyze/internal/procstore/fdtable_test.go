package procstore

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFDTable drives an FDTable and two maps (the representation it
// replaced) with the same random operations, on fds that fall inline, in
// the map, and from 64 up, and compares every answer.
func TestFDTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var tb *FDTable
		ref := map[int32]*FD{}
		closed := map[int32]bool{}
		span := int32([]int{3, 6, 12, 80, 300}[round%5])
		for range 400 {
			fd := rng.Int32N(span) - 1 // -1 too
			switch rng.IntN(4) {
			case 0, 1:
				e := &FD{Time: rng.Int64()}
				if tb == nil {
					tb = &FDTable{}
				}
				tb.Set(fd, e)
				ref[fd] = e
				delete(closed, fd)
			case 2:
				got := tb.Delete(fd)
				if got != ref[fd] {
					t.Fatalf("round %d: Delete(%d) = %p, want %p", round, fd, got, ref[fd])
				}
				delete(ref, fd)
			case 3:
				if tb == nil {
					tb = &FDTable{}
				}
				tb.MarkClosed(fd)
				closed[fd] = true
			}
			for fd := int32(-1); fd < span; fd++ {
				if got := tb.Get(fd); got != ref[fd] {
					t.Fatalf("round %d: Get(%d) = %p, want %p", round, fd, got, ref[fd])
				}
				if got := tb.Closed(fd); got != closed[fd] {
					t.Fatalf("round %d: Closed(%d) = %v, want %v", round, fd, got, closed[fd])
				}
			}
			all := map[int32]*FD{}
			for fd, e := range tb.All {
				if _, dup := all[fd]; dup {
					t.Fatalf("round %d: All yields fd %d twice", round, fd)
				}
				all[fd] = e
			}
			if !maps.Equal(all, ref) {
				t.Fatalf("round %d: All = %v, want %v", round, slices.Sorted(maps.Keys(all)), slices.Sorted(maps.Keys(ref)))
			}
		}
	}
}
