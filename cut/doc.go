// Package cut writes a capture that holds only what concerns a selection
// of another: the processes of a pid's subtree, of a container, of the
// recorded command, alive in a time window, bearing a name or touching a
// path (the selections of analyze), with their ancestors. It is how a
// capture of a whole host is shared for the review of one part of it,
// optionally with names, paths and arguments masked (Options.Redact).
//
// The cut holds the messages of the captures cut, unchanged but for the
// masking: the process connector events, the procfs records and the whole
// audit events (every record of a serial, EOE included) of the processes
// the selection keeps and of the processes they depend on (their
// ancestors: a child inherits its parent's identity, fds, uid and
// container; and the processes whose mount namespace they joined). Audit
// records are written an event at a time, in the order the replay
// completes events, so that the cut replays its events in the same
// order as the original. After the first message of each selected
// process comes a procfs record of kind formats.ReasonSelected naming
// it: analyzing the cut shows those processes, as analyzing the original
// with the selection does, and not the ancestors held for them. The
// section header names what was cut and how (formats.CutInfo); the
// interface statistics carry the original's message and loss counts,
// and the messages kept and fields masked per source.
//
// Write reads the captures twice: once to plan (analyze.PlanCut, the
// filter's own replay), once to copy. Memory is the analysis's; the plan
// is a temporary file of a few bytes per event.
package cut
