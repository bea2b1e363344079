package pipe_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"proctrail/internal/pipe"
)

// batch is the batch of the tests: numbers, and the sequence number of
// the batch, which the consumer checks.
type batch struct {
	seq  int
	nums []int
}

// counted returns an alloc function for New that counts its calls in n,
// and a reset.
func counted(n *atomic.Int64) (func() *batch, func(*batch)) {
	alloc := func() *batch {
		n.Add(1)
		return &batch{nums: make([]int, 0, pipe.Len)}
	}
	reset := func(b *batch) { b.seq, b.nums = -1, b.nums[:0] }
	return alloc, reset
}

// produce sends n batches of k numbers each on p, batch i holding
// i*k, i*k+1, …, and closes p; it reports how many it sent.
func produce(p *pipe.Pipe[batch], n, k int) int {
	defer p.Close()
	for i := range n {
		b := p.Batch()
		if b.seq != -1 && b.seq != 0 || len(b.nums) != 0 {
			panic(fmt.Sprintf("Batch returned a batch not reset: seq %d, %d numbers", b.seq, len(b.nums)))
		}
		b.seq = i
		for j := range k {
			b.nums = append(b.nums, i*k+j)
		}
		if !p.Send(b) {
			return i
		}
	}
	return n
}

// check reports how b differs from batch seq of produce's with k numbers.
func check(b *batch, seq, k int) error {
	if b.seq != seq || len(b.nums) != k {
		return fmt.Errorf("batch %d of %d numbers, want batch %d of %d", b.seq, len(b.nums), seq, k)
	}
	for j, v := range b.nums {
		if v != seq*k+j {
			return fmt.Errorf("batch %d: number %d is %d, want %d", seq, j, v, seq*k+j)
		}
	}
	return nil
}

// noLeak fails t when, at its end, more goroutines run than at its start.
func noLeak(t *testing.T) {
	n := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > n {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("%d goroutines at the start, %d at the end:\n%s", n, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// TestPipe streams batches through a pipe, with and without a relay stage,
// and checks that the consumer gets them all, in order, intact while it
// holds them, and that the pipe allocates no more batches than its bound.
func TestPipe(t *testing.T) {
	const n, k = 2000, 7
	for _, tc := range []struct {
		name   string
		relays int
		slow   string // "", "producer" or "consumer": which side yields often
	}{
		{"direct", 0, ""},
		{"direct/slow producer", 0, "producer"},
		{"direct/slow consumer", 0, "consumer"},
		{"relayed", 1, ""},
		{"relayed twice/slow consumer", 2, "consumer"},
		{"relayed twice/slow producer", 2, "producer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeak(t)
			var allocs atomic.Int64
			alloc, reset := counted(&allocs)
			yield := func(side string) {
				if tc.slow == side {
					runtime.Gosched()
					time.Sleep(time.Microsecond)
				}
			}
			slowAlloc := func() *batch { yield("producer"); return alloc() }
			first := pipe.New(nil, slowAlloc, reset)
			var wg sync.WaitGroup
			wg.Go(func() { produce(first, n, k) })
			p := first
			for r := range tc.relays {
				in, out := p, p.Then()
				wg.Go(func() {
					defer out.Close()
					for {
						b, ok := in.Take()
						if !ok {
							return
						}
						for j := range b.nums {
							b.nums[j] += r + 1
						}
						if !out.Send(b) {
							return
						}
					}
				})
				p = out
			}
			added := tc.relays * (tc.relays + 1) / 2 // what the relays add to each number
			// The consumer checks that the batch taken before is still
			// intact after taking the next: the race detector sees it
			// too, should the producer write into it.
			var last *batch
			for seq := 0; ; seq++ {
				b, ok := p.Take()
				if last != nil {
					if err := check(last, seq-1, k); err != nil {
						t.Fatalf("the batch taken before, after taking the next: %v", err)
					}
				}
				if !ok {
					if seq != n {
						t.Fatalf("Take reported the end after %d batches, want %d", seq, n)
					}
					break
				}
				for j := range b.nums {
					b.nums[j] -= added
				}
				if err := check(b, seq, k); err != nil {
					t.Fatal(err)
				}
				last = b
				yield("consumer")
			}
			if _, ok := p.Take(); ok {
				t.Error("Take after the end returned a batch")
			}
			wg.Wait()
			bound := int64(pipe.Ahead + 3 + tc.relays*(pipe.Ahead+1))
			if got := allocs.Load(); got > bound {
				t.Errorf("%d batches allocated for %d sent, want at most %d", got, n, bound)
			}
		})
	}
}

// TestTakeHandsBackLate checks that Batch never returns a batch that the
// consumer still holds: one of the last two that Take returned.
func TestTakeHandsBackLate(t *testing.T) {
	noLeak(t)
	var allocs atomic.Int64
	alloc, reset := counted(&allocs)
	p := pipe.New(nil, alloc, reset)
	var (
		mu   sync.Mutex
		held = map[*batch]bool{}
		bad  atomic.Int64
	)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer p.Close()
		for i := range 5000 {
			b := p.Batch()
			mu.Lock()
			if held[b] {
				bad.Add(1)
			}
			mu.Unlock()
			b.seq = i
			if !p.Send(b) {
				return
			}
		}
	})
	var last, before *batch
	for {
		// Take is about to hand back before: the consumer lets go of it.
		mu.Lock()
		delete(held, before)
		mu.Unlock()
		b, ok := p.Take()
		if !ok {
			break
		}
		mu.Lock()
		held[b] = true
		mu.Unlock()
		before, last = last, b
		if b.seq%3 == 0 {
			runtime.Gosched()
		}
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("Batch returned a batch the consumer held %d times", n)
	}
	if allocs.Load() < 3 {
		t.Errorf("only %d batches allocated: the test tests too little", allocs.Load())
	}
}

