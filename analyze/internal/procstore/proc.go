package procstore

// Ref names a process of a Store: its index in the order the processes
// were added, plus one. The zero Ref names none. A Ref stays valid for the
// Store's life, whether its process is in memory or in the spool.
type Ref int32

// None reports whether r names no process.
func (r Ref) None() bool { return r == 0 }

// Index is r's index in the order processes were added; r must not be
// None.
func (r Ref) Index() int { return int(r) - 1 }

// RefOf returns the Ref of the process added index-th.
func RefOf(index int) Ref { return Ref(index + 1) }

// Proc is one process (one incarnation of a thread group id) as the
// filter knows it while it replays a capture. A *Proc from [Store.Get] is
// valid, and its changes are kept, until the end of the [Store.Update] or
// [Store.View] it was got in.
type Proc struct {
	Stub
	*State // never nil in a Proc that Get returned
}

// Stub is the part of a process that stays in memory until the process
// is final (finalized and in the spool): its place in the tree, its
// tasks, the chain of its file accesses, its end and its fd table. It is
// what the filter reads of processes that ended, without bringing their
// State back.
//
// The fields are in this order so that a Proc takes 88 bytes: one is in
// memory for every process alive or ended in the last FinalizeAfter.
type Stub struct {
	ref Ref
	PID int32
	// What the Store's bookkeeping needs.
	finalized, finalizeQueued, retireQueued bool
	kept                                    bool // in Store.kept: its State stays past RetireAfter
	// Parent is the process the filter takes for the parent: see State's
	// ParentSource.
	Parent Ref
	// stateOff is the offset+1 of the State's last record in the spool; 0
	// when it was never retired.
	stateOff int64
	// FirstFile and LastFile are the offset+1 of the first and last of
	// the process's file accesses in the spool, which chain them; 0: none.
	FirstFile, LastFile int64
	end                 int64
	// Tasks are its threads; Tasks[0] is the main thread.
	Tasks []Task
	// FDs is its fd table, nil when empty; dropped when the process is
	// finalized.
	FDs *FDTable
}

// Ref is p's Ref.
func (p *Stub) Ref() Ref { return p.ref }

// End is when p ended (its last task exited, or its exit_group from audit
// alone); 0 while alive. [Store.End] and [Store.Revive] change it.
func (p *Stub) End() int64 { return p.end }

// Finalized reports whether p ended more than FinalizeAfter ago: what it
// left open is closed, its fd table gone, and its State changes only for
// a late record.
func (p *Stub) Finalized() bool { return p.finalized }

// Task is one thread of a process; a Start or End of 0 means unknown or
// alive.
type Task struct {
	Start, End int64
	TID        int32
	// FromSnapshot marks a thread listed by a procfs snapshot that the
	// connector has not (yet) shown created.
	FromSnapshot bool
}

// How a process's parent was learned, weakest first.
const (
	ParentNone      = iota
	ParentReported  // procfs PPID, audit ppid=, an exit event: the current parent, maybe after reparenting
	ParentClone     // the creator's clone, fork or vfork audit record
	ParentConnector // the connector's fork event
)

