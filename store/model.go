package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"proctrail/analyze"
)

// Selection chooses the capture set and the processes [DB.Model]
// rebuilds.
type Selection struct {
	// Host is the recording host's name; empty matches any host.
	Host string
	// CaptureID is the set's id, or a prefix of it; empty matches any.
	CaptureID string
	// Pid keeps the subtree of every process that had this pid, as
	// analyze.Options.Pid; zero keeps every process.
	Pid int32
	// Container keeps the processes of the containers whose id starts
	// with this prefix, as analyze.Options.Container.
	Container string
	// Cmd keeps the subtree of the command given to `record --`.
	Cmd bool
}

// CaptureSet describes a capture set of the database.
type CaptureSet struct {
	ID         string
	Source     string
	Host       string
	Start, End int64
	Files      int
}

// ErrNoMatch is returned by Model when no capture set holds what the
// selection asks for; ErrAmbiguous when several do.
var (
	ErrNoMatch   = errors.New("store: no capture set matches")
	ErrAmbiguous = errors.New("store: several capture sets match")
)

// Captures lists the capture sets that match sel (its Host, CaptureID,
// and Pid or Container: a set that holds such processes), by start.
func (db *DB) Captures(ctx context.Context, sel *Selection) ([]CaptureSet, error) {
	q := "SELECT c.capture_id, c.source, c.host, c.start_time, c.start_time_nsec, c.end_time, c.end_time_nsec, (SELECT count(*) FROM capture_files f WHERE f.capture = c.id) FROM captures c WHERE 1 = 1"
	var args []any
	if sel.Host != "" {
		q += " AND c.host = ?"
		args = append(args, encodeText(sel.Host))
	}
	if sel.CaptureID != "" {
		q += " AND substr(c.capture_id, 1, ?) = ?"
		args = append(args, len(sel.CaptureID), sel.CaptureID)
	}
	if sel.Pid != 0 {
		q += " AND EXISTS (SELECT 1 FROM processes p WHERE p.capture = c.id AND p.pid = ?)"
		args = append(args, sel.Pid)
	}
	if sel.Container != "" {
		c := encodeText(sel.Container)
		q += " AND EXISTS (SELECT 1 FROM processes p WHERE p.capture = c.id AND substr(p.container, 1, ?) = ?)"
		args = append(args, len([]rune(c)), c)
	}
	if sel.Cmd {
		q += " AND EXISTS (SELECT 1 FROM processes p WHERE p.capture = c.id AND p.command)"
	}
	q += " ORDER BY c.start_time, c.capture_id"
	rs, err := db.sql.QueryContext(ctx, db.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rs.Close()
	var out []CaptureSet
	for rs.Next() {
		var c CaptureSet
		var start, end any
		var startN, endN int64
		if err := rs.Scan(&c.ID, &c.Source, &c.Host, &start, &startN, &end, &endN, &c.Files); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		c.Host = decodeText(c.Host)
		if c.Start, err = scanTime(start, startN); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		if c.End, err = scanTime(end, endN); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// Model rebuilds the analysis of one capture set from the database:
// the processes sel keeps, with their execs, threads and files, the
// containers they ran in, and the set's Capture. For a set of one file
// it is the Model analyze.Build gives for that file with the same
// filter, so the renderers write the same bytes. The set must be the
// only one that matches sel (see Captures): ErrNoMatch or ErrAmbiguous
// otherwise, with the candidates named.
func (db *DB) Model(ctx context.Context, sel *Selection) (*analyze.Model, error) {
	sets, err := db.Captures(ctx, sel)
	if err != nil {
		return nil, err
	}
	switch {
	case len(sets) == 0:
		return nil, fmt.Errorf("%w %s", ErrNoMatch, describe(sel))
	case len(sets) > 1:
		var b strings.Builder
		for i, c := range sets {
			if i == 8 {
				fmt.Fprintf(&b, "\n  … and %d more", len(sets)-i)
				break
			}
			fmt.Fprintf(&b, "\n  %s  host %q  %s to %s  (%d files, %s)", c.ID, c.Host, fmtTime(c.Start), fmtTime(c.End), c.Files, c.Source)
		}
		return nil, fmt.Errorf("%w %s; choose one by its id (a prefix is enough):%s", ErrAmbiguous, describe(sel), b.String())
	}
	var m *analyze.Model
	err = db.readTx(ctx, func(tx sqlTx) error {
		var err error
		m, err = db.model(ctx, tx, sets[0].ID, sel)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: capture %s: %w", sets[0].ID, err)
	}
	return m, nil
}

// readTx runs fn in a read-only transaction: its queries see one state
// of the database, whatever loaders commit meanwhile.
func (db *DB) readTx(ctx context.Context, fn func(tx sqlTx) error) error {
	if db.d == postgres {
		tx, err := db.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		return fn(tx)
	}
	// Not BeginTx, which begins IMMEDIATE (the DSN's _txlock, for
	// loaders): a reader takes no write lock.
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	return fn(conn)
}

func describe(sel *Selection) string {
	var parts []string
	if sel.Host != "" {
		parts = append(parts, fmt.Sprintf("host %q", sel.Host))
	}
	if sel.CaptureID != "" {
		parts = append(parts, "id "+sel.CaptureID+"…")
	}
	if sel.Pid != 0 {
		parts = append(parts, fmt.Sprintf("with pid %d", sel.Pid))
	}
	if sel.Container != "" {
		parts = append(parts, fmt.Sprintf("with container %q", sel.Container))
	}
	if sel.Cmd {
		parts = append(parts, "with a recorded command")
	}
	if len(parts) == 0 {
		return "(the database holds no capture)"
	}
	return strings.Join(parts, ", ")
}

func fmtTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return string(appendTime(nil, ns))
}

type sqlTx interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func (db *DB) model(ctx context.Context, tx sqlTx, captureID string, sel *Selection) (*analyze.Model, error) {
	var capKey int64
	var host, kernel string
	if err := tx.QueryRowContext(ctx, db.rebind("SELECT id, host, kernel FROM captures WHERE capture_id = ?"), captureID).Scan(&capKey, &host, &kernel); err != nil {
		return nil, err
	}
	files, err := readFiles(ctx, sqlQuerier{db, tx}, capKey)
	if err != nil {
		return nil, err
	}
	m := &analyze.Model{Capture: totals(files)}
	m.Capture.Host, m.Capture.Kernel = decodeText(host), decodeText(kernel)

	r := newModelReader(ctx, db, tx, capKey, sel)
	// The kept processes, then their execs, threads, files, signals and
	// network entries, each in its process's order.
	for _, read := range []func() error{r.processes, r.execs, r.threads, r.files, r.signals, r.net} {
		if err := read(); err != nil {
			return nil, err
		}
	}
	m.Processes = r.forest()
	if m.Containers, err = r.containers(); err != nil {
		return nil, err
	}
	return m, nil
}

// modelReader reads the kept processes of a capture into analyze's
// Processes, a table at a time.
type modelReader struct {
	ctx    context.Context
	db     *DB
	tx     sqlTx
	capKey int64
	// with and args select the kept processes' ids as sub, for query.
	with string
	args []any

	procs   map[int64]*analyze.Process
	parents map[int64]int64
	order   []int64 // the ids of procs, as read
}

func newModelReader(ctx context.Context, db *DB, tx sqlTx, capKey int64, sel *Selection) *modelReader {
	// The kept processes, as a recursive query both databases run.
	var with string
	args := []any{capKey}
	switch {
	case sel.Pid != 0:
		with = "WITH RECURSIVE sub(id) AS (SELECT id FROM processes WHERE capture = ? AND pid = ? UNION SELECT c.id FROM processes c JOIN sub ON c.parent = sub.id)"
		args = append(args, sel.Pid)
	case sel.Cmd:
		with = "WITH RECURSIVE sub(id) AS (SELECT id FROM processes WHERE capture = ? AND command UNION SELECT c.id FROM processes c JOIN sub ON c.parent = sub.id)"
	default:
		with = "WITH sub(id) AS (SELECT id FROM processes WHERE capture = ?)"
	}
	if sel.Container != "" {
		c := encodeText(sel.Container)
		with = strings.Replace(with, "sub(id) AS (", "sub0(id) AS (", 1) + ", sub(id) AS (SELECT p.id FROM processes p JOIN sub0 ON p.id = sub0.id WHERE substr(p.container, 1, ?) = ?)"
		with = strings.Replace(with, "JOIN sub ON c.parent = sub.id", "JOIN sub0 ON c.parent = sub0.id", 1)
		args = append(args, len([]rune(c)), c)
	}
	return &modelReader{ctx: ctx, db: db, tx: tx, capKey: capKey, with: with, args: args,
		procs: map[int64]*analyze.Process{}, parents: map[int64]int64{}}
}

// each runs q, a query of the kept processes (sub), and calls row for each
// of its rows; it closes the rows and returns the first error.
func (r *modelReader) each(q string, row func(rs *sql.Rows) error) error {
	rs, err := r.tx.QueryContext(r.ctx, r.db.rebind(r.with+" "+q), r.args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		if err := row(rs); err != nil {
			return err
		}
	}
	return rs.Err()
}

// process calls add with the process of id, when it is kept.
func (r *modelReader) process(id int64, add func(p *analyze.Process)) {
	if p := r.procs[id]; p != nil {
		add(p)
	}
}

func (r *modelReader) processes() error {
	return r.each(procSelect+" WHERE id IN (SELECT id FROM sub)", func(rs *sql.Rows) error {
		row, err := scanProc(sqlRows{rs})
		if err != nil {
			return err
		}
		p, err := row.process()
		if err != nil {
			return err
		}
		r.procs[row.id] = p
		if id, ok := row.parent.(int64); ok {
			r.parents[row.id] = id
		}
		r.order = append(r.order, row.id)
		return nil
	})
}

func (r *modelReader) execs() error {
	return r.each("SELECT process, seq, n, exec_time, exec_time_nsec, exe, argv, cwd, fileless FROM execs WHERE process IN (SELECT id FROM sub) ORDER BY process, seq, n", func(rs *sql.Rows) error {
		var id int64
		var seq, n int32
		var t any
		var tn int64
		var x analyze.Exec
		var argv string
		var fileless sql.NullBool
		var err error
		if err := rs.Scan(&id, &seq, &n, &t, &tn, &x.Exe, &argv, &x.Cwd, &fileless); err != nil {
			return err
		}
		if x.Time, err = scanTime(t, tn); err != nil {
			return err
		}
		if x.Argv, err = decodeArgv(argv); err != nil {
			return fmt.Errorf("execs of process %d: argv: %w", id, err)
		}
		x.Exe, x.Cwd, x.Fileless = decodeText(x.Exe), decodeText(x.Cwd), fileless.Bool
		r.process(id, func(p *analyze.Process) { p.Execs = append(p.Execs, x) })
		return nil
	})
}

func (r *modelReader) threads() error {
	type thread struct {
		analyze.Thread
		first bool // the first of its process's first file: the main thread
		seq   int32
		n     int32
	}
	threads := map[int64][]thread{}
	err := r.each("SELECT t.process, t.seq, t.n, t.tid, t.start_time, t.start_time_nsec, t.end_time, t.end_time_nsec, p.first_seq FROM threads t JOIN processes p ON p.id = t.process WHERE t.process IN (SELECT id FROM sub)", func(rs *sql.Rows) error {
		var id int64
		var t thread
		var start, end any
		var sn, en int64
		var first int32
		var err error
		if err := rs.Scan(&id, &t.seq, &t.n, &t.TID, &start, &sn, &end, &en, &first); err != nil {
			return err
		}
		if t.Start, err = scanTime(start, sn); err != nil {
			return err
		}
		if t.End, err = scanTime(end, en); err != nil {
			return err
		}
		t.first = t.seq == first && t.n == 0
		threads[id] = append(threads[id], t)
		return nil
	})
	if err != nil {
		return err
	}
	for id, ts := range threads {
		// analyze's order: the main thread, then by tid and start.
		slices.SortFunc(ts, func(a, b thread) int {
			if a.first != b.first {
				if a.first {
					return -1
				}
				return 1
			}
			return cmp.Or(cmp.Compare(a.TID, b.TID), cmp.Compare(a.Start, b.Start), cmp.Compare(a.seq, b.seq), cmp.Compare(a.n, b.n))
		})
		r.process(id, func(p *analyze.Process) {
			p.Threads = make([]analyze.Thread, len(ts))
			for i, t := range ts {
				p.Threads[i] = t.Thread
			}
		})
	}
	return nil
}

// decodeInto sets each dst whose src is not NULL to its decoded text.
func decodeInto(pairs ...[2]*string) {
	for _, v := range pairs {
		if v[0] != nil {
			*v[1] = decodeText(*v[0])
		}
	}
}

func (r *modelReader) files() error {
	err := r.each(`SELECT f.process, f.op, f.mode, f.open_time, f.open_time_nsec, f.close_time, f.close_time_nsec, f.error, p.path, t.path,
f.target, f.perm, f.owner, f.type, f.flags, f.size, f.serial, f.container_path, f.to_container_path, f.filesystem, f.unresolved
FROM file_accesses f JOIN paths p ON p.capture = f.capture AND p.id = f.path LEFT JOIN paths t ON t.capture = f.capture AND t.id = f.to_path
WHERE f.process IN (SELECT id FROM sub) ORDER BY f.process, f.seq, f.n`, func(rs *sql.Rows) error {
		var id int64
		var f analyze.File
		var mode, errno, to *string
		var open, close any
		var on, cn int64
		var details [8]*string
		var size, serial sql.NullInt64
		var unresolved sql.NullBool
		var err error
		if err := rs.Scan(&id, &f.Op, &mode, &open, &on, &close, &cn, &errno, &f.Path, &to,
			&details[0], &details[1], &details[2], &details[3], &details[4], &size, &serial, &details[5], &details[6], &details[7], &unresolved); err != nil {
			return err
		}
		if f.Open, err = scanTime(open, on); err != nil {
			return err
		}
		if f.Close, err = scanTime(close, cn); err != nil {
			return err
		}
		f.Op, f.Path = decodeText(f.Op), decodeText(f.Path)
		decodeInto([2]*string{mode, &f.Mode}, [2]*string{errno, &f.Error}, [2]*string{to, &f.To})
		for i, dst := range [...]*string{&f.Target, &f.Perm, &f.Owner, &f.Type, &f.Flags, &f.ContainerPath, &f.ToContainerPath, &f.Filesystem} {
			decodeInto([2]*string{details[i], dst})
		}
		f.Unresolved = unresolved.Valid && unresolved.Bool
		if size.Valid {
			f.Size = strconv.FormatInt(size.Int64, 10)
		}
		if serial.Valid && serial.Int64 > 0 {
			f.Serial = uint64(serial.Int64)
		}
		r.process(id, func(p *analyze.Process) { p.Files = append(p.Files, f) })
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range r.procs {
		analyze.MarkSearches(p.Files) // as analyze marks them, from their order
	}
	return nil
}

func (r *modelReader) signals() error {
	return r.each(`SELECT process, op, signal_time, signal_time_nsec, pid, signal, request, target_pid, target_start, target_start_nsec, target_comm, error
FROM signals WHERE process IN (SELECT id FROM sub) ORDER BY process, seq, n`, func(rs *sql.Rows) error {
		var id int64
		var sg analyze.Signal
		var t, ts any
		var tn, tsn int64
		var sig, tpid sql.NullInt64
		var request, tcomm, errno *string
		var err error
		if err := rs.Scan(&id, &sg.Op, &t, &tn, &sg.PID, &sig, &request, &tpid, &ts, &tsn, &tcomm, &errno); err != nil {
			return err
		}
		if sg.Time, err = scanTime(t, tn); err != nil {
			return err
		}
		if sg.TargetStart, err = scanTime(ts, tsn); err != nil {
			return err
		}
		sg.Op, sg.Signal, sg.TargetPID = decodeText(sg.Op), int(sig.Int64), int32(tpid.Int64)
		decodeInto([2]*string{request, &sg.Request}, [2]*string{tcomm, &sg.TargetComm}, [2]*string{errno, &sg.Error})
		r.process(id, func(p *analyze.Process) { p.Signals = append(p.Signals, sg) })
		return nil
	})
}

func (r *modelReader) net() error {
	return r.each(`SELECT process, op, family, proto, address, port, path, net_time, net_time_nsec, error
FROM net WHERE process IN (SELECT id FROM sub) ORDER BY process, seq, n`, func(rs *sql.Rows) error {
		var id int64
		var e analyze.NetEntry
		var proto, addr, path, errno *string
		var port *int64
		var t any
		var tn int64
		var err error
		if err := rs.Scan(&id, &e.Op, &e.Family, &proto, &addr, &port, &path, &t, &tn, &errno); err != nil {
			return err
		}
		if e.Time, err = scanTime(t, tn); err != nil {
			return err
		}
		e.Op, e.Family = decodeText(e.Op), decodeText(e.Family)
		decodeInto([2]*string{proto, &e.Proto}, [2]*string{path, &e.Path}, [2]*string{errno, &e.Error})
		if addr != nil {
			e.Addr = *addr
		}
		if port != nil {
			e.Port = int(*port)
		}
		r.process(id, func(p *analyze.Process) { p.Net = append(p.Net, e) })
		return nil
	})
}

// forest links the kept processes into trees and returns the roots: a
// kept process whose parent is not kept is a root; siblings and roots by
// start, then pid, as analyze orders them.
func (r *modelReader) forest() []*analyze.Process {
	procs := r.procs
	children := map[int64][]int64{}
	var roots []int64
	for _, id := range r.order {
		if par, ok := r.parents[id]; ok && procs[par] != nil && par != id {
			children[par] = append(children[par], id)
		} else {
			roots = append(roots, id)
		}
	}
	byStart := func(a, b int64) int {
		pa, pb := procs[a], procs[b]
		return cmp.Or(cmp.Compare(pa.Start, pb.Start), cmp.Compare(pa.PID, pb.PID), cmp.Compare(a, b))
	}
	slices.SortFunc(roots, byStart)
	var out []*analyze.Process
	for _, id := range roots {
		out = append(out, procs[id])
	}
	placed := map[int64]bool{}
	// Without recursion: a deep fork chain cannot exhaust the stack.
	stack := slices.Clone(roots)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if placed[id] {
			continue
		}
		placed[id] = true
		kids := children[id]
		slices.SortFunc(kids, byStart)
		p := procs[id]
		for _, k := range kids {
			if !placed[k] {
				p.Children = append(p.Children, procs[k])
				stack = append(stack, k)
			}
		}
	}
	return out
}

// containers returns the containers of the kept processes, by id.
func (r *modelReader) containers() ([]analyze.Container, error) {
	counts := map[string]int{}
	for _, p := range r.procs {
		if p.Container != "" {
			counts[p.Container]++
		}
	}
	if len(counts) == 0 {
		return nil, nil
	}
	rs, err := r.tx.QueryContext(r.ctx, r.db.rebind("SELECT id, runtime, rootfs FROM containers WHERE capture = ?"), r.capKey)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []analyze.Container
	for rs.Next() {
		var c analyze.Container
		if err := rs.Scan(&c.ID, &c.Runtime, &c.Rootfs); err != nil {
			return nil, err
		}
		c.ID, c.Runtime, c.Rootfs = decodeText(c.ID), decodeText(c.Runtime), decodeText(c.Rootfs)
		if c.Processes = counts[c.ID]; c.Processes > 0 {
			out = append(out, c)
		}
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b analyze.Container) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// sqlQuerier adapts a database/sql transaction to readFiles.
type sqlQuerier struct {
	db *DB
	tx sqlTx
}

func (q sqlQuerier) query(ctx context.Context, s string, args ...any) (rows, error) {
	r, err := q.tx.QueryContext(ctx, q.db.rebind(s), args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}
