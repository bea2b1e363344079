package analyze

import (
	"fmt"
	"io"
	"path"
	"time"

	"proctrail/analyze/internal/procstore"
	"proctrail/analyze/internal/spool"
	"proctrail/replay"
)

// The filter's files, by source and job:
//
//	build.go      the builder: its state, the replay's entry and event loop
//	pipeline.go   reading and parsing ahead of the builder
//	connector.go  process connector events: forks, execs, exits, threads
//	procfs.go     the recorder's procfs records
//	audit.go      audit syscalls; auditparse.go reads their records;
//	              auditonly.go what audit alone must infer (threads, pid
//	              namespaces); fsops.go the changes, signals, mounts
//	fds.go        fd tables; resolve.go paths made absolute, never stale;
//	              files.go file accesses in the spool
//	net.go        network calls: sockets, addresses, entries; the Addr filter
//	identity.go   what a process ran as; container.go where it ran;
//	              mounts.go host paths through the mount tables
//	output.go     the output phase: selection (select.go), forest, Process;
//	              search.go, changes.go; the writers json.go (jsonenc.go),
//	              text.go, dot.go (dotgraph.go), prov.go (provrec.go,
//	              provgraph.go)
//
// The processes themselves are in a procstore.Store, which keeps those
// that ended in the spool.

// proc and ref are the Store's process and its name.
type (
	proc = procstore.Proc
	ref  = procstore.Ref
)

// refOf is p's Ref, None for nil.
func refOf(p *proc) ref {
	if p == nil {
		return 0
	}
	return p.Ref()
}

const (
	// finalizeGrace is how long, in capture time, a process's fd table
	// outlives its exit. Audit records reach the recorder through kauditd's
	// queue, later than the connector's exit event (milliseconds on an idle
	// machine, seconds under a backlog), and a close that arrives late
	// still finds its file.
	finalizeGrace = int64(10 * time.Second)
	// retireDelay is how long, in capture time, a process's state stays
	// in memory after its end (see procstore): most late records come
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
	// maxPending bounds the pending clone records.
	maxPending = 4096
	// pendingWindow bounds the time between a clone record and its
	// child's fork event.
	pendingWindow = int64(2 * time.Second)
)

// builder is the filter: it applies the events of a replay, in order, to
// the processes of its Store, then makes the output from them.
type builder struct {
	procs *procstore.Store
	spool *spool.Spool // the file accesses, and the processes the Store sent away
	now   int64        // the latest capture time so far
	boot  int64        // the capture's boot time, ns since the Unix epoch; 0 if unknown
	// auditOnly says that the source has audit alone: see auditEnded.
	auditOnly bool
	// nextExpiry is when the pending clones are next looked at (audit
	// alone: see expirePending).
	nextExpiry int64
	// cutMarked says that the source is a cut, whose records mark the
	// processes of its selection: the output keeps only those.
	cutMarked bool
	// touched, when set, is called after each event with the processes
	// it got (PlanCut).
	touched func([]ref)
	// serial is the serial of the audit event being applied, 0 for other
	// sources: the Serial of the file accesses it makes.
	serial uint64

	// What only the replay needs; dropped before the output.
	byPID   map[int32]ref          // the current process of each pid
	byTID   map[int32]ref          // the process of each thread that has not exited
	pending map[int32]pendingClone // clone records ahead of their child's fork event
	dirs    map[dirKey]string      // directories by (dev, inode); see resolve
	moved   map[string]movedDir    // renamed directories by their old path; see resolve
	unres   []string               // the paths of the current audit call resolve could not find
	exes    map[dirKey]string      // executed files by (dev, inode) → exe
	strs    interner

	commands []ref                 // the processes the recorder started
	runtimes map[string]string     // container id → runtime
	cgWrites map[ref]string        // the cgroup a process opened cgroup.procs of for writing (audit alone; see container.go)
	binds    []bindMount           // the bind mounts made (audit alone; see mounts.go)
	cgroups  map[string]cgroupInfo // ContainerFromCgroup's results, by cgroup file
	mounts   mountState            // the mount tables, for host paths
	opens    []procstore.OpenFile  // the rest of the slab openFile takes from
	fileBuf  []byte                // addFile's

	memos memos // the output phase's
}

// dirKey is a file's device and inode as audit PATH records print them.
type dirKey struct {
	dev   string
	inode string
}

