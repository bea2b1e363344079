package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// wtx is a load's transaction: statements with ? placeholders, and rows
// in bulk. It is used by one goroutine at a time.
type wtx interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	// copy writes rows into table's columns cols.
	copy(ctx context.Context, table string, cols []string, rows [][]any) error
	// lockCapture waits until no other loader of that capture set holds
	// the set, and holds it until the transaction ends.
	lockCapture(ctx context.Context, captureID string) error
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// withTx runs fn in a write transaction, committed when fn returns nil.
func (db *DB) withTx(ctx context.Context, fn func(w wtx) error) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if db.d == postgres {
		return conn.Raw(func(dc any) error {
			pc := dc.(*stdlib.Conn).Conn()
			tx, err := pc.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(context.WithoutCancel(ctx))
			if err := fn(&pgTx{tx: tx}); err != nil {
				return err
			}
			return tx.Commit(ctx)
		})
	}
	// BEGIN IMMEDIATE (the DSN's _txlock): the database's write lock is
	// taken now, waiting up to the busy timeout for another writer.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st := &sqliteTx{tx: tx, conn: conn, stmts: map[string]driver.Stmt{}}
	defer st.closeStmts()
	if err := fn(st); err != nil {
		return err
	}
	st.closeStmts()
	return tx.Commit()
}

// retryable reports whether a PostgreSQL error is a deadlock or a
// serialization failure, after which the whole load may run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

type pgTx struct{ tx pgx.Tx }

func (t *pgTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, rebindPG(q), args...)
	return tag.RowsAffected(), err
}

func (t *pgTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := t.tx.Query(ctx, rebindPG(q), args...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (t *pgTx) copy(ctx context.Context, table string, cols []string, rs [][]any) error {
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rs))
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	return nil
}

func (t *pgTx) lockCapture(ctx context.Context, captureID string) error {
	h := fnv.New64a()
	h.Write([]byte("proctrail capture " + captureID))
	_, err := t.tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64()))
	return err
}

type sqliteTx struct {
	tx   *sql.Tx
	conn *sql.Conn // the transaction's: copy writes through its driver
	// stmts are copy's INSERTs, prepared on the driver's connection:
	// database/sql's conversion of every argument cost a fifth of a
	// load's time.
	stmts map[string]driver.Stmt
}

func (t *sqliteTx) closeStmts() {
	for k, s := range t.stmts {
		s.Close()
		delete(t.stmts, k)
	}
}

func (t *sqliteTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	r, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

func (t *sqliteTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

// sqliteBatch is how many rows one INSERT statement writes: SQLite's
// cost is per statement as much as per row (13 columns × 256 rows stay
// below SQLite's 32,766 parameters).
const sqliteBatch = 256

// copy writes rows with multi-row INSERTs of sqliteBatch rows, through
// the driver: the transaction is idle while it runs (the bulk writer has
// it between syncs), and the driver's connection is the transaction's.
func (t *sqliteTx) copy(ctx context.Context, table string, cols []string, rs [][]any) error {
	return t.conn.Raw(func(dc any) error {
		conn, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("insert into %s: the SQLite driver cannot prepare", table)
		}
		args := make([]driver.NamedValue, 0, sqliteBatch*len(cols))
		for len(rs) > 0 {
			n := min(len(rs), sqliteBatch)
			if n < sqliteBatch {
				n = 1
			}
			key := fmt.Sprintf("%s/%d", table, n)
			s := t.stmts[key]
			if s == nil {
				var b strings.Builder
				fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
				one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
				for i := range n {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString(one)
				}
				var err error
				if s, err = conn.PrepareContext(ctx, b.String()); err != nil {
					return fmt.Errorf("insert into %s: %w", table, err)
				}
				t.stmts[key] = s
			}
			args = args[:0]
			for _, r := range rs[:n] {
				for _, v := range r {
					args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: driverValue(v)})
				}
			}
			if _, err := s.(driver.StmtExecContext).ExecContext(ctx, args); err != nil {
				return fmt.Errorf("insert into %s: %w", table, err)
			}
			rs = rs[n:]
		}
		return nil
	})
}

// driverValue turns the loader's values into driver.Values: int64,
// float64, bool, []byte, string, time.Time or nil.
func driverValue(v any) driver.Value {
	switch x := v.(type) {
	case int32:
		return int64(x)
	case int:
		return int64(x)
	}
	return v
}

func (t *sqliteTx) lockCapture(context.Context, string) error {
	return nil // BEGIN IMMEDIATE holds the whole database
}

// The values of a time column: PostgreSQL takes a time.Time (whole
// microseconds), SQLite the fixed-width text. The nanoseconds past the
// microsecond go to the X_nsec column in both.

// timeVal returns the value of a time column for ns since the epoch.
func (db *DB) timeVal(ns int64) any {
	if db.d == postgres {
		us, _ := splitTime(ns)
		return time.UnixMicro(us).UTC()
	}
	return string(appendTime(nil, ns))
}

// optTimeVal is timeVal, or NULL for 0 (unknown, or not yet).
func (db *DB) optTimeVal(ns int64) any {
	if ns == 0 {
		return nil
	}
	return db.timeVal(ns)
}

// nsecVal returns the X_nsec value of ns (0 for 0).
func nsecVal(ns int64) int32 {
	_, n := splitTime(ns)
	return int32(n)
}

// scanTime turns a time column's value and its nsec back into ns since
// the epoch; NULL is 0.
func scanTime(v any, nsec int64) (int64, error) {
	switch t := v.(type) {
	case nil:
		return 0, nil
	case time.Time:
		return t.UnixMicro()*1000 + nsec, nil
	case string:
		return parseTimeText(t, nsec)
	case []byte:
		return parseTimeText(string(t), nsec)
	}
	return 0, fmt.Errorf("a time column holds %T", v)
}

func parseTimeText(s string, nsec int64) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("a time column holds %q: %w", s, err)
	}
	us, _ := splitTime(t.UnixNano())
	return us*1000 + nsec, nil
}
