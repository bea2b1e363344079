package analyze

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"proctrail/formats"
	"proctrail/replay"
)

const (
	// finalizeGrace is how long, in capture time, a process's fd table
	// outlives its exit. Audit records reach the recorder through kauditd's
	// queue, later than the connector's exit event (milliseconds on an idle
	// machine, seconds under a backlog), and a close that arrives late
	// still finds its file.
	finalizeGrace = int64(10 * time.Second)
	// retireDelay is how long, in capture time, a process's state stays
	// in memory after its end (see retire): most late records come
	// within it, and each that comes later brings the state back once.
	retireDelay = int64(time.Second)
	// auditClockSlack bounds how far an audit event's header time (a
	// coarse clock, one jiffy at HZ 100, printed in milliseconds) reads
	// before the syscall's true time.
	auditClockSlack = int64(11 * time.Millisecond)
	// reuseSlack: the audit header clock is coarse (jiffies, printed in
	// milliseconds), so a header may read up to a few ms before the
	// connector's time of the same process's fork.
	reuseSlack = int64(10 * time.Millisecond)
	// clockTick is USER_HZ, the unit of /proc/PID/stat's start time; it is
	// 100 Hz on every architecture Linux supports.
	clockTick = int64(10 * time.Millisecond)
	// maxDirs bounds the directory inode table used to resolve dirfds
	// nobody opened in view; it is cleared when full.
	maxDirs = 1 << 16
	// maxFDDepth bounds how many ancestors an inherited fd is looked up in.
	maxFDDepth = 4
	// maxCloneWindow bounds how long after a process's creation its
	// creator's clone record may still name it.
	maxCloneWindow = int64(60 * time.Second)
)

// How a process's parent was learned, weakest first.
const (
	parentNone      = iota
	parentReported  // procfs PPID, audit ppid=, exit event: the current parent, maybe after reparenting
	parentClone     // the creator's clone/fork/vfork audit record
	parentConnector // the connector's fork event
)

// task is one thread of a process; start or end 0 means unknown or alive.
type task struct {
	start, end int64
	tid        int32
	// snap marks a thread listed by a procfs snapshot, not (yet) seen
	// created by the connector.
	snap bool
}

// identity is what a process runs as.
type identity struct {
	exe  string
	argv []string
	cwd  string
	comm string
}

// execEntry merges one exec as the three sources see it: the connector
// (time), audit (exe, argv, cwd, comm) and procfs (the same, read later and
// best effort).
type execEntry struct {
	t                 int64
	conn, audit, pfs  bool
	exe, cwd, comm    string
	argv              []string
	path              string // the path execve was given, resolved
	pExe, pCwd, pComm string
	pArgv             []string
	hasArgv           bool
}

type commChange struct {
	t    int64
	comm string
}

// access is an open file: its record in the spool, and the fds of its
// process that refer to it (refs). It closes with the last of them.
type access struct {
	off, close int64
	owner      int32 // the seq of the process that opened it
	refs       int
}

// fdEntry is one entry of a process's fd table.
type fdEntry struct {
	path    string
	acc     *access // nil when the fd's access is not tracked
	cloexec bool
	t       int64 // when it was set
}

// proc is the builder's state for one process: a stub, and its
// procState, which goes to the spool when the process is retired
// (retireDelay after its end) and comes back when something needs it: see
// [builder.retire] and [builder.get]. The stub goes too when the process
// is finalized (see [builder.freeze]).
// Code that reaches a proc through a link (parent, kparent, prev,
// setnsTarget, byPID, a pending clone's creator) calls get before it
// reads the state, or stub for the stub's fields alone.
type proc struct {
	*procState       // nil while retired
	seq        int32 // p's index in builder.procs
	pid        int32
	// What expire and finalize use, kept here so that they need not
	// bring a retired process back (with end, tasks, fds).
	finalized, queued bool
	retireQueued      bool
	parent            procLink
	// retired is the offset+1 of the state's last record in the spool;
	// 0 when it was never retired.
	retired int64
	// files and lastFile are the offset+1 of p's first and last file
	// access in the builder's spool; 0: none.
	files, lastFile int64
	end             int64
	tasks           []task   // tasks[0] is the main thread
	fds             *fdTable // nil: empty
	// The fields are in this order so that a stub takes 112 bytes: one
	// is in memory for every process alive or ended recently.
}

// procLink refers to a proc that may be retired: builder.get brings it
// back.
// It holds the proc's seq+1 (0: no proc), never a pointer: a frozen proc
// has no stub in memory, and a thawed one a new stub (see freeze).
type procLink struct{ i int32 }

func link(p *proc) procLink {
	if p == nil {
		return procLink{}
	}
	return procLink{p.seq + 1}
}

// none reports whether l refers to no proc.
func (l procLink) none() bool { return l.i == 0 }

// seq is the seq of l's proc; l must not be none.
func (l procLink) seq() int { return int(l.i) - 1 }

// procState is what a proc holds besides its stub.
type procState struct {
	ppid      int32
	parentSrc int
	kparent   procLink // the parent the connector's fork event named
	prev      procLink // the previous incarnation of pid

	start, firstSeen int64
	forkSeen         bool // its creation is in the capture (connector fork)
	auditCreated     bool // a clone record names it, no connector fork
	snapshot         bool
	startTicks       uint64
	forkTS           uint64

	exited, core     bool
	exitCode, signal int
	auditExit        bool
	auditExitCode    int
	auditExitT       int64
	auditExitH       int64 // exit_group's header time
	uid, uidT        int64
	base             identity
	baseSet          bool
	// firstComm and firstExe are those of the first audit record that
	// named the process, when it was unknown then: the last resort of
	// its identity (audit alone, a child forked in a pid namespace).
	firstComm, firstExe string
	forkExecs           int // len(parent.execs) when it was forked
	execs               []*execEntry
	comms               []commChange
	cwd                 string // tracked current cwd
	firstCwd            string
	pivot               string // new root from pivot_root
	containerID         string
	cgroupSeen          bool
	setnsTarget         procLink
	command             bool
	auditExeced         bool
}

