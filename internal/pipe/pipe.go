package pipe

// The read-ahead of every stage: a producer puts up to Len items in a
// batch before it sends it, and up to Ahead sent batches wait for the
// consumer.
//
// Len amortizes the handoff: passing a batch costs two channel
// operations, ~200 ns when both sides are busy (BenchmarkPipe with
// batches of 1 item) and a goroutine wake-up, microseconds, when one
// waits; an item costs its producer 100 ns to a few µs. At Len the pipe
// costs ~3 ns an item, lost in the noise, and a batch of decoded messages
// (~64 KiB) still fits in a core's L2 cache.
//
// Ahead absorbs the uneven cost of the items: a capture is decompressed a
// frame at once, so its reader produces in bursts. More would absorb them
// a little better, but every batch in flight holds its items and what
// they point to, and the memory of a whole analysis is a few tens of MiB:
// measured, four batches of 512 cost 8 MiB of peak memory and no time.
const (
	Len   = 256
	Ahead = 2
)

// Pipe is a bounded queue of batches of type B from one producer
// goroutine to one consumer goroutine, recycling the batches (see the
// package documentation). The producer calls [Pipe.Batch], [Pipe.Send]
// and [Pipe.Close], the consumer [Pipe.Take]; a Pipe is safe for that use
// and no other: one goroutine on each side at a time. The zero Pipe is
// not usable; [New] makes one.
type Pipe[B any] struct {
	*pool[B]
	queue chan *B // sent batches, in order; closed by Close
	// relayed is set when the batches taken go on to another Pipe (see
	// Then): Take hands none back.
	relayed bool
	// The consumer's: the batches that the last call of Take returned and
	// the call before, nil when none.
	last, before *B
}

// pool is what the Pipes of one line (see Then) share.
type pool[B any] struct {
	stop  <-chan struct{}
	alloc func() *B
	reset func(*B)
	free  chan *B // batches handed back and reset, for Batch
}

// maxFree is how many free batches a line keeps: all it ever allocates,
// up to 9 calls of Then (Ahead+3 + 9*(Ahead+1)). A longer line would
// still work, and allocate more as its batches go to the garbage
// collector. The room costs a pointer a batch.
const maxFree = 32

// New returns a Pipe that ends when the producer closes it or when stop is
// closed; a nil stop is never closed. Batch calls alloc for a new batch
// when none is free; Take calls reset on each batch it hands back, which
// must empty it, keeping its capacity, and drop the references it holds.
// A nil reset hands back nothing: every batch is a new one.
func New[B any](stop <-chan struct{}, alloc func() *B, reset func(*B)) *Pipe[B] {
	return &Pipe[B]{
		pool:  &pool[B]{stop: stop, alloc: alloc, reset: reset, free: make(chan *B, maxFree)},
		queue: make(chan *B, Ahead),
	}
}

// Then returns a Pipe that continues p, for a stage between p's producer
// and the last consumer: the stage takes each batch from p, works on it
// and sends it on the returned Pipe (and closes it after the last), and the
// returned Pipe's consumer hands the batches back to p's producer. Taking
// from p then hands nothing back. The Pipes share p's stop channel and
// batches; the returned Pipe's Batch is p's. Then must be called before
// the first Take of p, at most once on each Pipe.
func (p *Pipe[B]) Then() *Pipe[B] {
	if p.relayed {
		panic("pipe: Then called twice on a Pipe")
	}
	p.relayed = true
	return &Pipe[B]{pool: p.pool, queue: make(chan *B, Ahead)}
}

// Batch returns an empty batch for the producer to fill: one handed back
// by the consumer, reset, or else a new one from alloc.
func (p *Pipe[B]) Batch() *B {
	select {
	case b := <-p.free:
		return b
	default:
		return p.alloc()
	}
}

// Send passes b to the consumer, waiting while Ahead batches wait already.
// It reports false, without sending, once the stop channel is closed: the
// producer then gives up. b is no longer the producer's either way.
func (p *Pipe[B]) Send(b *B) bool {
	// A stopped pipe fails at once, not at random when the queue has room.
	select {
	case <-p.stop:
		return false
	default:
	}
	select {
	case p.queue <- b:
		return true
	case <-p.stop:
		return false
	}
}

// Close tells the consumer that no batch follows. The producer calls it
// once, after its last Send, also after Send reported false.
func (p *Pipe[B]) Close() { close(p.queue) }

// Take returns the next batch, in the order sent, waiting for it. It
// reports false after the last batch of a closed Pipe, or once the stop
// channel is closed, batches waiting or not.
//
// The batch returned is the consumer's until the second call of Take
// after this one: each call first hands back the batch returned by the
// call before the previous one, so the batch returned last stays valid
// while the consumer waits for the next one, and after. On a Pipe
// continued by [Pipe.Then], Take hands nothing back: the batch is the
// stage's until it sends it on.
func (p *Pipe[B]) Take() (*B, bool) {
	if !p.relayed {
		if b := p.before; b != nil && p.reset != nil {
			p.reset(b)
			select {
			case p.free <- b:
			default: // only in a line of more than 9 Thens; the garbage collector takes it
			}
		}
		p.before, p.last = p.last, nil
	}
	select {
	case <-p.stop:
		return nil, false
	default:
	}
	select {
	case b, ok := <-p.queue:
		if !ok {
			return nil, false
		}
		if !p.relayed {
			p.last = b
		}
		return b, true
	case <-p.stop:
		return nil, false
	}
}
