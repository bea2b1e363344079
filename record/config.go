package record

import (
	"io"
	"log/slog"
	"time"

	"proctrail/formats"
)

// Config configures Record. Zero fields mean the defaults documented on
// them.
type Config struct {
	// Output is the capture file's path; with rotation the first file of
	// the set. Required.
	Output string
	// RotateSize starts a new file once the current one holds this many
	// bytes; 0 never rotates.
	RotateSize int64
	// RotateCount keeps at most this many files of a rotated set, removing
	// the oldest; 0 keeps all.
	RotateCount int
	// Duration stops recording after this long; 0 records until the
	// context is done or the command exits.
	Duration time.Duration
	// Audit enables the audit source; false records the connector alone.
	Audit       bool
	AuditConfig AuditConfig
	// Command is run and recorded until it exits; empty records until
	// stopped. Under sudo it runs as the invoking user unless AsRoot.
	Command []string
	AsRoot  bool
	// Stdin, Stdout and Stderr are the command's; nil means /dev/null.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ReadBuffer is the process connector socket's receive buffer in
	// bytes; default 16 MiB. (The audit socket's is AuditConfig.ReadBuffer.)
	ReadBuffer int
	// Status receives a live status line every second; nil draws none.
	Status io.Writer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Version and CommandLine go into the capture's section header.
	Version     string
	CommandLine []string
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.ReadBuffer <= 0 {
		out.ReadBuffer = defaultReadBuffer
	}
	if out.AuditConfig.Logger == nil {
		out.AuditConfig.Logger = out.Logger
	}
	return out
}

// Result is what a recording wrote.
type Result struct {
	Files     []string // the capture files on disk, oldest first
	Bytes     int64    // compressed bytes written to all files
	Duration  time.Duration
	Messages  [formats.NumSources]uint64 // per source, indexed by formats.Source
	Lost      [formats.NumSources]uint64
	ExitCode  int    // the command's exit code; 128+N when killed by signal N
	AuditMode string // "daemon", "multicast", or "" without audit
	// CPU is the recorder's own CPU time (user + system), not the
	// command's.
	CPU time.Duration
}