type dirKey struct {
	dev   string
	inode string
}

type builder struct {
	procs      []*proc
	byPID      map[int32]procLink
	byTID      map[int32]*proc
	toFinalize procQueue
	toRetire   procQueue
	now        int64
	dirs       map[dirKey]string
	commands   []int32 // the seqs of the processes the recorder started
	boot       int64   // the capture's boot time, ns since the Unix epoch; 0 if unknown
	runtimes   map[string]string
	exes       map[dirKey]string      // (dev, inode) of executed files → exe
	pending    map[int32]pendingClone // clone records ahead of their child's fork event
	strs       map[string]string      // interned strings; see intern
	cgroups    map[string]cgroupInfo  // ContainerFromCgroup's results, by cgroup file
	accesses   []access               // the rest of the slab openAccess takes from
	spool      *fileSpool             // the file accesses of every process, retired states
	loaded     []*proc                // states brought back since the last settle
	reloads    int                    // states brought back during the replay
	thaws      int                    // stubs brought back during the replay
	auditOnly  bool                   // the source has audit alone; see auditEnded
	stateBuf   []byte                 // encodeState's and freeze's
	frozen     []int64                // by seq: offset+1 of a frozen stub's record; see freeze
	unfrozen   []*proc                // stubs thawed or finalized since the last settle
	memos      []procMemo             // by seq, the output's; see memo
	conts      []string               // the container ids of memos
	contIndex  map[string]int32       // conts' indexes
	ids        map[string]*identity   // interned identities; see internIdentity
	idKey      []byte                 // internIdentity's
}

// cgroupInfo is a result of ContainerFromCgroup.
type cgroupInfo struct{ id, runtime string }

// maxCgroups bounds the builder's cache of ContainerFromCgroup results.
const maxCgroups = 1024

// containerFromCgroup is ContainerFromCgroup, cached: most processes share
// their cgroup file with others.
func (b *builder) containerFromCgroup(cgroup string) (id, runtime string) {
	if r, ok := b.cgroups[cgroup]; ok {
		return r.id, r.runtime
	}
	id, runtime = ContainerFromCgroup(cgroup)
	if len(b.cgroups) >= maxCgroups || len(cgroup) > maxInternLen*16 {
		return id, runtime
	}
	b.cgroups[strings.Clone(cgroup)] = cgroupInfo{strings.Clone(id), runtime}
	return id, runtime
}

// pendingClone is a clone record whose child the connector has not shown
// yet: the two sources race, and the creator's clone record often comes
// first.
type pendingClone struct {
	creator procLink
	t       int64
	parent  bool // CLONE_PARENT is set, or unknown (clone3)
}

const (
	// maxPending bounds the pending clone records.
	maxPending = 4096
	// pendingWindow bounds the time between a clone record and its
	// child's fork event.
	pendingWindow = int64(2 * time.Second)
)

func newBuilder() *builder {
	return &builder{
		byPID:    map[int32]procLink{},
		byTID:    map[int32]*proc{},
		dirs:     map[dirKey]string{},
		runtimes: map[string]string{},
		exes:     map[dirKey]string{},
		pending:  map[int32]pendingClone{},
		strs:     map[string]string{},
		cgroups:  map[string]cgroupInfo{},
		spool:    newFileSpool(),
	}
}

