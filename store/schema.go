package store

import (
	"fmt"
	"slices"
	"strings"
)

// SchemaVersion is the version of the schema this package writes. Open
// migrates an older database to it, and refuses a newer one.
const SchemaVersion = 3

// The one schema, for both databases: each column has an abstract type
// that dialect.colType spells. Times are kept twice over two columns: X
// (a timestamp) and X_nsec, its nanoseconds past the microsecond, since
// PostgreSQL's timestamps hold microseconds and a Model must come back
// to the nanosecond.

type colType int

const (
	tID     colType = iota // an integer primary key assigned by the database
	tInt                   // 32-bit
	tBigint                // 64-bit
	tText
	tPath // text compared byte by byte (PostgreSQL: COLLATE "C")
	tTime // a timestamp in UTC
	tBool
)

type column struct {
	name    string
	typ     colType
	notNull bool
	doc     string
	since   int // the schema version that added it; 0 or 1: the first
}

type table struct {
	name    string
	since   int // the schema version that added it; 0 or 1: the first
	doc     string
	cols    []column
	primary []string // the primary key, unless a tID column is
	unique  [][]string
	// rels names the relationships for the README's diagram:
	// "captures ||--o{ processes : runs"
	rels []string
}

type index struct {
	name, table string
	cols        []string
	unique      bool
	where       string
	doc         string
	since       int // the schema version that added it
}

func col(name string, typ colType, notNull bool, doc string) column {
	return column{name: name, typ: typ, notNull: notNull, doc: doc}
}

// added is col, added by schema version v: it must be nullable, as ALTER
// TABLE ADD COLUMN adds it to the rows there are.
func added(v int, name string, typ colType, doc string) column {
	return column{name: name, typ: typ, doc: doc, since: v}
}

// counts are the columns of a capture's counters, in the captures and
// capture_files tables.
var counts = []column{
	col("connector_messages", tBigint, true, "connector messages read"),
	col("connector_lost", tBigint, true, "connector messages lost (recorder overruns)"),
	col("audit_messages", tBigint, true, "audit messages read"),
	col("audit_events", tBigint, true, "audit events reassembled"),
	col("audit_lost", tBigint, true, "audit messages lost (kernel counter and overruns); cumulative over a set"),
	col("audit_gaps", tBigint, true, "audit serials that never arrived"),
	col("procfs_records", tBigint, true, "procfs records read"),
	col("unreadable_bytes", tBigint, true, "bytes of damaged frames and truncated tails"),
	col("skipped_lines", tBigint, true, "lines of auditd logs that gave no record"),
}