// pendingClone is a clone record whose child the connector has not shown
// yet: the two sources race, and the creator's clone record often comes
// first.
type pendingClone struct {
	creator ref
	t       int64
	parent  bool // CLONE_PARENT is set, or unknown (clone3)
	clone3  bool // its flags are unknown: a thread if no process of its pid shows
}

// keptStates is the Store's KeepStates: the States of the last 2048
// processes to end stay in memory, about 4 MiB. The analyses of most
// builds and installers then never send a State to the spool (make
// bench's workload has 2,004 processes; 4096 took 8 MiB more at 8× the
// workload, for no time).
//
// Test hooks: keepInMemory keeps every process in memory (the output
// must be the same), spoolSizes makes the spool small. The tests that
// compare a spooled analysis with one in memory set keptStates to 0, so
// that every process that can is retired, and to a few.
var (
	keptStates   = 2048
	keepInMemory = false
	spoolSizes   *spool.Sizes
)

func newBuilder() *builder { return newBuilderTracking(false) }

// newBuilderTracking is newBuilder; with track, the Store notes the
// processes each event gets (see builder.touched).
func newBuilderTracking(track bool) *builder {
	b := &builder{
		spool:    spool.New(spoolSizes),
		byPID:    map[int32]ref{},
		byTID:    map[int32]ref{},
		pending:  map[int32]pendingClone{},
		dirs:     map[dirKey]string{},
		moved:    map[string]movedDir{},
		exes:     map[dirKey]string{},
		strs:     interner{strs: map[string]string{}},
		runtimes: map[string]string{},
		cgWrites: map[ref]string{},
		cgroups:  map[string]cgroupInfo{},
	}
	b.procs = procstore.New(b.spool, procstore.Options{
		RetireAfter:   retireDelay,
		FinalizeAfter: finalizeGrace,
		Finalize:      b.finalize,
		InMemory:      keepInMemory,
		KeepStates:    keptStates,
		Track:         track,
	})
	return b
}

// spoolErr is the error of the spool, if it had one.
func (b *builder) spoolErr() error {
	if err := b.spool.Err(); err != nil {
		return fmt.Errorf("analyze: temporary file of file accesses: %w", err)
	}
	return nil
}

// runFilter checks opts and replays s through a new builder. The caller
// closes the builder's spool. touched, when not nil, is called after each
// event with the processes it got.
func runFilter(s EventSource, opts *Options, touched func([]ref)) (*builder, *Options, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.PathGlob != "" {
		if _, err := path.Match(o.PathGlob, "x"); err != nil {
			return nil, nil, fmt.Errorf("analyze: path pattern %q: %w", o.PathGlob, err)
		}
	}
	o.addr = nil
	if o.Addr != "" {
		f, err := parseAddrFilter(o.Addr)
		if err != nil {
			return nil, nil, err
		}
		o.addr = f
	}
	b := newBuilderTracking(touched != nil)
	b.touched = touched
	info := s.Info()
	if bt := info.BootTime; !bt.IsZero() {
		b.boot = bt.UnixNano()
	}
	b.auditOnly = info.AuditOnly
	err := readAhead(s, b.event)
	if err != io.EOF {
		b.spool.Close()
		return nil, nil, fmt.Errorf("analyze: %w", err)
	}
	b.procs.Update(b.now, func() { b.expirePending(1<<63 - 1) })
	b.procs.Seal()
	// What only the events needed goes before the output is made.
	b.byPID, b.byTID, b.dirs, b.moved, b.exes, b.pending, b.strs = nil, nil, nil, nil, nil, nil, interner{}
	return b, &o, nil
}

// event applies one event.
func (b *builder) event(pe *parsedEvent) {
	ev := &pe.ev
	if ev.Time > b.now {
		b.now = ev.Time
	}
	b.procs.Update(b.now, func() {
		switch {
		case ev.Proc != nil:
			b.connector(ev.Proc, b.connTime(ev.Proc, ev.Time))
		case ev.Audit != nil:
			if pe.ok {
				b.serial = ev.Audit.Serial
				b.audit(&pe.c)
				b.serial, b.unres = 0, b.unres[:0]
			}
		case ev.ProcFS != nil:
			b.procfs(ev.ProcFS, ev.Time)
		}
	})
	if b.touched != nil {
		b.touched(b.procs.Touched())
	}
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

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}
