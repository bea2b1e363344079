// Package replay turns the raw messages of a capture, or the lines of an
// auditd log, into decoded events.
//
// It has three decoding pieces, each pure and deterministic: same bytes in,
// same values out, on any operating system.
//
//   - [DecodeProcEvent] decodes one process connector datagram
//     (NETLINK_CONNECTOR, CN_IDX_PROC) into a flat [ProcEvent]: fork, exec,
//     uid/gid, sid, ptrace, comm, coredump, exit and the listen ack.
//   - [DecodeAuditMessage] decodes one NETLINK_AUDIT message, and
//     [ParseLogLine] one auditd log line (raw or enriched), into an
//     [AuditRecord]. go-libaudit's auparse parses the audit(…) header at once
//     and the key=value body when [AuditRecord.Fields] is first called.
//   - [Reassembler] groups audit records into [AuditEvent]s by serial,
//     driven by the capture time of each record, never the wall clock, and
//     counts serial gaps as losses. [AuditEvent.Argv] rebuilds an execve's
//     argument vector, long arguments split across records included.
//
// Around them: [Open] makes one [Stream] of any number of captures and
// auditd logs, told apart by content ([Sniff]); [LogReader] reads an
// auditd log (raw or enriched, plain or gzip) as recorded messages,
// counting the lines it skips ([LogStats]); [AppendLogLine] writes an
// audit record back as auditd writes it, for ausearch and aureport.
//
// Netlink integers are host order; captures come from little-endian hosts
// and are decoded little-endian. Decoders never panic and never allocate
// more than their input justifies; their errors wrap [ErrTruncated],
// [ErrMalformed] or [ErrControl].
package replay
