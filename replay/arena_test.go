package replay

import (
	"bytes"
	"fmt"
	"testing"
)

// TestArenaCopy copies messages of every size around a block's room and
// the own-allocation threshold into one arena, overwriting the source
// after each copy, and checks every copy still holds what it was given:
// across new blocks, in blocks that are not zeroed, and with no copy
// able to grow into the next one's bytes.
func TestArenaCopy(t *testing.T) {
	var a arena
	var copies, want [][]byte
	sizes := []int{1, 7, 100, arenaBlock/8 - 1, arenaBlock / 8, arenaBlock/8 + 1, arenaBlock, 3000}
	src := make([]byte, arenaBlock)
	for round := range 40 {
		for i, n := range sizes {
			msg := src[:n]
			for j := range msg {
				msg[j] = byte(round*31 + i*7 + j)
			}
			c := a.copy(msg)
			// A copy from a block ends where the next one begins; a
			// larger message is cloned on its own.
			if len(c) != n || n <= arenaBlock/8 && cap(c) != n {
				t.Fatalf("copy of %d bytes: len %d cap %d", n, len(c), cap(c))
			}
			copies = append(copies, c)
			want = append(want, bytes.Clone(msg))
			for j := range msg {
				msg[j] = 0xff // the source is the reader's frame: it is written again
			}
		}
	}
	for i := range copies {
		if !bytes.Equal(copies[i], want[i]) {
			t.Fatalf("copy %d (%d bytes) changed: %s", i, len(want[i]), diffAt(copies[i], want[i]))
		}
	}
	if c := a.copy(nil); c != nil {
		t.Errorf("copy of nothing: %q", c)
	}
}

func diffAt(got, want []byte) string {
	for i := range want {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d is %#x, want %#x", i, got[i], want[i])
		}
	}
	return "same"
}
