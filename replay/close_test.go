package replay

import (
	"io"
	"runtime"
	"testing"
	"time"

	"proctrail/formats"
)

// TestCloseStopsGoroutines checks that Close ends every goroutine of a
// Stream, wherever its reading stopped: the readers waiting to send their
// batches, the merger too.
func TestCloseStopsGoroutines(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	files := []string{
		writeMixed(t, dir, "a.zst", formats.Header{CaptureID: "a", Start: t0}, t0.UnixNano(), 3000),
		writeMixed(t, dir, "b.zst", formats.Header{CaptureID: "b", Start: t0}, t0.UnixNano()+1000, 3000),
	}
	tests := []struct {
		name string
		read func(*Stream) error
	}{
		{"unread", func(*Stream) error { return nil }},
		{"Next, a few", func(s *Stream) error {
			for range 10 {
				if _, err := s.Next(); err != nil {
					return err
				}
			}
			return nil
		}},
		{"NextEvent, a few", func(s *Stream) error {
			for range 10 {
				if _, err := s.NextEvent(); err != nil {
					return err
				}
			}
			return nil
		}},
		{"NextEvent, all", func(s *Stream) error {
			for {
				if _, err := s.NextEvent(); err != nil {
					if err == io.EOF {
						return nil
					}
					return err
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			s, err := Open(files, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.read(s); err != nil {
				t.Fatal(err)
			}
			// Let the goroutines run ahead until they wait.
			time.Sleep(10 * time.Millisecond)
			s.Close()
			// Close waits for the goroutines' last deferred calls; their
			// exit follows at once.
			for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("%d goroutines before Open, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				}
			}
		})
	}
}
