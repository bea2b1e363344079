package record

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"proctrail/formats"
)

// The recorder's per-message path without the kernel: the receive loop
// (listen) fed recorded netlink messages by a read function that copies
// them into its buffer as recvfrom would, through the timestamp, the
// counters, the mutex, the pcapng block, the zstd frame every 4 MiB and the
// write to a file. No root needed. Run with
//
//	go test ./record -run '^$' -bench Listen -cpuprofile cpu.out
//	go tool pprof -top record.test cpu.out
//
// The reported B/msg is the capture's compressed bytes per message: the
// timestamps are real (time.Now), so it includes their cost.

// benchMessages returns the netlink messages of src in the analyze
// testdata captures, in capture order.
func benchMessages(tb testing.TB, src formats.Source) [][]byte {
	tb.Helper()
	files, err := filepath.Glob("../testdata/analyze/*/capture.zst")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no testdata captures: %v", err)
	}
	var msgs [][]byte
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			tb.Fatal(err)
		}
		r, err := formats.NewReader(f, &formats.ReaderOptions{Name: name})
		if err != nil {
			tb.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
			if rec.Source == src {
				msgs = append(msgs, bytes.Clone(rec.Data))
			}
		}
		r.Close()
		f.Close()
	}
	if len(msgs) == 0 {
		tb.Fatalf("no %s messages in the testdata captures", src)
	}
	return msgs
}

// benchRecorder returns a recorder writing to a file in a temporary
// directory, as Record sets one up, without sockets.
func benchRecorder(tb testing.TB) *recorder {
	tb.Helper()
	out, err := newOutput(filepath.Join(tb.TempDir(), "bench.zst"), 0, 0, formats.Header{Hostname: "bench"}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &recorder{procQ: make(chan procReq, procQueueLen), out: out}
}

// feeder returns a read function for listen that yields n messages from
// msgs, round robin, then net.ErrClosed, which ends listen.
func feeder(msgs [][]byte, n int) func([]byte) (int, error) {
	i := 0
	return func(buf []byte) (int, error) {
		if i >= n {
			return 0, net.ErrClosed
		}
		m := msgs[i%len(msgs)]
		i++
		return copy(buf, m), nil
	}
}

func benchmarkListen(b *testing.B, src formats.Source) {
	msgs := benchMessages(b, src)
	r := benchRecorder(b)
	done := make(chan struct{})
	go func() { // the procfs reader's side of the queue, without the reads
		for range r.procQ {
		}
		close(done)
	}()
	var size int
	for _, m := range msgs {
		size += len(m)
	}
	b.SetBytes(int64(size / len(msgs)))
	b.ReportAllocs()
	b.ResetTimer()
	r.listen(src, feeder(msgs, b.N), func() { b.Error("listen stopped on an error") })
	b.StopTimer()
	if p := r.writeErr.Load(); p != nil {
		b.Fatal(*p)
	}
	if err := r.out.close(); err != nil {
		b.Fatal(err)
	}
	close(r.procQ)
	<-done
	if got := r.received[src].Load(); got != uint64(b.N) {
		b.Fatalf("received %d messages, want %d", got, b.N)
	}
	b.ReportMetric(float64(r.out.bytesWritten())/float64(b.N), "B/msg")
}

// BenchmarkListenAudit is the audit receive loop's per-message cost.
func BenchmarkListenAudit(b *testing.B) { benchmarkListen(b, formats.SourceAudit) }

// BenchmarkListenConnector is the connector's, with the procfs queue.
func BenchmarkListenConnector(b *testing.B) { benchmarkListen(b, formats.SourceConnector) }

// TestListenSteadyStateAllocs checks that the receive loop allocates
// nothing per message once its buffers have grown: 60,000 audit messages
// (about three 4 MiB frames closed and compressed) may allocate less than
// once per 1,000 messages.
func TestListenSteadyStateAllocs(t *testing.T) {
	msgs := benchMessages(t, formats.SourceAudit)
	r := benchRecorder(t)
	defer r.out.close()
	const n = 60000
	r.listen(formats.SourceAudit, feeder(msgs, n), func() {}) // warm up: grow the frame buffers
	allocs := testing.AllocsPerRun(3, func() {
		r.listen(formats.SourceAudit, feeder(msgs, n), func() {})
	})
	// AllocsPerRun counts the feeder closure too: one per run.
	if allocs-1 > n/1000 {
		t.Errorf("the audit receive loop allocates %.0f times per %d messages", allocs-1, n)
	}
	if p := r.writeErr.Load(); p != nil {
		t.Fatal(*p)
	}
}
