package analyze

import (
	"iter"
	"sync"

	"proctrail/internal/pipe"
)

// The output phase of BuildJSON in three stages, as the replay is: a
// goroutine makes each process's output (its State back from the spool,
// its identity) in the forest's order; a second one decodes its files and
// network entries and maps them to host paths, with a spool.Reader of
// its own; the caller's encodes them. The encoder gets the same
// processes in the same order, so the bytes are the same.

// outKind is what an outItem is.
type outKind uint8

const (
	outProc outKind = iota // a process; its file list, then its network list, follow
	outFile                // an entry of the file list
	outNet                 // an entry of the network list
	outEnd                 // the end of a list
)

// outItem is one item of the made outputs.
type outItem struct {
	kind             outKind
	hasFiles, hasNet bool     // outProc: which lists follow
	proc             *Process // outProc
	i                int32    // outFile, outNet: the index in its batch's files or nets
}

// outBatch is a batch of made outputs on their way to the encoder.
type outBatch struct {
	items []outItem
	files []File
	nets  []NetEntry
}

// outBatchLen is how many items a batch takes before it goes.
const outBatchLen = 4 * pipe.Len

func newOutBatch() *outBatch {
	return &outBatch{items: make([]outItem, 0, outBatchLen), files: make([]File, 0, outBatchLen)}
}

func (b *outBatch) reset() {
	clear(b.items)
	clear(b.files)
	clear(b.nets)
	b.items, b.files, b.nets = b.items[:0], b.files[:0], b.nets[:0]
}

// forestOrder yields the nodes of a forest in the order writeForest writes
// them: each node, then its kids' subtrees in order.
func forestOrder[N any](roots []N, kids func(N) []N) iter.Seq[N] {
	return func(yield func(N) bool) {
		stack := [][]N{roots}
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if len(*top) == 0 {
				stack = stack[:len(stack)-1]
				continue
			}
			n := (*top)[0]
			*top = (*top)[1:]
			if !yield(n) {
				return
			}
			stack = append(stack, kids(n))
		}
	}
}

// makeOutputs sends the outputs of the processes of ol's forest on out,
// in writeForest's order, until the end or until out stops (stopped is
// closed). The processes are made on a goroutine of its own (makeProcs),
// their lists on this one: the lists of the imported log's processes
// took as long as the processes themselves, and the encoder waited for
// both.
func makeOutputs(ol *outline, out *pipe.Pipe[outBatch], stopped chan struct{}) {
	defer out.Close()
	procs := pipe.New(stopped, newProcBatch, (*procBatch).reset)
	var wg sync.WaitGroup
	defer wg.Wait() // before out.Close: ol is the caller's once out is closed
	wg.Go(func() { makeProcs(ol, procs) })
	sp := ol.b.spool.NewReader()
	m := &outMaker{out: out, bt: out.Batch()}
	for {
		bt, ok := procs.Take()
		if !ok {
			break
		}
		for i := range bt.procs {
			po := &bt.procs[i]
			files, net := ol.lists(po, sp)
			if !m.add(outItem{kind: outProc, proc: po.out, hasFiles: files != nil, hasNet: net != nil}) ||
				files != nil && !addList(m, files, outFile, batchFiles) ||
				net != nil && !addList(m, net, outNet, batchNets) {
				return
			}
		}
	}
	if len(m.bt.items) > 0 {
		out.Send(m.bt)
	}
}

// makeProcs sends the processes of ol's forest, without their lists, on
// out, in writeForest's order, until the end or until out stops.
func makeProcs(ol *outline, out *pipe.Pipe[procBatch]) {
	defer out.Close()
	bt := out.Batch()
	for i := range forestOrder(ol.f.roots, ol.f.kids) {
		bt.procs = append(bt.procs, ol.proc(i))
		if len(bt.procs) == pipe.Len {
			if !out.Send(bt) {
				return
			}
			bt = out.Batch()
		}
	}
	if len(bt.procs) > 0 {
		out.Send(bt)
	}
}

// procBatch is a batch of processes on their way to makeOutputs.
type procBatch struct{ procs []procOut }

func newProcBatch() *procBatch { return &procBatch{procs: make([]procOut, 0, pipe.Len)} }

func (b *procBatch) reset() {
	clear(b.procs)
	b.procs = b.procs[:0]
}

// outMaker is makeOutputs' side: the batch it fills.
type outMaker struct {
	out *pipe.Pipe[outBatch]
	bt  *outBatch
}

// add appends it to the batch, sending the batch when full; false when
// out stopped.
func (m *outMaker) add(it outItem) bool {
	m.bt.items = append(m.bt.items, it)
	if len(m.bt.items) < outBatchLen {
		return true
	}
	if !m.out.Send(m.bt) {
		return false
	}
	m.bt = m.out.Batch()
	return true
}

// addList adds the entries of list, copied into the batch's slice of
// them, then the list's end.
func addList[T any](m *outMaker, list iter.Seq[*T], kind outKind, entries func(*outBatch) *[]T) bool {
	for x := range list {
		s := entries(m.bt)
		*s = append(*s, *x)
		if !m.add(outItem{kind: kind, i: int32(len(*s) - 1)}) {
			return false
		}
	}
	return m.add(outItem{kind: outEnd})
}

func batchFiles(b *outBatch) *[]File    { return &b.files }
func batchNets(b *outBatch) *[]NetEntry { return &b.nets }

// outReader is the encoder's side: the made outputs, item by item.
type outReader struct {
	in *pipe.Pipe[outBatch]
	bt *outBatch
	i  int
}

// next returns the next item, nil at the end. What it points into stays
// valid until the call after the next (see pipe.Pipe.Take).
func (r *outReader) next() *outItem {
	for r.bt == nil || r.i == len(r.bt.items) {
		bt, ok := r.in.Take()
		if !ok {
			return nil
		}
		r.bt, r.i = bt, 0
	}
	r.i++
	return &r.bt.items[r.i-1]
}

// proc returns the next process, skipping what its encoder left of the
// lists of the one before; nil at the end.
func (r *outReader) proc() *outItem {
	for {
		it := r.next()
		if it == nil || it.kind == outProc {
			return it
		}
	}
}

// outList yields the entries of the list of kind that comes next, to its
// end, which it reads even when the loop stops before it. The encoder
// takes a process's file list before its network list (it may leave out
// either: proc skips it).
func outList[T any](r *outReader, kind outKind, entries func(*outBatch) *[]T) iter.Seq[*T] {
	return func(yield func(*T) bool) {
		more := true
		for {
			it := r.next()
			if it == nil || it.kind != kind {
				return
			}
			if more {
				more = yield(&(*entries(r.bt))[it.i])
			}
		}
	}
}

// madeOutputs starts makeOutputs on a goroutine of its own and returns
// the encoder's reader of what it makes, and a stop to call once done
// with it (again is a no-op): it waits for the goroutine, so that ol is
// the caller's again.
func madeOutputs(ol *outline) (*outReader, func()) {
	stopped := make(chan struct{})
	in := pipe.New(stopped, newOutBatch, (*outBatch).reset)
	var wg sync.WaitGroup
	wg.Go(func() { makeOutputs(ol, in, stopped) })
	return &outReader{in: in}, sync.OnceFunc(func() {
		close(stopped)
		wg.Wait()
	})
}