// State is the part of a process that goes to the spool a moment after
// it ended (RetireAfter), and comes back when the filter asks for it.
type State struct {
	// PPID is the pid of the parent: Parent's, or the one reported when
	// no process of it is known.
	PPID         int32
	ParentSource int // how Parent was learned: ParentNone…ParentConnector
	// KernelParent is the parent the connector's fork event named; with
	// CLONE_PARENT the creator's own parent.
	KernelParent Ref
	// PrevIncarnation is the process that had the same pid before (for
	// its late audit events).
	PrevIncarnation Ref

	Start int64
	// FirstSeen is the capture time of its first event of any source.
	FirstSeen int64
	// ForkSeen: the connector showed its creation. CreatedByClone: an
	// audit clone record named it and the connector did not.
	ForkSeen, CreatedByClone bool
	// InSnapshot: the procfs snapshot at the start listed it.
	InSnapshot bool
	// StartTicks is /proc/PID/stat's start time (clock ticks since boot);
	// ForkTimestamp the connector fork event's (ns since boot).
	StartTicks    uint64
	ForkTimestamp uint64

	// The exit the connector reported.
	Exited, CoreDumped bool
	ExitCode, Signal   int
	// ExitGroup is its exit_group audit record, if one came.
	ExitGroup ExitGroup

	// UID is its real uid, -1 when unknown; UIDTime when it was learned.
	UID, UIDTime int64

	// ProcfsIdentity is what procfs read of it before any exec, when
	// HasProcfsIdentity (a snapshot, or a process whose creation was not
	// seen).
	ProcfsIdentity    Identity
	HasProcfsIdentity bool
	// FirstAuditComm and FirstAuditExe are those of the first audit
	// record that named it, when it was unknown then: the last resort of
	// its identity (audit alone, a child forked in a pid namespace).
	FirstAuditComm, FirstAuditExe string
	// ParentExecsAtFork is len(Parent's Execs) when it was forked: the
	// exec whose program it ran until its own.
	ParentExecsAtFork int
	Execs             []*Exec
	CommChanges       []CommChange
	// Cwd is its current directory as the filter follows it; FirstCwd the
	// first an audit record showed.
	Cwd, FirstCwd string
	// PivotRoot is the new root of its pivot_root (host path).
	PivotRoot string
	// CgroupContainer is the container id its cgroup names;
	// CgroupNamesNone says a read of its cgroup after its fork (exec,
	// snapshot) named none.
	CgroupContainer string
	CgroupNamesNone bool
	// JoinedMountNS is the process whose mount namespace it joined with
	// setns.
	JoinedMountNS Ref
	// MountNS is the inode of its mnt namespace as procfs last read it;
	// 0 when no record said (it is then its parent's). MountNSSince is
	// when it entered it, by setns or unshare, if it did (before, it was
	// in its parent's).
	MountNS      uint64
	MountNSSince int64
	// Command marks the process of the command given to `record --`.
	Command bool
	// ExecedInAudit: an execve of it is in audit (its close-on-exec fds
	// are closed).
	ExecedInAudit bool
	// CutSelected: a capture made by `proctrail cut` marked it as one of
	// its selection.
	CutSelected bool
	// FirstSignal and LastSignal are the offset+1 of the first and last
	// of the signals it sent (and ptrace attaches it made), records in
	// the spool that chain them as file accesses are; 0: none.
	FirstSignal, LastSignal int64
	// FirstNet and LastNet are the offset+1 of the first and last of its
	// network entries in the spool, which chain them; 0: none. (Unlike
	// the file accesses', in the State: only audit events, which get the
	// State anyway, add entries, and no filter reads them without it.)
	FirstNet, LastNet int64
}

// ExitGroup is what an exit_group audit record says of a process's end:
// its status is the call's argument (it never returns, so the record has
// no exit field).
type ExitGroup struct {
	Seen bool
	Code int
	// Time is the event's time; HeaderTime its audit header's.
	Time, HeaderTime int64
}

// Identity is what a process runs as.
type Identity struct {
	Exe  string
	Argv []string
	Cwd  string
	Comm string
}

// Exec is one exec of a process as the three sources saw it: the
// connector (its time), audit (exe, argv, cwd, comm) and procfs (the
// same, read later and best effort).
type Exec struct {
	Time                                 int64
	FromConnector, FromAudit, FromProcfs bool
	// Audit is what the execve record said; its Argv is set only when
	// AuditArgv (EXECVE records were there).
	Audit     Identity
	AuditArgv bool
	// Path is the path execve was given, resolved.
	Path   string
	Procfs Identity
	// Fileless: the program ran from a memfd (see analyze.Exec).
	Fileless bool
}

// CommChange is a rename of the process (prctl PR_SET_NAME, or the
// kernel's at exec) that the connector reported.
type CommChange struct {
	Time int64
	Comm string
}
