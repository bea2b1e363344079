package pipe_test

import (
	"fmt"
	"strings"
	"sync"

	"proctrail/internal/pipe"
)

// words is the batch of the examples.
type words struct{ w []string }

func newWords() *words      { return &words{w: make([]string, 0, pipe.Len)} }
func (b *words) reset()     { clear(b.w); b.w = b.w[:0] }
func (b *words) full() bool { return len(b.w) == pipe.Len }

// A producer reads ahead of its consumer; closing stop (here when the
// consumer returns) ends the producer early.
func ExamplePipe() {
	stop := make(chan struct{})
	p := pipe.New(stop, newWords, (*words).reset)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() {
		defer p.Close()
		b := p.Batch()
		for _, w := range strings.Fields("the quick brown fox jumps over the lazy dog") {
			if b.w = append(b.w, w); b.full() {
				if !p.Send(b) {
					return
				}
				b = p.Batch()
			}
		}
		p.Send(b)
	})
	for {
		b, ok := p.Take()
		if !ok {
			break
		}
		fmt.Println(len(b.w), "words:", strings.Join(b.w, " "))
	}
	// Output:
	// 9 words: the quick brown fox jumps over the lazy dog
}

// A line of three stages, as analyze reads, parses and builds: the stage
// in between works on each batch in place and passes it on, and the last
// consumer hands the batches back to the first producer.
func ExamplePipe_Then() {
	read := pipe.New(nil, newWords, (*words).reset)
	parsed := read.Then()
	go func() {
		defer read.Close()
		for i := 0; i < 600; i += pipe.Len {
			b := read.Batch()
			for j := i; j < min(i+pipe.Len, 600); j++ {
				b.w = append(b.w, fmt.Sprint(j))
			}
			read.Send(b)
		}
	}()
	go func() {
		defer parsed.Close()
		for {
			b, ok := read.Take()
			if !ok {
				return
			}
			for i, w := range b.w {
				b.w[i] = "#" + w
			}
			parsed.Send(b)
		}
	}()
	for {
		b, ok := parsed.Take()
		if !ok {
			break
		}
		fmt.Println(len(b.w), b.w[0], "…", b.w[len(b.w)-1])
	}
	// Output:
	// 256 #0 … #255
	// 256 #256 … #511
	// 88 #512 … #599
}
