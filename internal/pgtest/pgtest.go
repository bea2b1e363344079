package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"proctrail/internal/testenv"
)

// Server is a running PostgreSQL server. Its methods are safe for
// concurrent use.
type Server struct {
	dir    string // the temporary directory: data/, the socket, the log
	bin    string // the directory of initdb, pg_ctl and postgres
	cred   *syscall.Credential
	user   string // the database superuser
	n      atomic.Int64
	stopMu sync.Mutex
	done   bool
}

// ErrNotInstalled is returned by [Start] when no PostgreSQL server
// binaries are found.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")

// findBin returns the directory holding initdb and pg_ctl.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// Start creates a cluster in a new directory under parent ("" for the
// system's temporary directory) and starts its server. Under root, the
// postgres user must be able to reach parent. settings are server
// settings ("fsync=on") that override the test defaults, which give up
// durability for speed (fsync, synchronous_commit and full_page_writes
// off). The caller stops it with Stop.
func Start(parent string, settings ...string) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "proctrail-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, bin: bin, user: "proctrail"}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root, PostgreSQL needs an unprivileged user and there is no user postgres: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := s.run("initdb", "-D", data, "-U", s.user, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// No TCP at all: the socket in dir is the only way in. fsync off: a
	// test server's data need not survive a power cut.
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=40", dir)
	for _, st := range settings {
		opts += " -c " + st
	}
	if err := s.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w; server log:\n%s", err, log)
	}
	return s, nil
}

// run runs one of the server's programs as the server's user.
func (s *Server) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgtest: %s: %v: %s", name, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// DSN returns the connection URL of database db.
func (s *Server) DSN(db string) string {
	return (&url.URL{Scheme: "postgres", User: url.User(s.user), Path: "/" + db,
		RawQuery: url.Values{"host": {s.dir}, "sslmode": {"disable"}}.Encode()}).String()
}

// NewDB creates a database of its own and returns its URL.
func (s *Server) NewDB(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d", s.n.Add(1))
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	return s.DSN(name), nil
}

// Stop stops the server and removes its directory; later calls do
// nothing.
func (s *Server) Stop() error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "fast", "-w", "-t", "60", "stop")
	if rerr := os.RemoveAll(s.dir); err == nil && rerr != nil {
		err = fmt.Errorf("pgtest: %w", rerr)
	}
	return err
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
	took time.Duration
}

// Shared returns the test binary's server, starting it on first use.
func Shared() (*Server, error) {
	shared.once.Do(func() {
		t0 := time.Now()
		shared.s, shared.err = Start("")
		shared.took = time.Since(t0)
	})
	return shared.s, shared.err
}

// Main runs the tests and stops the shared server if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.s != nil {
		if err := shared.s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Need returns the URL of a new database on the shared server. Without
// PostgreSQL it skips the test, or fails it under CI=true, where the
// server must be installed (scripts/install-deps).
func Need(t testing.TB) string {
	t.Helper()
	s, err := Shared()
	if err != nil {
		if testenv.CI() || !errors.Is(err, ErrNotInstalled) {
			t.Fatalf("PostgreSQL is required: %v", err)
		}
		t.Skipf("skipped: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := s.NewDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}