// TestStop checks that closing the stop channel ends both sides, whether
// they wait or not.
func TestStop(t *testing.T) {
	t.Run("producer waiting in Send", func(t *testing.T) {
		noLeak(t)
		stop := make(chan struct{})
		var allocs atomic.Int64
		alloc, reset := counted(&allocs)
		p := pipe.New(stop, alloc, reset)
		sent := make(chan int)
		go func() { sent <- produce(p, 100, 1) }()
		// The consumer takes two batches and no more: the producer fills
		// the queue and waits.
		for range 2 {
			if _, ok := p.Take(); !ok {
				t.Fatal("Take reported the end")
			}
		}
		// Batches 0 to 4: two taken, Ahead waiting, one to send.
		for allocs.Load() < 3+pipe.Ahead {
			time.Sleep(time.Millisecond)
		}
		close(stop)
		select {
		case n := <-sent:
			if want := 2 + pipe.Ahead; n != want {
				t.Errorf("%d batches sent before the stop, want %d", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the producer did not give up")
		}
		if _, ok := p.Take(); ok {
			t.Error("Take after the stop returned a batch, with batches waiting")
		}
	})
	t.Run("consumer waiting in Take", func(t *testing.T) {
		noLeak(t)
		stop := make(chan struct{})
		p := pipe.New(stop, func() *batch { return new(batch) }, nil)
		took := make(chan bool)
		go func() {
			_, ok := p.Take()
			took <- ok
		}()
		time.Sleep(10 * time.Millisecond)
		close(stop)
		select {
		case ok := <-took:
			if ok {
				t.Error("Take returned a batch none sent")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the consumer did not give up")
		}
		if p.Send(p.Batch()) {
			t.Error("Send after the stop reported true")
		}
		p.Close()
	})
	t.Run("relayed", func(t *testing.T) {
		noLeak(t)
		stop := make(chan struct{})
		var allocs atomic.Int64
		alloc, reset := counted(&allocs)
		first := pipe.New(stop, alloc, reset)
		second := first.Then()
		var wg sync.WaitGroup
		wg.Go(func() { produce(first, 1000, 3) })
		wg.Go(func() {
			defer second.Close()
			for {
				b, ok := first.Take()
				if !ok || !second.Send(b) {
					return
				}
			}
		})
		for range 5 {
			if _, ok := second.Take(); !ok {
				t.Fatal("Take reported the end")
			}
		}
		close(stop)
		wg.Wait()
	})
}

// TestNilReset checks that a nil reset recycles nothing.
func TestNilReset(t *testing.T) {
	noLeak(t)
	var allocs atomic.Int64
	alloc, _ := counted(&allocs)
	p := pipe.New(nil, alloc, nil)
	go produce(p, 50, 2)
	for seq := 0; ; seq++ {
		b, ok := p.Take()
		if !ok {
			break
		}
		if err := check(b, seq, 2); err != nil {
			t.Fatal(err)
		}
	}
	if n := allocs.Load(); n != 50 {
		t.Errorf("%d batches allocated, want 50", n)
	}
}

// BenchmarkPipe measures the cost of the pipe per item, with batches of
// 1, 16 and Len items: what Len amortizes. An operation is one item.
func BenchmarkPipe(b *testing.B) {
	for _, k := range []int{1, 16, pipe.Len} {
		b.Run(fmt.Sprintf("items=%d", k), func(b *testing.B) {
			b.ReportAllocs()
			p := pipe.New(nil, func() *batch { return &batch{nums: make([]int, 0, k)} }, func(b *batch) { b.nums = b.nums[:0] })
			go func() {
				defer p.Close()
				for i := 0; i < b.N; {
					bt := p.Batch()
					for ; len(bt.nums) < k && i < b.N; i++ {
						bt.nums = append(bt.nums, i)
					}
					p.Send(bt)
				}
			}()
			sum := 0
			for {
				bt, ok := p.Take()
				if !ok {
					break
				}
				for _, v := range bt.nums {
					sum += v
				}
			}
			if want := b.N * (b.N - 1) / 2; sum != want {
				b.Fatalf("sum %d, want %d", sum, want)
			}
		})
	}
}
