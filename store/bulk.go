package store

import (
	"context"
	"sync"
)

// bulk gathers rows per table and writes them in batches on a goroutine
// of its own, so that the database's work overlaps the making of the next
// rows: Walk makes each process's output on the caller's goroutine, and
// the second core writes. At most bulkAhead batches wait, so memory is
// bounded by them whatever the capture's size.
//
// The transaction is the writer's between sync calls: a caller that runs
// a statement of its own calls sync first.
type bulk struct {
	ctx  context.Context
	w    wtx
	bufs map[string]*batch
	jobs chan *batch
	done chan struct{}
	mu   sync.Mutex
	err  error
	wg   sync.WaitGroup
	rows map[string]int64 // rows written per table
	free chan []any
}

// batch is rows of one table, one after the other in vals: one
// allocation per batch, not per row.
type batch struct {
	table string
	cols  []string
	vals  []any
}

// rows returns the batch's rows as slices of vals.
func (bt *batch) rows() [][]any {
	n := len(bt.cols)
	out := make([][]any, 0, len(bt.vals)/n)
	for i := 0; i+n <= len(bt.vals); i += n {
		out = append(out, bt.vals[i:i+n:i+n])
	}
	return out
}

// bulkRows is how many rows of a table go in one write.
const bulkRows = 4096

// bulkAhead is how many full batches may wait for the writer.
const bulkAhead = 4

func newBulk(ctx context.Context, w wtx) *bulk {
	b := &bulk{ctx: ctx, w: w, bufs: map[string]*batch{}, jobs: make(chan *batch, bulkAhead),
		done: make(chan struct{}), rows: map[string]int64{}, free: make(chan []any, bulkAhead+8)}
	go b.run()
	return b
}

func (b *bulk) run() {
	defer close(b.done)
	for j := range b.jobs {
		if b.failed() == nil {
			if err := b.w.copy(b.ctx, j.table, j.cols, j.rows()); err != nil {
				b.mu.Lock()
				if b.err == nil {
					b.err = err
				}
				b.mu.Unlock()
			}
		}
		clear(j.vals)
		select {
		case b.free <- j.vals[:0]:
		default:
		}
		b.wg.Done()
	}
}

func (b *bulk) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// add queues a row of table, whose columns are cols (the same slice for
// every row of a table); row is copied.
func (b *bulk) add(table string, cols []string, row ...any) error {
	bt := b.bufs[table]
	if bt == nil {
		bt = &batch{table: table, cols: cols}
		b.bufs[table] = bt
	}
	if bt.vals == nil {
		select {
		case bt.vals = <-b.free:
		default:
			bt.vals = make([]any, 0, bulkRows*len(cols))
		}
	}
	bt.vals = append(bt.vals, row...)
	b.rows[table]++
	if len(bt.vals) >= bulkRows*len(cols) {
		return b.send(bt)
	}
	return nil
}

func (b *bulk) send(bt *batch) error {
	if err := b.failed(); err != nil {
		return err
	}
	b.wg.Add(1)
	select {
	case b.jobs <- &batch{table: bt.table, cols: bt.cols, vals: bt.vals}:
	case <-b.ctx.Done():
		b.wg.Done()
		return b.ctx.Err()
	}
	bt.vals = nil
	return nil
}

// sync writes every row queued and waits for the writer: the
// transaction is the caller's until the next add.
func (b *bulk) sync() error {
	// In a fixed order, so that the writes are the same run to run.
	for _, t := range bulkOrder {
		if bt := b.bufs[t]; bt != nil && len(bt.vals) > 0 {
			if err := b.send(bt); err != nil {
				return err
			}
		}
	}
	b.wg.Wait()
	if err := b.failed(); err != nil {
		return err
	}
	return b.ctx.Err()
}

// close stops the writer; queued rows not synced are dropped.
func (b *bulk) close() {
	close(b.jobs)
	<-b.done
}

var bulkOrder = []string{"paths", "processes", "execs", "threads", "file_accesses", "process_paths", "net", "signals"}
