package analyze

import (
	"io"
	"strconv"
	"strings"
)

// PROVNamespace is the namespace of proctrail's names in [WritePROV]'s
// output, bound to the prefix "proctrail". It names kinds and attributes,
// not a document: nothing is served there, and it never changes.
const PROVNamespace = "https://github.com/proctrail/proctrail/ns#"

// WritePROV writes m as one W3C PROV-JSON document
// (https://www.w3.org/submissions/prov-json/), for provenance tools such
// as the Python prov library or ProvToolbox. Its "prefix" block binds
// "proctrail" to [PROVNamespace]; "prov" and "xsd" are predefined. Times
// are xsd:dateTime in UTC with nine fractional digits (TimeLayout).
//
// Records, and their ids:
//
//   - Each process is an activity "proctrail:process/PID-START" (START in
//     nanoseconds since the Unix epoch; "~2", "~3"… are appended in the
//     rare case of two processes with the same pid and start) with
//     prov:type proctrail:Process, prov:startTime, prov:endTime when it
//     ended, prov:label its comm, and the attributes proctrail:pid, ppid,
//     uid, comm, exe, argv, cwd (of its last exec), exit_code or signal,
//     core_dumped, before_capture, command and container, each as in the
//     JSON output and only when known or set. argv is one string, the
//     JSON text of the array: a PROV attribute's values are a set, with
//     no order and no repeats.
//   - Each path an access below names is one entity "proctrail:file/PATH"
//     ("proctrail:relfile/PATH" for a path left relative), with the
//     path's bytes other than letters, digits, "-", "_", ".", "~" and "/"
//     (and a final ".") percent-encoded, so that any name is a valid
//     qualified name and distinct paths are distinct entities. prov:type
//     is proctrail:Executable for a path that was executed, else
//     proctrail:File; prov:label and proctrail:path hold the path.
//   - Each known uid is an agent "proctrail:user/UID" with prov:type
//     proctrail:User and proctrail:uid, and each process with a known uid
//     is wasAssociatedWith it (prov:role proctrail:uid, the real uid).
//   - Each child is wasInformedBy its parent (its creator).
//   - Each signal a process sent, and each ptrace attach it made, is an
//     entity "proctrail:signal/PID-START-N" (the sender's activity's
//     name, N its order among them) with prov:type proctrail:Signal
//     (proctrail:signal, its number; prov:label its name) or
//     proctrail:Ptrace (proctrail:request; prov:label "ptrace REQUEST"),
//     proctrail:op (kill, tkill, tgkill, ptrace), proctrail:pid (the pid
//     named) and proctrail:error when it failed. The sender
//     wasGeneratedBy… generated it (prov:role proctrail:OP) and the
//     process it reached, when in the model, used it (prov:role
//     proctrail:signal), both at its time: a message between two
//     activities, as PROV has them.
//   - An exec of a program that ran from memory (Exec.Fileless) has
//     proctrail:fileless on the used of its executable.
//   - Each network endpoint a process talked to, listened on or bound is
//     one entity "proctrail:endpoint/FAMILY/ENDPOINT" (ENDPOINT as the
//     tree shows it: "203.0.113.7:443", "[::1]:53", a unix path, "port N"
//     for netlink; escaped as paths are), with prov:type
//     proctrail:Endpoint, prov:label "FAMILY ENDPOINT", proctrail:family,
//     and proctrail:address and proctrail:port, or proctrail:path.
//   - Containers are attributes: proctrail:container on the activities of
//     the processes that ran in one, not bundles, so that a tree crossing
//     into a container stays one graph.
//
// Accesses become relations between the process and the path's entity,
// timed by the syscall (an open's open time, with proctrail:close for its
// close time and proctrail:mode for r, w or rw):
//
//	exec (Process.Execs)            used, prov:role proctrail:executable,
//	                                with proctrail:argv and proctrail:cwd
//	exec (Files: the path named,    used, prov:role proctrail:exec; left
//	  a symlink, /proc/self/exe)    out when it is an exe of the process
//	open r, open without a mode     used
//	open w                          wasGeneratedBy
//	open rw                         used and wasGeneratedBy
//	create, mkdir, mknod, symlink,  wasGeneratedBy, with the access's
//	  link, chmod, chown, utime,    details as proctrail:target, perm,
//	  truncate, setxattr,           setuid, setgid, owner, type, flags
//	  removexattr, mount            and size
//	rename                          wasInvalidatedBy (old path),
//	                                wasGeneratedBy (new path), and
//	                                wasDerivedFrom (new from old)
//	unlink, rmdir, umount           wasInvalidatedBy
//	chdir, pivot_root, setns and    used
//	  any other operation
//	failed (Files[].Error)          left out: nothing was used
//	connect, sendto, sendmsg,       used (the endpoint; an accept's is the
//	  accept, listen (Net)            peer), with proctrail:proto
//	bind (Net)                      wasGeneratedBy (the local endpoint)
//	failed (Net[].Error), socket,   left out
//	  entries without an address
//
// Each used, wasGeneratedBy and wasInvalidatedBy has prov:role
// proctrail:OP, the access's op ("executable" for an exec's program).
// Relation ids are blank nodes numbered in the order written, per kind:
// "_:u1" (used), "_:g1" (wasGeneratedBy), "_:x1" (wasInvalidatedBy),
// "_:d1" (wasDerivedFrom), "_:i1" (wasInformedBy), "_:a1"
// (wasAssociatedWith).
//
// Activities and relations follow the forest depth first, children in the
// model's order; entities are sorted by path and agents by uid. Every
// section is present, empty or not. The same model always gives the same
// bytes, and any name gives valid JSON: strings are escaped as WriteJSON
// escapes them, with U+FFFD for bytes that are not UTF-8. WritePROV only
// reads m; it holds the distinct paths, endpoints and uids, and a few
// bytes per process, and spools the relations (see provGraph).
func WritePROV(w io.Writer, m *Model) error { return writeGraph(m, newPROVGraph(w)) }

// BuildPROV is [Build] then [WritePROV]: it writes the same bytes, but it
// never holds the Model. Each process is made into its output form when
// its turn comes, its activity written and its relations spooled, and
// dropped. It returns the Model's Capture.
func BuildPROV(w io.Writer, s EventSource, opts *Options) (Capture, error) {
	return buildGraph(s, opts, func(*Capture, []Container) graph { return newPROVGraph(w) })
}

func provUserID(uid int64) string { return "proctrail:user/" + strconv.FormatInt(uid, 10) }

// provFileID returns the entity id of a path.
func provFileID(path string) string {
	if strings.HasPrefix(path, "/") {
		return "proctrail:file" + provEscape(path)
	}
	return "proctrail:relfile/" + provEscape(path)
}

// provEscape percent-encodes s into the local part of a qualified name
// that PROV-N, PROV-XML and PROV-O all take: letters, digits and "-_.~/"
// stay, but not a final "." (PROV-N's grammar forbids it). Any byte
// string has its own encoding.
func provEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		keep := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '~' || c == '/' || c == '.' && i < len(s)-1
		if keep {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+16), s[:i]...)
		}
		b = append(b, '%', upperHex[c>>4], upperHex[c&0xF])
	}
	if b == nil {
		return s
	}
	return string(b)
}

const upperHex = "0123456789ABCDEF"