func cols(groups ...[]column) []column {
	var out []column
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// tables are the schema, in creation order.
var tables = []table{
	{name: "schema_version", doc: "the schema's version: one row",
		cols: []column{col("version", tInt, true, "SchemaVersion")}},
	{name: "captures", doc: "one row per capture set: the files of one recording (rotated or not), one imported capture, or one auditd log",
		cols: cols([]column{
			col("id", tID, true, "key used by the other tables"),
			col("capture_id", tText, true, "the set's id: the recorder's capture_id, or derived (see Load)"),
			col("source", tText, true, "record, import or auditd"),
			col("host", tText, true, "the recording host's name"),
			col("kernel", tText, true, "its kernel release"),
			col("start_time", tTime, false, "first message of the files loaded"),
			col("end_time", tTime, false, "last message of the files loaded"),
		}, counts, []column{
			col("start_time_nsec", tInt, true, ""),
			col("end_time_nsec", tInt, true, ""),
		}),
		unique: [][]string{{"capture_id"}},
	},
	{name: "capture_files", doc: "one row per file loaded",
		cols: cols([]column{
			col("capture", tBigint, true, "captures.id"),
			col("seq", tInt, true, "the file's sequence number in its set"),
			col("sha256", tText, true, "of the file's bytes"),
			col("name", tText, true, "the file's name as given to load"),
			col("bytes", tBigint, true, "its size"),
			col("start_time", tTime, false, "its first message"),
			col("end_time", tTime, false, "its last message"),
		}, counts, []column{
			col("start_time_nsec", tInt, true, ""),
			col("end_time_nsec", tInt, true, ""),
		}),
		primary: []string{"capture", "seq"},
		rels:    []string{"captures ||--|{ capture_files : \"loaded from\""},
	},
	{name: "containers", doc: "the containers of a capture set",
		cols: []column{
			col("capture", tBigint, true, "captures.id"),
			col("id", tText, true, "the container id"),
			col("runtime", tText, true, "docker, containerd, podman, crio or unknown"),
			col("rootfs", tText, true, "its root from pivot_root; empty if unseen"),
		},
		primary: []string{"capture", "id"},
		rels:    []string{"captures ||--o{ containers : has"},
	},
	{name: "processes", doc: "one row per process: its identity is (capture, pid, start_time)",
		cols: []column{
			col("id", tID, true, "key used by the other tables"),
			col("capture", tBigint, true, "captures.id"),
			col("pid", tInt, true, "its thread group id"),
			col("start_time", tTime, true, "when it was created (or first seen)"),
			col("end_time", tTime, false, "when it ended; null while still running at the end of the files loaded"),
			col("ppid", tInt, true, "its creator's pid (the true parent); 0 when unknown"),
			col("parent", tBigint, false, "processes.id of its creator; null for a root"),
			col("exit_code", tInt, false, "its exit status; null while running"),
			col("signal", tInt, false, "the signal that killed it; null if none"),
			col("core_dumped", tBool, true, ""),
			col("uid", tBigint, false, "real uid; null when unknown"),
			col("comm", tText, true, "its name"),
			col("exe", tPath, true, "the executable of its last exec"),
			col("argv", tText, true, "the arguments of its last exec, a JSON array"),
			col("cwd", tPath, true, "the working directory at its last exec"),
			col("before_capture", tBool, true, "alive before recording started"),
			col("command", tBool, true, "the command given to record --"),
			col("container", tText, false, "the container id; null on the host"),
			col("first_seq", tInt, true, "the first file of the set it is seen in"),
			col("last_seq", tInt, true, "the last file of the set it is seen in"),
			col("start_time_nsec", tInt, true, ""),
			col("end_time_nsec", tInt, true, ""),
		},
		rels: []string{
			"captures ||--o{ processes : ran",
			"processes |o--o{ processes : \"created (parent)\"",
			"containers |o--o{ processes : \"runs (capture, container)\"",
		},
	},
	{name: "execs", doc: "every successful execve and execveat of a process",
		cols: []column{
			col("process", tBigint, true, "processes.id"),
			col("seq", tInt, true, "the file it came from"),
			col("n", tInt, true, "its order in the process, within the file"),
			col("exec_time", tTime, true, ""),
			col("exe", tPath, true, "the executable"),
			col("argv", tText, true, "a JSON array"),
			col("cwd", tPath, true, ""),
			col("exec_time_nsec", tInt, true, ""),
			added(2, "fileless", tBool, "the program ran from a memfd (memfd_create, then execveat of it); null before schema 2"),
		},
		primary: []string{"process", "seq", "n"},
		rels:    []string{"processes ||--o{ execs : ran"},
	},
	{name: "threads", doc: "the tasks of a process",
		cols: []column{
			col("process", tBigint, true, "processes.id"),
			col("seq", tInt, true, "the file it came from"),
			col("n", tInt, true, "its order in the process, within the file (0: the main thread)"),
			col("tid", tInt, true, ""),
			col("start_time", tTime, true, ""),
			col("end_time", tTime, false, "null while running"),
			col("start_time_nsec", tInt, true, ""),
			col("end_time_nsec", tInt, true, ""),
		},
		primary: []string{"process", "seq", "n"},
		rels:    []string{"processes ||--|{ threads : has"},
	},
	{name: "paths", doc: "the paths of a capture set, numbered",
		cols: []column{
			col("capture", tBigint, true, "captures.id"),
			col("id", tInt, true, "its number in the set"),
			col("path", tPath, true, "absolute and clean"),
		},
		primary: []string{"capture", "id"},
		rels:    []string{"captures ||--o{ paths : names"},
	},
	{name: "file_accesses", doc: "every access of a process to a path",
		cols: []column{
			col("capture", tBigint, true, "captures.id"),
			col("process", tBigint, true, "processes.id"),
			col("seq", tInt, true, "the file it came from"),
			col("n", tInt, true, "its order in the process, within the file"),
			col("path", tInt, true, "paths.id in the capture"),
			col("op", tText, true, "open, create, unlink, rename, exec, chdir, mkdir, …"),
			col("mode", tText, false, "r, w or rw for open and create"),
			col("open_time", tTime, true, "when it was opened (or the syscall's time)"),
			col("close_time", tTime, false, "when it was closed; null while open"),
			col("to_path", tInt, false, "paths.id of a rename's new path"),
			col("error", tText, false, "the errno of a failed open or exec"),
			col("open_time_nsec", tInt, true, ""),
			col("close_time_nsec", tInt, true, ""),
			added(2, "target", tPath, "what a link or symlink points to (a symlink's text as given), a mount's source when audit names it"),
			added(2, "perm", tText, "the permission bits a chmod set or mkdir and mknod gave, four octal digits (4755: set-uid)"),
			added(2, "owner", tText, "a chown's new UID:GID, a side empty when unchanged"),
			added(2, "type", tText, "the file type mknod made: fifo, char, block, socket, file"),
			added(2, "flags", tText, "a mount's or umount's flags (bind,rec,…); utime: set (times given) or now"),
			added(2, "size", tBigint, "the length a truncate set"),
			added(2, "serial", tBigint, "the audit event's serial (audit(TIME:SERIAL)); null when none"),
			added(2, "container_path", tPath, "the path a process in a container used, when path (on the host) differs"),
			added(2, "to_container_path", tPath, "the same for to_path"),
			added(2, "filesystem", tText, "the file system of a container's path that has no host path (proc, tmpfs, …)"),
			added(3, "unresolved", tBool, "true when a path names a directory the capture does not tell (/proc/PID/fd/N/NAME); null otherwise"),
		},
		primary: []string{"process", "seq", "n"},
		rels: []string{
			"processes ||--o{ file_accesses : made",
			"paths ||--o{ file_accesses : \"path, to_path\"",
		},
	},
	{name: "process_paths", doc: "each path a process touched, once, by its text: who touched a path, from one index (file_accesses has none by path)",
		cols: []column{
			col("path", tPath, true, "an access's path, or a rename's new path (paths.path)"),
			col("capture", tBigint, true, "captures.id"),
			col("process", tBigint, true, "processes.id"),
			col("accesses", tBigint, true, "how many of its file accesses name the path"),
		},
		primary: []string{"path", "capture", "process"},
		rels: []string{
			"paths ||--o{ process_paths : \"touched by (capture, path)\"",
			"processes ||--o{ process_paths : touched",
		},
	},
	{name: "net", doc: "network entries of a process (socket, connect, bind, listen, accept, sendto, sendmsg)",
		cols: []column{
			col("capture", tBigint, true, "captures.id"),
			col("process", tBigint, true, "processes.id"),
			col("seq", tInt, true, "the file it came from"),
			col("n", tInt, true, "its order in the process, within the file"),
			col("op", tText, true, "socket, connect, bind, listen, accept, sendto, sendmsg"),
			col("family", tText, true, "inet, inet6, unix, netlink, …; empty when unknown"),
			col("address", tText, false, "the IP address (an accept's peer)"),
			col("port", tBigint, false, "the port (netlink: the port id); null when 0 and no address"),
			col("path", tPath, false, "a unix socket's path, @NAME when abstract"),
			col("net_time", tTime, true, ""),
			col("error", tText, false, "the errno of a failed call"),
			col("net_time_nsec", tInt, true, ""),
			added(2, "proto", tText, "tcp, udp, stream, dgram, netlink's protocol, …"),
		},
		primary: []string{"process", "seq", "n"},
		rels:    []string{"processes ||--o{ net : made"},
	},
	{name: "signals", since: 2, doc: "the signals a process sent (kill, tkill, tgkill) and the ptrace attaches it made",
		cols: []column{
			col("capture", tBigint, true, "captures.id"),
			col("process", tBigint, true, "processes.id of the sender"),
			col("seq", tInt, true, "the file it came from"),
			col("n", tInt, true, "its order in the process, within the file"),
			col("op", tText, true, "kill, tkill, tgkill or ptrace"),
			col("signal_time", tTime, true, ""),
			col("pid", tInt, true, "the pid the call named (negative: a process group; tkill, tgkill: a thread id)"),
			col("signal", tInt, false, "the signal's number; null for ptrace"),
			col("request", tText, false, "ptrace's request: attach, seize or traceme"),
			col("target_pid", tInt, false, "the process it reached; null when unknown"),
			col("target_start", tTime, false, "that process's start, which with its pid names it"),
			col("target_comm", tText, false, "that process's name"),
			col("error", tText, false, "the errno of a failed attempt"),
			col("signal_time_nsec", tInt, true, ""),
			col("target_start_nsec", tInt, true, ""),
		},
		primary: []string{"process", "seq", "n"},
		rels:    []string{"processes ||--o{ signals : sent"},
	},
}

// indexes serve the loader and the README's questions.
var indexes = []index{
	{name: "processes_parent", table: "processes", cols: []string{"parent"}, doc: "children of a process (trees)"},
	{name: "processes_pid", table: "processes", cols: []string{"capture", "pid", "start_time"}, doc: "a process by its identity, a pid in a capture (analyze --pid, merging)"},
	{name: "processes_start", table: "processes", cols: []string{"start_time"}, doc: "what ran when"},
	{name: "processes_end", table: "processes", cols: []string{"capture", "end_time"}, doc: "what ended near a file's end (merging late records)"},
	{name: "processes_container", table: "processes", cols: []string{"container"}, where: "container IS NOT NULL", doc: "what ran in a container"},
	{name: "execs_exe", table: "execs", cols: []string{"exe"}, doc: "binaries executed from a directory"},
	{name: "paths_path", table: "paths", cols: []string{"path", "capture"}, unique: true, doc: "a path in every capture"},
	{name: "process_paths_process", table: "process_paths", cols: []string{"process"}, doc: "the paths of a process (merging)"},
	{name: "net_address", table: "net", cols: []string{"address"}, where: "address IS NOT NULL", doc: "who talked to an address"},
	{name: "signals_target", table: "signals", cols: []string{"capture", "target_pid"}, where: "target_pid IS NOT NULL", doc: "who signalled a process", since: 2},
}

// dialect is what differs between SQLite and PostgreSQL.
type dialect int

const (
	sqlite dialect = iota
	postgres
)

func (d dialect) String() string {
	if d == postgres {
		return "postgres"
	}
	return "sqlite"
}

func (d dialect) colType(c colType) string {
	switch d {
	case postgres:
		return [...]string{tID: "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", tInt: "integer", tBigint: "bigint",
			tText: "text", tPath: `text COLLATE "C"`, tTime: "timestamptz", tBool: "boolean"}[c]
	default:
		// SQLite: times as fixed-width RFC 3339 text, which sorts as
		// time does; booleans as 0 and 1.
		return [...]string{tID: "INTEGER PRIMARY KEY", tInt: "integer", tBigint: "integer",
			tText: "text", tPath: "text", tTime: "text", tBool: "boolean"}[c]
	}
}

// ddl returns the statements that create the schema.
func (d dialect) ddl() []string { return d.ddlAt(SchemaVersion) }

// ddlAt returns the statements that create the schema of version v (a
// test makes older databases with it).
func (d dialect) ddlAt(v int) []string {
	var out []string
	for _, t := range tables {
		if t.since > v {
			continue
		}
		out = append(out, d.createTable(t, v))
	}
	for _, ix := range indexes {
		if ix.since <= v {
			out = append(out, d.createIndex(ix))
		}
	}
	return out
}

// createTable returns the statement that creates t with the columns of
// schema version v.
func (d dialect) createTable(t table, v int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (\n", t.name)
	first := true
	for _, c := range t.cols {
		if c.since > v {
			continue
		}
		if !first {
			b.WriteString(",\n")
		}
		first = false
		fmt.Fprintf(&b, "  %s %s", c.name, d.colType(c.typ))
		if c.notNull && c.typ != tID {
			b.WriteString(" NOT NULL")
		}
	}
	if len(t.primary) > 0 {
		fmt.Fprintf(&b, ",\n  PRIMARY KEY (%s)", strings.Join(t.primary, ", "))
	}
	for _, u := range t.unique {
		fmt.Fprintf(&b, ",\n  UNIQUE (%s)", strings.Join(u, ", "))
	}
	b.WriteString("\n)")
	if d == sqlite && len(t.primary) > 0 {
		// Rows in the key's order, no rowid b-tree beside it: the
		// bulk tables' keys begin with a process id, which grows as
		// a load goes, so rows are appended.
		b.WriteString(" WITHOUT ROWID")
	}
	return b.String()
}

func (d dialect) createIndex(ix index) string {
	u := ""
	if ix.unique {
		u = "UNIQUE "
	}
	s := fmt.Sprintf("CREATE %sINDEX %s ON %s (%s)", u, ix.name, ix.table, strings.Join(ix.cols, ", "))
	if ix.where != "" {
		s += " WHERE " + ix.where
	}
	return s
}

// migration returns the statements that take a database from version v
// to v+1: from 0, an empty database, the whole schema of SchemaVersion
// at once; from another, what version v+1 added (its columns, appended to
// their tables as the whole schema has them last, its tables and
// indexes). A migration's statements run in one transaction.
func migration(d dialect, v int) []string {
	if v == 0 {
		return append(d.ddl(), fmt.Sprintf("INSERT INTO schema_version (version) VALUES (%d)", SchemaVersion))
	}
	var out []string
	for _, t := range tables {
		switch {
		case t.since == v+1:
			out = append(out, d.createTable(t, v+1))
		case t.since <= v:
			for _, c := range t.cols {
				if c.since == v+1 {
					out = append(out, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", t.name, c.name, d.colType(c.typ)))
				}
			}
		}
	}
	for _, ix := range indexes {
		if ix.since == v+1 {
			out = append(out, d.createIndex(ix))
		}
	}
	if v+1 == 2 && d == postgres {
		// Schema 2 widened net.port: a netlink port id is a u32.
		out = append(out, "ALTER TABLE net ALTER COLUMN port TYPE bigint")
	}
	return out
}

// tableColumns returns the column names of a table, in order.
func tableColumns(name string) []string {
	for _, t := range tables {
		if t.name == name {
			out := make([]string, len(t.cols))
			for i, c := range t.cols {
				out[i] = c.name
			}
			return out
		}
	}
	panic("store: no table " + name)
}

// mermaid returns the schema as the README's mermaid erDiagram: each
// table with its columns (abstract types; PK, FK), then the
// relationships.
func mermaid() string {
	var b strings.Builder
	b.WriteString("erDiagram\n")
	names := [...]string{tID: "bigint", tInt: "int", tBigint: "bigint", tText: "text", tPath: "path", tTime: "time", tBool: "bool"}
	var rels []string
	for _, t := range tables {
		if t.name == "schema_version" {
			continue
		}
		fmt.Fprintf(&b, "  %s {\n", t.name)
		for _, c := range t.cols {
			var keys []string
			if c.typ == tID || slices.Contains(t.primary, c.name) {
				keys = append(keys, "PK")
			}
			if strings.HasPrefix(c.doc, "captures.id") || strings.HasPrefix(c.doc, "processes.id") || strings.HasPrefix(c.doc, "paths.id") {
				keys = append(keys, "FK")
			}
			for _, u := range t.unique {
				if len(u) == 1 && u[0] == c.name {
					keys = append(keys, "UK")
				}
			}
			key := ""
			if len(keys) > 0 {
				key = " " + strings.Join(keys, ", ")
			}
			fmt.Fprintf(&b, "    %s %s%s\n", names[c.typ], c.name, key)
		}
		b.WriteString("  }\n")
		rels = append(rels, t.rels...)
	}
	for _, r := range rels {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	return b.String()
}
