package analyze

import (
	"encoding/binary"
	"fmt"
	"slices"

	"proctrail/analyze/internal/procstore"
	"proctrail/analyze/internal/spool"
)

// A cut (`proctrail cut`) writes a capture that holds only the messages
// that concern a selection. Which they are, the filter knows: PlanCut
// replays the capture once, noting which processes each event got, then
// selects as the output does. An event concerns the selection when it got
// a process of the selection or one these depend on: their ancestors (a
// child inherits its parent's identity, fds, uid and container) and the
// processes whose mount namespace they joined. The cut replays the
// capture a second time, in the same order, and keeps the messages of the
// events CutPlan.Next says. The processes of the selection are marked
// in the cut (formats.ReasonSelected) after their first event, so that
// its analysis shows them and not the ancestors it holds for them.

// CutPlan is what the first pass of a cut decided. It is read with Next,
// once per event, in the order of the replay it was planned on.
type CutPlan struct {
	log      *spool.Spool // per event: the processes it got
	next     int64        // the next event's record in log
	concern  []bool       // by process index: its events are kept
	selected []bool       // by process index: of the selection
	marked   []bool       // by process index: its mark is written
	pids     []int32
	marks    []int32 // Next's
	refs     []ref   // Next's
	err      error
}

// PlanCut replays s, which a cut will replay again, and plans what of it
// the cut keeps for the processes opts select. It reads s to io.EOF and
// does not close it. The caller closes the plan.
func PlanCut(s EventSource, opts *Options) (*CutPlan, error) {
	log := spool.New(spoolSizes)
	var rec []byte
	ol, err := newOutlineTracking(s, opts, func(refs []ref) {
		rec = binary.AppendUvarint(rec[:0], uint64(len(refs)))
		for _, r := range refs {
			rec = binary.AppendUvarint(rec, uint64(r))
		}
		log.Append(rec)
	})
	if err != nil {
		log.Close()
		return nil, err
	}
	defer ol.close()
	b := ol.b
	n := b.procs.Len()
	c := &CutPlan{log: log, concern: slices.Clone(ol.keep), selected: ol.keep, marked: make([]bool, n), pids: ol.fam.pid}
	joined := make([]ref, n)
	firstSig := map[int]int64{}
	for p := range b.procs.All() {
		joined[p.Ref().Index()] = p.JoinedMountNS
		if p.FirstSignal != 0 {
			firstSig[p.Ref().Index()] = p.FirstSignal
		}
	}
	// The processes the selected ones depend on, to a fixed point.
	var todo []int
	for i, k := range c.concern {
		if k {
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		i := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		deps := []ref{ol.fam.parent[i], joined[i]}
		if first := firstSig[i]; first != 0 {
			// The processes its signals reached: their identity names them.
			deps = append(deps, b.signalTargets(first)...)
		}
		for _, d := range deps {
			if !d.None() && !c.concern[d.Index()] {
				c.concern[d.Index()] = true
				todo = append(todo, d.Index())
			}
		}
	}
	if err := b.spool.Err(); err != nil {
		log.Close()
		return nil, b.spoolErr()
	}
	return c, nil
}

// Selected is how many processes the plan selected.
func (c *CutPlan) Selected() int {
	n := 0
	for _, k := range c.selected {
		if k {
			n++
		}
	}
	return n
}

// Next reports whether the cut keeps the next event, and the pids of the
// selected processes to mark right after it (the first event of each);
// marks is valid until the next call. Past the planned events it keeps
// nothing; Err tells whether the plan could be read.
func (c *CutPlan) Next() (keep bool, marks []int32) {
	c.marks = c.marks[:0]
	if c.err != nil || c.next >= c.log.Size() {
		return false, nil
	}
	rec := c.log.Record(c.next)
	if rec == nil {
		c.err = c.log.Err()
		return false, nil
	}
	c.next += spool.Overhead + int64(len(rec))
	cnt, k := binary.Uvarint(rec)
	rec = rec[k:]
	c.refs = c.refs[:0]
	for range cnt {
		v, k := binary.Uvarint(rec)
		if k <= 0 || v == 0 || v > uint64(len(c.concern)) {
			c.err = fmt.Errorf("analyze: cut plan: bad record at offset %d", c.next)
			return false, nil
		}
		rec = rec[k:]
		c.refs = append(c.refs, procstore.Ref(v))
	}
	for _, r := range c.refs {
		keep = keep || c.concern[r.Index()]
	}
	if !keep {
		return false, nil
	}
	for _, r := range c.refs {
		if i := r.Index(); c.selected[i] && !c.marked[i] {
			c.marked[i] = true
			c.marks = append(c.marks, c.pids[i])
		}
	}
	return true, c.marks
}

// Err is the error of the plan's temporary file, if it had one.
func (c *CutPlan) Err() error { return c.err }

// Close releases the plan's temporary file.
func (c *CutPlan) Close() { c.log.Close() }
