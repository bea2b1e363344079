// Package pgtest starts a throwaway PostgreSQL server for tests: initdb
// in a temporary directory, the server listening on a unix socket in that
// directory only (no TCP port, so parallel runs never collide), fsync off,
// and stopped and removed by [Server.Stop].
//
// PostgreSQL refuses to run as root: under root the server runs as the
// "postgres" user that Debian's package creates, and the directory is
// handed to it. The binaries are found on PATH or in Debian's
// /usr/lib/postgresql/VERSION/bin (newest first).
//
// [Shared] starts one server for a test binary, on first use, and
// [Main] stops it after the tests: a package's TestMain calls
// os.Exit(pgtest.Main(m)). A test that needs the server calls [Need],
// which skips without PostgreSQL on a laptop and fails under CI=true.
package pgtest
