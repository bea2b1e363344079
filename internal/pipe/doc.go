// Package pipe is the read-ahead of proctrail's analysis: a bounded queue
// of batches from a producer goroutine to a consumer, which hands the
// batches the consumer is done with back to the producer.
//
// Analysis is a line of stages: read, decompress and decode each capture
// set; merge the sets and reassemble audit events; parse the events; build
// the model. A stage that runs on a goroutine of its own, ahead of the
// next, lets a second core do part of the work. The stages pass items in
// batches of up to [Len], so that a channel operation and a goroutine
// switch are paid once a batch, not once an item; and they recycle the
// batches, so that the steady state allocates none. Every stage of the
// program reads ahead through a [Pipe], with the one set of bounds below.
//
// # Ownership
//
// A batch is the producer's from [Pipe.Batch] until it passes it to
// [Pipe.Send]; then the consumer's from the call of [Pipe.Take] that
// returns it until the second call of Take after that one, which hands it
// back. Handing back one batch late lets the consumer keep pointers into
// the batch it took last while it takes the next: a consumer that returns
// an item pointing into its batch and must take the next batch to know
// what follows (replay's chains) needs exactly that. Once handed back, a
// batch is reset on the consumer's goroutine, so that a batch waiting for
// reuse holds no references, and then overwritten by the producer: nothing
// may point into it any more.
//
// # Bounds
//
// At most [Ahead] sent batches wait for the consumer, the producer fills
// one, the consumer holds two, and a batch is allocated only when none is
// free: a Pipe allocates at most Ahead+3 batches in all, and each
// [Pipe.Then] (up to nine) Ahead+1 more, whatever the length of the
// stream.
//
// # Stopping
//
// The producer calls [Pipe.Close] after its last Send, and Take returns
// false once the batches before are taken. A consumer that stops early
// closes the Pipe's stop channel instead: Send then returns false, the
// producer gives up, and Take returns false too, so no goroutine is left
// blocked. Whoever started the goroutines waits for them.
package pipe
