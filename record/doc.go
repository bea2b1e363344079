// Package record is proctrail's recorder: it listens to the kernel's
// process connector and Linux audit, reads procfs, and writes every message
// it receives, untouched and timestamped on receipt, to a capture file of
// package formats. It parses nothing on the way: analysis happens later,
// offline, in packages replay and analyze.
//
// [Record] runs a whole recording from a [Config] and returns a [Result];
// the pieces it is made of are exported for tests and other tools.
//
// # Listeners
//
//   - Process connector: a NETLINK_CONNECTOR socket joined to the
//     CN_IDX_PROC group, with PROC_CN_MCAST_LISTEN sent at start and
//     PROC_CN_MCAST_IGNORE at stop. The kernel multicasts a struct
//     proc_event for every fork, exec, exit, uid/gid change, setsid, comm
//     change, ptrace and coredump of every task.
//   - Linux audit ([StartAudit], [AuditSession]): when no live process owns
//     the kernel's audit pid the recorder registers as the audit daemon
//     ([ModeDaemon]) and the kernel unicasts every record to it; when
//     auditd owns it, the recorder leaves auditd alone and reads the
//     read-only multicast group AUDIT_NLGRP_READLOG instead
//     ([ModeMulticast]).
//   - procfs ([ProcReader]): a snapshot of every live process when
//     recording starts, so trees are complete from time zero, then a read
//     of /proc/PID for each new process and each exec the connector
//     reports, which is how a container id (from the cgroup file) reaches a
//     capture even without audit. The records are [proctrail/formats.ProcRecord] values on
//     the capture's procfs interface.
//
// Each source's receive loop reads into one reused buffer and allocates
// nothing per message; messages are appended to the open frame under one
// mutex, and closed frames are compressed and written on a goroutine of
// their own so the listeners never wait for zstd. A frame is closed every
// second and every 4 MiB, with the counters of received and lost messages of each source
// (socket overruns, the kernel's audit lost counter, procfs reads dropped
// from a full queue) written first as statistics blocks. A full disk stops
// the recording with an error; what was written up to the last whole frame
// stays readable.
//
// # Audit rules and state
//
// [PresetRules] builds the default "forensic" rule set for the running
// architecture's ABIs ([PresetRulesWithout]: less some of its syscalls)
// and [ParseRules] reads a rules file in auditctl
// syntax; both work on any operating system. Every rule carries the key
// [RuleKey], after a never rule for the recorder's own pid that keeps the
// capture from feeding on its own writes. Before changing anything,
// [StartAudit] saves the audit state it found (enabled flag, audit pid,
// backlog limit and wait time, rules) in a state file; [AuditSession.Close]
// restores it on every exit path, and [RecoverStale], which StartAudit runs
// first, undoes what a killed earlier recorder left behind.
//
// # Privileges
//
// Recording needs root, or CAP_NET_ADMIN for the connector and
// CAP_AUDIT_CONTROL and CAP_AUDIT_READ for audit; [Record] names what is
// missing in an error wrapping [os.ErrPermission]. Once its sockets are open
// and its command started, the recorder sets no_new_privs and drops every
// capability but those it needs to finish (restore the audit state, stop
// the connector, read other users' /proc/PID links, write and chown its
// rotated files, signal its command), on every thread; a binary built with
// cgo cannot do that, so `make build` builds without cgo. Under sudo, the
// command runs as the invoking user and the capture files are given to
// them, created with mode 0600 and never through a symlink.
//
// Everything that touches the kernel is Linux only: on other systems
// [Record], [StartAudit], [RecoverStale] and [ProcReader]'s methods return
// an error.
package record
