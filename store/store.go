package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// DB is a results database, SQLite or PostgreSQL. It is safe for
// concurrent use; Load serializes what must be (see [DB.Load]).
type DB struct {
	sql  *sql.DB
	d    dialect
	name string // the file, or the URL without its password
	ro   bool
}

// Options configure Open. A nil *Options means the defaults.
type Options struct {
	// ReadOnly opens an existing database for reading: nothing is
	// created or migrated, and every statement runs read-only.
	ReadOnly bool
	// BusyTimeout is how long a SQLite writer waits for another one (a
	// second loader) before giving up. Zero means 10 minutes.
	BusyTimeout time.Duration
}

// IsPostgres reports whether dsn names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens the database dsn names: a postgres:// or postgresql:// URL,
// or else the path of a SQLite file, created if missing. It migrates
// the schema to SchemaVersion (one transaction; concurrent Opens wait for
// each other) unless opts.ReadOnly.
func Open(ctx context.Context, dsn string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = 10 * time.Minute
	}
	db := &DB{ro: o.ReadOnly}
	if IsPostgres(dsn) {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		// Times come back in UTC whatever the server's zone.
		cfg.RuntimeParams["timezone"] = "UTC"
		if o.ReadOnly {
			cfg.RuntimeParams["default_transaction_read_only"] = "on"
		}
		db.d, db.sql = postgres, stdlib.OpenDB(*cfg)
		db.name = redact(dsn)
	} else {
		if dsn == "" {
			return nil, errors.New("store: no database given")
		}
		if o.ReadOnly {
			if _, err := os.Stat(dsn); err != nil {
				return nil, fmt.Errorf("store: %w", err)
			}
		}
		q := url.Values{}
		q.Set("_txlock", "immediate") // a writer takes the lock at BEGIN: no upgrade deadlocks
		q.Set("_busy_timeout", strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10))
		q.Add("_pragma", "case_sensitive_like(1)") // LIKE as PostgreSQL's
		q.Add("_pragma", "cache_size(-16384)")     // 16 MiB: the bulk tables are appended to
		q.Add("_pragma", "foreign_keys(0)")
		if o.ReadOnly {
			q.Set("_query_only", "1")
		} else {
			// WAL: readers go on while a loader writes. NORMAL: a commit
			// is atomic; only the last ones may be lost at a power cut.
			q.Set("_journal_mode", "WAL")
			q.Set("_synchronous", "NORMAL")
		}
		s, err := sql.Open("sqlite", "file:"+escapeURIPath(dsn)+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		db.d, db.sql, db.name = sqlite, s, dsn
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("store: %s: %w", db.name, err)
	}
	if err := db.migrate(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("store: %s: %w", db.name, err)
	}
	return db, nil
}

// escapeURIPath escapes what a SQLite URI's path may not hold as is.
func escapeURIPath(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return r.Replace(p)
}

// redact removes the password from a URL, for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…"
	}
	return u.Redacted()
}

// Close closes the database.
func (db *DB) Close() error { return db.sql.Close() }

// Postgres reports whether db is a PostgreSQL database.
func (db *DB) Postgres() bool { return db.d == postgres }

// SQL returns the database/sql handle, for callers that query the
// schema themselves.
func (db *DB) SQL() *sql.DB { return db.sql }

// version returns the schema version, 0 for an empty database.
func (db *DB) version(ctx context.Context, q querier) (int, error) {
	var exists bool
	var err error
	if db.d == postgres {
		err = q.QueryRowContext(ctx, "SELECT to_regclass('schema_version') IS NOT NULL").Scan(&exists)
	} else {
		var n int
		err = q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").Scan(&n)
		exists = n > 0
	}
	if err != nil || !exists {
		return 0, err
	}
	var v int
	if err := q.QueryRowContext(ctx, "SELECT version FROM schema_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// ErrSchema is returned by Open for a database whose schema this version
// of proctrail cannot use.
var ErrSchema = errors.New("store: unsupported schema version")

// migrate brings the schema to SchemaVersion.
func (db *DB) migrate(ctx context.Context) error {
	v, err := db.version(ctx, db.sql)
	if err != nil {
		return err
	}
	switch {
	case v == SchemaVersion:
		return nil
	case v > SchemaVersion:
		return fmt.Errorf("%w: the database has schema %d, this proctrail knows %d: use a newer proctrail", ErrSchema, v, SchemaVersion)
	case db.ro && v == 0:
		return errors.New("not a proctrail database (no schema_version table): load a capture into it first")
	case db.ro:
		return fmt.Errorf("%w: the database has schema %d, this proctrail writes %d: proctrail load migrates it", ErrSchema, v, SchemaVersion)
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if db.d == postgres {
		// Two first loaders must not both create the tables.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockMigrate); err != nil {
			return err
		}
	}
	// Read again under the lock: another Open may have migrated meanwhile.
	if v, err = db.version(ctx, tx); err != nil {
		return err
	}
	for v < SchemaVersion {
		to := v + 1
		if v == 0 {
			to = SchemaVersion // migrations[0] makes the current schema
		}
		for _, stmt := range migrations[v](db.d) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d to %d: %w\n%s", v, to, err, stmt)
			}
		}
		if v > 0 {
			if _, err := tx.ExecContext(ctx, db.rebind("UPDATE schema_version SET version = ?"), to); err != nil {
				return err
			}
		}
		v = to
	}
	return tx.Commit()
}

// Advisory lock keys (PostgreSQL): the migration's, and the space the
// per-capture keys are drawn from.
const (
	lockMigrate = 0x70726f6374726169 // "proctrai"
)

// rebind turns the ? placeholders of q into PostgreSQL's $1, $2, ….
// Queries of this package hold no ? in literals.
func (db *DB) rebind(q string) string {
	if db.d != postgres {
		return q
	}
	return rebindPG(q)
}

func rebindPG(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