// Build replays s through the filter and returns the model of what
// happened, reduced by opts (nil for everything). It reads s to io.EOF and
// does not close it. The capture alone determines the result: Build uses
// no clock, no map order and no live system state.
//
// The process connector is the authority on lifetimes, parentage and
// threads; audit adds exe, argv, cwd, files and namespaces; procfs records
// add the processes alive at the start, cgroups (containers) and
// identities when audit is off. See the package documentation for the
// rules.
func Build(s EventSource, opts *Options) (*Model, error) {
	b, o, err := replayEvents(s, opts)
	if err != nil {
		return nil, err
	}
	defer b.spool.close()
	m, err := b.model(s.Info(), o)
	if err == nil {
		err = b.spoolErr()
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// spoolErr is the error of the file access spool, if it had one.
func (b *builder) spoolErr() error {
	if b.spool.err != nil {
		return fmt.Errorf("analyze: temporary file of file accesses: %w", b.spool.err)
	}
	return nil
}

// replayEvents checks opts and replays s through a new builder.
func replayEvents(s EventSource, opts *Options) (*builder, *Options, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.PathGlob != "" {
		if _, err := path.Match(o.PathGlob, "x"); err != nil {
			return nil, nil, fmt.Errorf("analyze: path pattern %q: %w", o.PathGlob, err)
		}
	}
	b := newBuilder()
	if bt := s.Info().BootTime; !bt.IsZero() {
		b.boot = bt.UnixNano()
	}
	b.auditOnly = s.Info().AuditOnly
	raw := make(chan *eventBatch, batchesAhead)
	batches := make(chan *eventBatch, batchesAhead)
	free := make(chan *eventBatch, 2*batchesAhead+3)
	go readEvents(s, raw, free)
	go parseEvents(raw, batches)
	var err error
	for bt := range batches {
		for i := range bt.events {
			b.event(&bt.events[i])
		}
		err = bt.err
		clear(bt.events) // drop the references to the events
		bt.events, bt.items = bt.events[:0], bt.items[:0]
		select {
		case free <- bt:
		default:
		}
	}
	if err != io.EOF {
		b.spool.close()
		return nil, nil, fmt.Errorf("analyze: %w", err)
	}
	b.expire(1<<63 - 1)
	b.settle(true)
	for _, p := range b.procs {
		if p != nil {
			b.retire(p)
		}
	}
	// What only the events needed goes before the model is made.
	b.byPID, b.byTID, b.dirs, b.exes, b.pending, b.strs = nil, nil, nil, nil, nil, nil
	b.toFinalize, b.toRetire = procQueue{}, procQueue{}
	return b, &o, nil
}

// How far readEvents runs ahead of the builder: batchesAhead batches of
// eventBatchLen events.
const (
	eventBatchLen = 128
	batchesAhead  = 2
)

// parsedEvent is an event with its audit records parsed, when it has a
// syscall the builder applies.
type parsedEvent struct {
	ev replay.Event
	c  call
	ok bool // c holds ev's syscall
}

// eventBatch is what readEvents sends: events, and after the last batch's
// events the error that ended the source (io.EOF at its end).
type eventBatch struct {
	events []parsedEvent
	items  []pathItem // the calls' PATH items
	err    error
}

// readEvents runs on a goroutine of its own: it reads s to its end or
// first error, in batches, and closes out after the batch holding the
// error. parseEvents, on another, parses their audit events (the pure
// half of the work on them, most of its cost) while the builder applies
// the batches before, in order, so the result is the same as without
// them. (Reading and parsing on one goroutine made it the pipeline's
// slowest stage: analyze of the issue-4 workload took 84 ms, 78 ms now.)
func readEvents(s EventSource, out chan<- *eventBatch, free <-chan *eventBatch) {
	defer close(out)
	bt := &eventBatch{events: make([]parsedEvent, 0, eventBatchLen)}
	for {
		ev, err := s.NextEvent()
		if err != nil {
			bt.err = err
			out <- bt
			return
		}
		bt.events = append(bt.events, parsedEvent{ev: ev})
		if len(bt.events) == eventBatchLen {
			out <- bt
			select {
			case bt = <-free:
			default:
				bt = &eventBatch{events: make([]parsedEvent, 0, eventBatchLen)}
			}
		}
	}
}

// parseEvents parses the audit events of the batches from in, in order,
// and passes the batches on.
func parseEvents(in <-chan *eventBatch, out chan<- *eventBatch) {
	defer close(out)
	var ps parser
	for bt := range in {
		for i := range bt.events {
			if pe := &bt.events[i]; pe.ev.Audit != nil {
				pe.ok, bt.items = ps.parse(&pe.c, pe.ev.Audit, pe.ev.Time, bt.items)
			}
		}
		out <- bt
	}
}

func (b *builder) event(pe *parsedEvent) {
	ev := &pe.ev
	if ev.Time > b.now {
		b.now = ev.Time
	}
	switch {
	case ev.Proc != nil:
		b.connector(ev.Proc, b.connTime(ev.Proc, ev.Time))
	case ev.Audit != nil:
		if pe.ok {
			b.audit(&pe.c)
		}
	case ev.ProcFS != nil:
		b.procfs(ev.ProcFS, ev.Time)
	}
	b.expire(b.now)
	b.settle(true)
}

// Bounds on a connector event's delivery delay (capture time minus kernel
// time); outside them the kernel time is not trusted.
const (
	maxDeliveryDelay = int64(5 * time.Second)
	maxClockSkew     = int64(10 * time.Millisecond)
)

// connTime is the time of a connector event: its kernel timestamp
// (CLOCK_MONOTONIC since boot) on the capture's boot time, which is exact,
// where the capture time can lag by milliseconds when the recorder reads a
// burst of queued messages. A machine that slept since boot has a
// monotonic clock behind the wall clock: when the two disagree by more
// than a delivery delay could explain, the capture time is used.
func (b *builder) connTime(e *replay.ProcEvent, capT int64) int64 {
	if b.boot == 0 || e.Timestamp == 0 || e.Timestamp > 1<<62 {
		return capT
	}
	k := b.boot + int64(e.Timestamp)
	if d := capT - k; d < -maxClockSkew || d > maxDeliveryDelay {
		return capT
	}
	return k
}

// newProc starts a new incarnation of pid at t.
func (b *builder) newProc(pid int32, t int64) *proc {
	p := &proc{seq: int32(len(b.procs)), pid: pid, tasks: []task{{tid: pid, start: t}}, procState: &procState{start: t, firstSeen: t, uid: -1}}
	if old := b.get(b.byPID[pid]); old != nil {
		old.prev = procLink{} // one incarnation back is enough for late audit
		p.prev = link(old)
	}
	b.procs = append(b.procs, p)
	b.frozen = append(b.frozen, 0)
	b.byPID[pid] = link(p)
	return p
}

// implicit returns the current process of pid, creating one whose creation
// was not seen when there is none.
func (b *builder) implicit(pid int32, t int64) *proc {
	if p := b.get(b.byPID[pid]); p != nil {
		return p
	}
	return b.newProc(pid, t)
}

func (p *proc) setParent(parent *proc, src int) {
	if parent == p {
		return
	}
	p.parent, p.parentSrc = link(parent), src
	if parent != nil {
		p.ppid = parent.pid
	}
}

// reportedParent records a parent the kernel or procfs reports now, used
// only when nothing better is known.
func (b *builder) reportedParent(p *proc, ppid int32, t int64) {
	if p.parentSrc > parentReported || ppid <= 0 || ppid == p.pid {
		return
	}
	if p.parentSrc == parentReported && p.ppid == ppid {
		return
	}
	p.ppid = ppid
	p.setParent(b.implicit(ppid, t), parentReported)
}

func (p *proc) setUID(uid int64, t int64) {
	if t >= p.uidT || p.uid < 0 {
		p.uid, p.uidT = uid, t
	}
}

// live reports whether some task of p is alive.
func (p *proc) live() bool {
	for _, tk := range p.tasks {
		if tk.end == 0 {
			return true
		}
	}
	return false
}

// markEnded ends p at t and queues it for finalization.
func (b *builder) markEnded(p *proc, t int64) {
	p.end = t
	if !p.queued {
		p.queued = true
		b.toFinalize.q = append(b.toFinalize.q, p)
	}
	if !p.retireQueued {
		p.retireQueued = true
		b.toRetire.q = append(b.toRetire.q, p)
	}
}

// revive undoes an end that proved premature (a task of p acted later).
func (p *proc) revive() {
	if !p.finalized {
		p.end, p.exited = 0, false
	}
}

// expire retires the processes that ended more than retireDelay before
// now and finalizes those that ended more than finalizeGrace before.
func (b *builder) expire(now int64) {
	b.toRetire.expire(now, retireDelay, func(p *proc) {
		p.retireQueued = false
		b.retire(p)
	})
	b.toFinalize.expire(now, finalizeGrace, func(p *proc) {
		p.queued = false
		if p.end != 0 {
			b.finalize(p)
		}
	})
}

// procQueue holds processes in the order they ended, until a time after
// their end.
type procQueue struct {
	q    []*proc
	head int
}

// expire takes out, oldest first, the processes that ended at least wait
// before now (all at the end of time) or are no longer ended, and calls f
// on each.
func (q *procQueue) expire(now, wait int64, f func(*proc)) {
	for q.head < len(q.q) {
		p := q.q[q.head]
		if p.end != 0 && now-p.end < wait && now != 1<<63-1 {
			break
		}
		q.q[q.head] = nil
		q.head++
		f(p)
	}
	if q.head > 64 && q.head*2 > len(q.q) {
		n := copy(q.q, q.q[q.head:])
		clear(q.q[n:])
		q.q, q.head = q.q[:n], 0
	}
}

// len is the number of processes waiting.
func (q *procQueue) len() int { return len(q.q) - q.head }

// finalize closes what p left open at its end and frees its fd table.
func (b *builder) finalize(p *proc) {
	for _, e := range p.fds.all {
		if e.acc != nil && e.acc.owner == p.seq && e.acc.close == 0 {
			b.closeAccess(e.acc, p.end)
		}
	}
	p.fds = nil
	for _, tk := range p.tasks {
		if b.byTID[tk.tid] == p {
			delete(b.byTID, tk.tid)
		}
	}
	p.finalized = true
	b.unfrozen = append(b.unfrozen, p) // see settle
}

// connector applies one process connector event.
func (b *builder) connector(e *replay.ProcEvent, t int64) {
	switch e.Kind {
	case replay.ProcFork:
		if e.ChildPID != e.ChildTGID {
			b.forkThread(e, t)
		} else {
			b.forkProcess(e, t)
		}
	case replay.ProcExec:
		b.connExec(e, t)
	case replay.ProcExit:
		b.exit(e, t)
	case replay.ProcComm:
		if e.PID == e.TGID {
			p := b.implicit(e.TGID, t)
			p.comms = append(p.comms, commChange{t, b.intern(e.Comm)})
		}
	case replay.ProcUID:
		b.implicit(e.TGID, t).setUID(int64(e.RealID), t)
	case replay.ProcCoredump:
		b.implicit(e.TGID, t).core = true
	}
}

func (b *builder) forkProcess(e *replay.ProcEvent, t int64) {
	pid := e.ChildTGID
	var parent *proc
	if e.ParentTGID > 0 && e.ParentTGID != pid {
		parent = b.implicit(e.ParentTGID, t)
	}
	if old := b.get(b.byPID[pid]); old != nil {
		if !old.forkSeen && old.end == 0 && sameStart(old, e, t) {
			// Its snapshot or an early record came before its fork event.
			old.forkSeen, old.forkTS = true, e.Timestamp
			if old.snapshot {
				old.start = t
			} else {
				old.start = min(old.start, t) // its audit records came first
			}
			old.tasks[0].start = old.start
			// The connector reports its threads from its fork on: a
			// snapshot's list, read later, is redundant, and its threads
			// would be counted twice.
			old.tasks = slices.DeleteFunc(old.tasks, func(tk task) bool {
				if tk.snap && b.byTID[tk.tid] == old {
					delete(b.byTID, tk.tid)
				}
				return tk.snap
			})
			creator := b.get(old.parent)
			fromClone := old.parentSrc == parentClone
			old.setParent(parent, parentConnector)
			old.kparent = link(parent)
			if fromClone && creator != nil {
				// Its creator's clone record and its own records came
				// first (the sources race).
				b.cloneParent(old, creator)
			}
			b.inherit(old, b.get(old.parent))
			return
		}
		if old.end == 0 {
			// Its exit was lost: the pid is new again.
			for i := range old.tasks {
				if old.tasks[i].end == 0 {
					old.tasks[i].end = t
				}
			}
			b.markEnded(old, t)
		}
	}
	p := b.newProc(pid, t)
	p.forkSeen, p.forkTS = true, e.Timestamp
	p.ppid = e.ParentTGID
	p.setParent(parent, parentConnector)
	p.kparent = link(parent)
	if pc, ok := b.pending[pid]; ok {
		delete(b.pending, pid)
		if absDiff(pc.t, t) < pendingWindow && pc.parent {
			b.cloneParent(p, b.get(pc.creator))
		}
	}
	b.inherit(p, b.get(p.parent))
}

// cloneParent makes creator the parent of ch when the kernel's parent of
// ch is the creator's own kernel parent: the mark of CLONE_PARENT.
func (b *builder) cloneParent(ch, creator *proc) {
	if creator == ch || ch.parent == link(creator) || ch.kparent.none() || ch.kparent != creator.kparent {
		return
	}
	ch.setParent(creator, parentClone)
	ch.forkExecs = len(creator.execs)
}

// sameStart reports whether p, known before its fork event, is the process
// that fork created: its procfs start time matches the fork's timestamp
// (both count from boot), or it was first seen just before.
func sameStart(p *proc, e *replay.ProcEvent, t int64) bool {
	if p.startTicks != 0 && e.Timestamp != 0 {
		d := int64(p.startTicks)*clockTick - int64(e.Timestamp)
		return d > -2*clockTick && d < 2*clockTick
	}
	return !p.snapshot && t-p.firstSeen < int64(time.Second)
}

// inherit gives a new child what fork copies from its parent.
func (b *builder) inherit(p, parent *proc) {
	if parent == nil {
		return
	}
	p.uid, p.uidT = parent.uid, parent.uidT
	p.cwd = parent.cwd
	p.forkExecs = len(parent.execs)
}

func (b *builder) forkThread(e *replay.ProcEvent, t int64) {
	delete(b.pending, e.ChildPID)
	p := b.implicit(e.ChildTGID, t)
	if p.end != 0 {
		p.revive()
	}
	if i := slices.IndexFunc(p.tasks, func(tk task) bool { return tk.snap && tk.tid == e.ChildPID }); i >= 0 {
		p.tasks[i] = task{tid: e.ChildPID, start: t}
	} else {
		p.tasks = append(p.tasks, task{tid: e.ChildPID, start: t})
	}
	b.byTID[e.ChildPID] = p
}

func (b *builder) connExec(e *replay.ProcEvent, t int64) {
	p := b.implicit(e.TGID, t)
	if p.end != 0 {
		p.revive()
	}
	// de_thread: every other thread died; the execing one is the leader now.
	for i := range p.tasks {
		if i == 0 {
			p.tasks[i].end = 0
		} else if p.tasks[i].end == 0 {
			p.tasks[i].end = t
		}
	}
	for i := lastIndex(p.execs, func(x *execEntry) bool { return x.conn }) + 1; i < len(p.execs); i++ {
		if x := p.execs[i]; !x.conn {
			x.conn, x.t = true, t
			return
		}
	}
	p.execs = append(p.execs, &execEntry{t: t, conn: true})
}

func lastIndex[T any](s []T, f func(T) bool) int {
	for i := len(s) - 1; i >= 0; i-- {
		if f(s[i]) {
			return i
		}
	}
	return -1
}

// exit ends a task. The process ends with its last task, whose status is
// the process's: every task of an exit_group or a fatal signal carries the
// group status, a main thread that called pthread_exit carries 0 and the
// process lives on with its other threads.
func (b *builder) exit(e *replay.ProcEvent, t int64) {
	p := b.get(b.byPID[e.TGID])
	main := e.PID == e.TGID
	if p == nil || (main && p.end != 0 && p.tasks[0].end != 0 && p.finalized) {
		p = b.newProc(e.TGID, t)
	}
	b.reportedParent(p, e.ParentTGID, t)
	if main {
		p.tasks[0].end = t
	} else {
		i := lastIndex(p.tasks, func(tk task) bool { return tk.tid == e.PID && tk.end == 0 })
		if i < 0 {
			p.tasks = append(p.tasks, task{tid: e.PID})
			i = len(p.tasks) - 1
		}
		p.tasks[i].end = t
		if b.byTID[e.PID] == p {
			delete(b.byTID, e.PID)
		}
	}
	code, sig := e.ExitStatus()
	// A main thread that dies of a signal or exits with a status other
	// than pthread_exit's 0 takes the whole group with it: threads whose
	// exit was lost end with it.
	group := main && (sig != 0 || code != 0 || p.auditExit)
	if (group || !p.live() || p.end != 0) && (p.end == 0 || t >= p.end) {
		p.exited = true
		p.exitCode, p.signal = code, sig
		p.core = p.core || e.CoreDumped()
		b.markEnded(p, t)
	}
}

// procfs applies one of the recorder's procfs records.
func (b *builder) procfs(r *formats.ProcRecord, t int64) {
	if r.Kind == formats.ProcSnapshot {
		if r.Gone {
			return
		}
		p := b.implicit(r.PID, t)
		if !p.forkSeen {
			p.snapshot = true
		}
		b.enrich(p, r, t, true)
		return
	}
	p := b.get(b.byPID[r.PID])
	if p == nil {
		if r.Gone {
			return
		}
		p = b.newProc(r.PID, t)
	} else if q := b.get(p.prev); q != nil && r.StartTicks != 0 && q.forkTS != 0 && p.forkTS != 0 {
		// A read queued for the previous incarnation of a reused pid.
		at := int64(r.StartTicks) * clockTick
		if absDiff(at, int64(q.forkTS)) < absDiff(at, int64(p.forkTS)) {
			p = q
		}
	}
	if r.Kind == formats.ProcCommand {
		p.command = true
		b.commands = append(b.commands, p.seq)
	}
	if r.Gone {
		return
	}
	b.enrich(p, r, t, !p.forkSeen)
	if r.Kind == formats.ProcExec || r.Kind == formats.ProcCommand {
		if len(p.execs) > 0 {
			x := p.execs[len(p.execs)-1]
			if !x.pfs {
				x.pfs = true
				x.pExe, x.pCwd, x.pComm = b.procExe(r.Exe), b.intern(r.Cwd), b.intern(r.Comm)
				if len(r.Cmdline) > 0 && !(len(r.Cmdline) == 1 && r.Cmdline[0] == "") {
					x.pArgv = b.internStrings(r.Cmdline)
				}
			}
		}
	}
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// enrich takes from a procfs record what the other sources may lack.
// ident says whether its exe, cmdline and cwd describe p's base
// identity (a snapshot, or a process whose creation was not seen).
func (b *builder) enrich(p *proc, r *formats.ProcRecord, t int64, ident bool) {
	if p.startTicks == 0 {
		p.startTicks = r.StartTicks
	}
	if p.uid < 0 {
		p.uid, p.uidT = int64(r.UIDs[0]), t
	}
	if !p.forkSeen {
		b.reportedParent(p, r.PPID, t)
	}
	if ident && !p.baseSet && len(p.execs) == 0 {
		p.baseSet = true
		p.base = b.procIdentity(r)
	}
	if r.Cgroup != "" {
		if id, rt := b.containerFromCgroup(r.Cgroup); id != "" {
			p.containerID = b.intern(id)
			if _, ok := b.runtimes[id]; !ok {
				b.runtimes[id] = rt
			}
		} else if r.Kind != formats.ProcFork {
			// A fork's record is read as soon as the child exists,
			// before its creator can move it: runc exec's last process
			// is read in the host's cgroup, then joined to the
			// container's (and a short one is gone before its exec's
			// record). It shows nothing the child does not inherit, so
			// only a later read says "no container".
			p.cgroupSeen = true
		}
	}
	if r.Kind == formats.ProcSnapshot && !p.forkSeen {
		for _, tid := range r.TIDs {
			if tid == p.pid || slices.ContainsFunc(p.tasks, func(tk task) bool { return tk.tid == tid }) {
				continue
			}
			p.tasks = append(p.tasks, task{tid: tid, snap: true})
			b.byTID[tid] = p
		}
	}
}

func (b *builder) procIdentity(r *formats.ProcRecord) identity {
	id := identity{exe: b.procExe(r.Exe), cwd: b.intern(r.Cwd), comm: b.intern(r.Comm)}
	if len(r.Cmdline) > 0 && !(len(r.Cmdline) == 1 && r.Cmdline[0] == "") {
		id.argv = b.internStrings(r.Cmdline)
	}
	return id
}

// procExe is readlink /proc/PID/exe, or "" for the "/" a process
// executed from an fd of an unlinked bind mount or a memfd shows.
func (b *builder) procExe(s string) string {
	if s == "/" {
		return ""
	}
	return b.intern(s)
}

// Bounds of the builder's string table: strings longer than maxInternLen
// are copied, not shared, and the table is emptied when it holds
// maxInterned strings, so that hostile input cannot make it the larger
// part of memory.
const (
	maxInternLen = 256
	maxInterned  = 1 << 16
)

// intern returns a string equal to s in memory of the builder's own: one
// already held when an equal string was interned before (paths, exes,
// names and arguments repeat across processes), else a copy. The events'
// strings point into the replay's shared blocks, which must not be kept.
func (b *builder) intern(s string) string {
	if len(s) > maxInternLen || b.strs == nil {
		return strings.Clone(s)
	}
	if v, ok := b.strs[s]; ok {
		return v
	}
	v := strings.Clone(s)
	if len(b.strs) >= maxInterned {
		clear(b.strs)
	}
	b.strs[v] = v
	return v
}

func (b *builder) internStrings(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = b.intern(v)
	}
	return out
}

// baseIdentity is what p ran as before its first exec.
func (b *builder) baseIdentity(p *proc) identity {
	m := b.memo(p)
	if m.baseDone {
		return *m.base
	}
	if m.resolving {
		return identity{}
	}
	b.use(p)
	m.resolving = true
	var id identity
	if par := b.get(p.parent); par != nil && (p.forkSeen || p.auditCreated) {
		if p.forkExecs > 0 && p.forkExecs <= len(par.execs) {
			id = b.execIdentity(par.execs[p.forkExecs-1])
		} else {
			id = b.baseIdentity(par)
		}
	}
	if p.baseSet {
		// procfs read the process itself; what it could not read stays
		// inherited.
		id.exe = cmp.Or(p.base.exe, id.exe)
		id.cwd = cmp.Or(p.base.cwd, id.cwd)
		id.comm = cmp.Or(p.base.comm, id.comm)
		if p.base.argv != nil {
			id.argv = p.base.argv
		}
	}
	id.comm = cmp.Or(id.comm, p.firstComm)
	id.exe = cmp.Or(id.exe, p.firstExe)
	m.resolving = false
	m.baseDone, m.base = true, b.internIdentity(id)
	return id
}

// maxIdentityKey bounds the identities internIdentity shares: a longer one
// (a long argv) gets a memo of its own.
const maxIdentityKey = 4 << 10

// internIdentity returns a memo of id: one already held when an equal
// identity was interned before, else a new one. The processes a parent
// forks share their base identity, but each computes it afresh (often
// from the parent's state brought back from the spool, in strings of its
// own), so without sharing the memos were a third of the output phase's
// memory. The table is emptied as intern's is.
func (b *builder) internIdentity(id identity) *identity {
	if b.ids == nil {
		b.ids = map[string]*identity{}
	}
	key := b.idKey[:0]
	for _, s := range [...]string{id.exe, id.cwd, id.comm} {
		key = binary.AppendUvarint(key, uint64(len(s)))
		key = append(key, s...)
	}
	key = binary.AppendUvarint(key, uint64(len(id.argv)))
	if id.argv == nil {
		key = append(key, 0) // nil and empty argv differ in the output
	}
	for _, s := range id.argv {
		key = binary.AppendUvarint(key, uint64(len(s)))
		key = append(key, s...)
	}
	b.idKey = key
	if len(key) > maxIdentityKey {
		return &id
	}
	if m, ok := b.ids[string(key)]; ok {
		return m
	}
	if len(b.ids) >= maxInterned {
		clear(b.ids)
	}
	m := &id
	b.ids[string(key)] = m
	return m
}

// execIdentity merges what audit and procfs said of one exec; audit wins.
func (b *builder) execIdentity(x *execEntry) identity {
	id := identity{exe: x.pExe, argv: x.pArgv, cwd: x.pCwd, comm: x.pComm}
	if x.audit {
		if x.exe != "" {
			id.exe = x.exe
		}
		if x.hasArgv {
			id.argv = x.argv
		}
		if x.cwd != "" {
			id.cwd = x.cwd
		}
		if x.comm != "" {
			id.comm = x.comm
		}
	}
	if id.comm == "" {
		// The kernel names the task after the file execve was given.
		name := x.path
		if name == "" {
			name = id.exe
		}
		if name != "" {
			id.comm = truncComm(path.Base(name))
		}
	}
	return id
}

func truncComm(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}

// containerOf is the container p ran in: its own cgroup's, else that of
// the process whose mount namespace it joined with setns, else, when its
// cgroup is unknown and it called pivot_root, the one it started there,
// else none when a read of its cgroup after its fork names none, else its
// parent's.
func (b *builder) containerOf(p *proc) string {
	m := b.memo(p)
	if m.contDone {
		return b.conts[m.cont]
	}
	if m.contResolving {
		return ""
	}
	b.use(p)
	m.contResolving = true
	var id string
	switch {
	case p.containerID != "":
		id = p.containerID
	case !p.setnsTarget.none() && b.containerOf(b.stub(p.setnsTarget)) != "":
		id = b.containerOf(b.stub(p.setnsTarget))
	case p.pivot != "" && !p.cgroupSeen:
		// No cgroups (an auditd log): moving to a new root is what
		// starts a container.
		cid, rt := ContainerFromRootfs(p.pivot)
		id = b.intern(cid)
		if b.runtimes[id] == "" {
			b.runtimes[id] = rt
		}
	case p.cgroupSeen:
	case !p.parent.none():
		id = b.containerOf(b.stub(p.parent))
	}
	m.contResolving = false
	m.contDone, m.cont = true, b.contMemo(id)
	return id
}

// comm is p's name at the end, and names every name it bore.
func (b *builder) identityOf(p *proc) (id identity, names []string) {
	base := b.baseIdentity(p)
	names = append(names, base.comm)
	id = base
	var lastExec int64 = -1 << 63
	for _, x := range p.execs {
		xi := b.execIdentity(x)
		names = append(names, xi.comm)
		id, lastExec = xi, x.t
	}
	if len(p.execs) == 0 && p.firstCwd != "" {
		id.cwd = p.firstCwd
	}
	for _, c := range p.comms {
		names = append(names, c.comm)
		if c.t >= lastExec {
			id.comm = c.comm
		}
	}
	return id, names
}

// model turns the builder's state into the filtered Model.
func (b *builder) model(info replay.CaptureInfo, o *Options) (*Model, error) {
	m := &Model{Capture: captureOf(info)}
	boot := bootOf(info)
	outs := make([]*Process, len(b.procs))
	names := make([][]string, len(b.procs))
	fam := newFamily(len(b.procs))
	files := !o.NoFiles || o.PathGlob != ""
	for i := range b.procs {
		p := b.at(i)
		outs[i], names[i] = b.process(p, boot, info.Start, files)
		fam.set(p, outs[i].Start)
		b.settle(false)
	}

	keep, err := b.selection(o, fam, func(i int) (*Process, []string) { return outs[i], names[i] },
		func(i int) bool {
			return slices.ContainsFunc(outs[i].Files, func(f File) bool { return touches(&f, o.PathGlob) })
		})
	if err != nil {
		return nil, err
	}
	if o.NoFiles {
		for _, out := range outs {
			out.Files = nil
		}
	}
	f := b.forest(keep, fam)
	for i := range int32(len(outs)) {
		for _, k := range f.kids(i) {
			outs[i].Children = append(outs[i].Children, outs[k])
		}
	}
	for _, r := range f.roots {
		m.Processes = append(m.Processes, outs[r])
	}
	m.Containers = b.containers(keep, func(i int) string { return outs[i].Container })
	return m, nil
}

func captureOf(info replay.CaptureInfo) Capture {
	return Capture{
		Files:             slices.Clone(info.Files),
		Host:              info.Host,
		Kernel:            info.Kernel,
		Start:             info.Start,
		End:               info.End,
		ConnectorMessages: info.Messages[formats.SourceConnector],
		ConnectorLost:     info.Lost[formats.SourceConnector],
		AuditMessages:     info.Messages[formats.SourceAudit],
		AuditEvents:       info.AuditEvents,
		AuditLost:         info.Lost[formats.SourceAudit],
		AuditGaps:         info.AuditGaps,
		ProcfsRecords:     info.Messages[formats.SourceProcfs],
		UnreadableBytes:   info.UnreadableBytes,
		SkippedLines:      info.SkippedLines(),
	}
}

func bootOf(info replay.CaptureInfo) int64 {
	if info.BootTime.IsZero() {
		return 0
	}
	return info.BootTime.UnixNano()
}

// forest lays out the forest of the kept processes, given each process's
// output start time: the roots, and each process's children, in output
// order (start, pid, then order of creation). A parent cycle (only
// hostile input makes one) is cut at its earliest process.
func (b *builder) forest(keep []bool, fam *family) *layout {
	n := len(b.procs)
	parents := make([]int32, n) // seq+1 of the kept parent; 0: a root
	f := &layout{off: make([]int32, n+1), kid: make([]int32, 0, n), len: make([]int32, n)}
	for i := range n {
		if !keep[i] {
			continue
		}
		if par := fam.parent[i]; !par.none() && keep[par.seq()] {
			parents[i] = par.i
			f.off[par.seq()+1]++
		} else {
			f.roots = append(f.roots, int32(i))
		}
	}
	// Each process's children, in order of creation, as a range of kid.
	for i := range n {
		f.off[i+1] += f.off[i]
	}
	f.kid = f.kid[:f.off[n]]
	next := slices.Clone(f.off[:n])
	for i := range n {
		if par := parents[i]; par != 0 {
			f.kid[next[par-1]] = int32(i)
			next[par-1]++
		}
	}
	next = nil
	order := func(a, c int32) int {
		return cmp.Or(cmp.Compare(fam.start[a], fam.start[c]), cmp.Compare(fam.pid[a], fam.pid[c]), cmp.Compare(a, c))
	}
	placed := make([]bool, n)
	place := func(root int32) {
		stack := []int32{root}
		placed[root] = true
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			cs := f.kid[f.off[i]:f.off[i+1]]
			slices.SortFunc(cs, order)
			// The kids are the children not placed yet, moved to the
			// front of the range.
			for _, k := range cs {
				if placed[k] {
					continue
				}
				placed[k] = true
				f.kid[f.off[i]+f.len[i]] = k
				f.len[i]++
				stack = append(stack, k)
			}
		}
	}
	slices.SortFunc(f.roots, order)
	for _, r := range f.roots {
		place(r)
	}
	for i := range int32(n) {
		if keep[i] && !placed[i] {
			// In a cycle: cut it here. Its parent's list skips it, placed.
			f.roots = append(f.roots, i)
			place(i)
		}
	}
	slices.SortFunc(f.roots, order)
	return f
}

// family is what the output phase's passes need of every process, taken
// in one pass (a frozen process's stub comes back for it): its parent,
// its pid and its output start, by seq.
type family struct {
	parent []procLink
	pid    []int32
	start  []int64
}

func newFamily(n int) *family {
	return &family{parent: make([]procLink, n), pid: make([]int32, n), start: make([]int64, n)}
}

// set records p, whose output starts at start.
func (f *family) set(p *proc, start int64) {
	f.parent[p.seq], f.pid[p.seq], f.start[p.seq] = p.parent, p.pid, start
}

// layout is what forest lays out: the roots, and the kids of process i
// at the front of its range of kid, off[i] to off[i+1]: len[i] of them.
// Flat arrays of int32: a few bytes per process of the capture.
type layout struct {
	roots []int32
	off   []int32
	kid   []int32
	len   []int32
}

// kids returns the kids of i in output order.
func (f *layout) kids(i int32) []int32 { return f.kid[f.off[i] : f.off[i]+f.len[i]] }

// containers lists the containers of the kept processes, given each
// process's container id; the rootfs comes from any process of it.
func (b *builder) containers(keep []bool, containerOf func(int) string) []Container {
	conts := map[string]*Container{}
	for i := range b.procs {
		id := containerOf(i)
		if id == "" {
			continue
		}
		c := conts[id]
		if c == nil {
			c = &Container{ID: id, Runtime: cmp.Or(b.runtimes[id], RuntimeUnknown)}
			conts[id] = c
		}
		if c.Rootfs == "" {
			c.Rootfs = b.use(b.at(i)).pivot
			b.settle(false)
		}
		if keep[i] {
			c.Processes++
		}
	}
	var out []Container
	for _, c := range conts {
		if c.Processes > 0 {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, c Container) int { return strings.Compare(a.ID, c.ID) })
	return out
}

// outStart is p's start time in the output, and whether it was alive
// before the capture started.
func outStart(p *proc, boot, captureStart int64) (start int64, before bool) {
	start = p.start
	if !p.forkSeen {
		known := p.startTicks != 0 && boot != 0
		if known {
			start = min(boot+int64(p.startTicks)*clockTick, p.start)
		} else if p.snapshot && captureStart != 0 {
			start = min(p.start, captureStart)
		}
		before = !p.auditCreated && !(known && start >= captureStart)
	}
	return start, before
}

// process converts p to its output form.
//
// With files false, out.Files is left empty: see [builder.files].
func (b *builder) process(p *proc, boot, captureStart int64, files bool) (*Process, []string) {
	b.use(p)
	out := &Process{PID: p.pid, PPID: p.ppid, UID: p.uid, Container: b.containerOf(p), Command: p.command}
	if !p.parent.none() {
		out.PPID = b.stub(p.parent).pid
	}
	out.Start, out.BeforeCapture = outStart(p, boot, captureStart)
	out.End = p.end
	if p.exited {
		out.Exited, out.ExitCode, out.Signal, out.CoreDumped = true, p.exitCode, p.signal, p.core
	} else if p.auditExit {
		out.Exited, out.ExitCode = true, p.auditExitCode
		if out.End == 0 {
			out.End = p.auditExitT
		}
	}
	if out.End != 0 && out.End < out.Start {
		out.End = out.Start
	}
	clamp := func(t int64) int64 { return clampTo(t, out.Start, out.End) }

	id, names := b.identityOf(p)
	out.Comm, out.Exe, out.Argv, out.Cwd = id.comm, id.exe, id.argv, id.cwd
	if len(p.execs) > 0 {
		out.Execs = make([]Exec, 0, len(p.execs))
	}
	for _, x := range p.execs {
		xi := b.execIdentity(x)
		out.Execs = append(out.Execs, Exec{Time: clamp(x.t), Exe: xi.exe, Argv: xi.argv, Cwd: xi.cwd})
	}
	out.Threads = make([]Thread, 0, len(p.tasks))
	for _, tk := range p.tasks {
		th := Thread{TID: tk.tid, Start: tk.start, End: tk.end}
		if th.Start == 0 {
			th.Start = out.Start
		}
		th.Start = clamp(th.Start)
		if th.End == 0 {
			th.End = out.End
		} else {
			th.End = clamp(th.End)
		}
		out.Threads = append(out.Threads, th)
	}
	// The main thread first, the others by tid.
	slices.SortStableFunc(out.Threads[1:], func(a, c Thread) int { return cmp.Or(cmp.Compare(a.TID, c.TID), cmp.Compare(a.Start, c.Start)) })
	if files {
		for f := range b.files(p, out) {
			out.Files = append(out.Files, *f)
		}
	}
	return out, names
}

// clampTo brings t within [start, end]; end 0 is no end.
func clampTo(t, start, end int64) int64 {
	if t < start {
		t = start
	}
	if end != 0 && t > end {
		t = end
	}
	return t
}

// spooled yields the file accesses of p as the spool holds them (times
// not clamped to its life), in the order they were made. The File is
// valid until the next.
func (b *builder) spooled(p *proc) func(yield func(*File) bool) {
	return func(yield func(*File) bool) {
		for next := p.files; next != 0; {
			var f *File
			if f, next = b.spool.get(next - 1); f == nil || !yield(f) {
				return
			}
		}
	}
}

// files yields the file accesses of p, whose output form without files is
// out, in the order they were made. The File is valid until the next.
func (b *builder) files(p *proc, out *Process) func(yield func(*File) bool) {
	return func(yield func(*File) bool) {
		for f := range b.spooled(p) {
			f.Open = clampTo(f.Open, out.Start, out.End)
			if f.Close != 0 {
				f.Close = max(clampTo(f.Close, out.Start, out.End), f.Open)
			} else if out.End != 0 {
				f.Close = out.End // never closed: closed at exit
			}
			if !yield(f) {
				return
			}
		}
	}
}
