// Package store keeps analyses in a database, SQLite or PostgreSQL, with
// one schema for both, so that questions across captures, hosts and weeks
// are SQL.
//
// [Open] opens a SQLite file (modernc.org/sqlite, pure Go: the binary
// stays cgo-free) or a postgres:// URL (pgx) and brings the schema to
// [SchemaVersion], in one transaction. [DB.Load] analyzes one capture file
// or auditd log alone (analyze.Walk, no filter) and writes its rows in one
// transaction, streamed in batches (COPY on PostgreSQL); [DB.Query] runs
// a read-only statement; [DB.Model] rebuilds analyze's Model of a
// selection, which analyze's renderers write as they write a capture's.
// The analyze package does not import this one; the command line wires
// them.
//
// # Schema
//
// captures (one row per capture set: the files of one recording, an
// imported capture, or an auditd log) and capture_files (each file
// loaded: sequence number, SHA-256, span and counters) hold what a
// Model's Capture holds; containers, processes, execs, threads, paths
// (numbered per set), file_accesses, process_paths (each path a process
// touched, once) and net (filled once analyze reports network entries)
// hold the rest. The README draws the diagram, which a test keeps equal
// to the tables declared in schema.go.
//
// A process is (capture, pid, start_time); other tables refer to its
// surrogate processes.id. Times are timestamps (timestamptz; in SQLite
// RFC 3339 UTC text with nine fractional digits, which sorts as time),
// each with an X_nsec column for the nanoseconds PostgreSQL's
// microseconds lack. Text that is not UTF-8 or holds a NUL is stored
// with each such byte as the code point U+10FF00+b (see encodeText), and
// read back as the bytes.
//
// # Loading
//
// A file is known by its set's id (the recorder's capture_id, or derived
// for logs and imports: see identify), its sequence number and its
// SHA-256: loading it again changes nothing, and a failure or a kill
// changes nothing. Loaders of one set take turns (an advisory lock on
// PostgreSQL; SQLite has one writer); those of different sets run at once
// on PostgreSQL. The files of a rotated set may be loaded one by one, in
// any order: rows of one process seen in several files are merged into
// one (merge.go states the rule), so the rows do not depend on the order.
//
// Memory stays what the analysis of one file needs, a few batches of
// rows, and the paths one process touched with their counts:
// analyze.Walk hands a process's file accesses one at a time, from the
// spool.
//
// A DB is safe for concurrent use.
package store
