//go:build !linux

package record

import (
	"errors"
	"log/slog"
)

// Audit session modes, as returned by [AuditSession.Mode].
const (
	ModeDaemon    = "daemon"
	ModeMulticast = "multicast"
)

// MaxAuditMessage is the largest datagram the kernel sends on the audit
// socket.
const MaxAuditMessage = 16 + 8970

// ErrRecorderRunning is returned by [RecoverStale] and [StartAudit] when the
// state file belongs to a recorder that is still running.
var ErrRecorderRunning = errors.New("record: another proctrail recorder is running")

var errAuditUnsupported = errors.New("record: linux audit is not supported on this platform")

// AuditSession is a running audit recording; Linux only.
type AuditSession struct{}

// StartAudit returns an "unsupported" error: audit is Linux only.
func StartAudit(cfg *AuditConfig) (*AuditSession, error) { return nil, errAuditUnsupported }

// RecoverStale returns an "unsupported" error: audit is Linux only.
func RecoverStale(stateDir string, logger *slog.Logger) (bool, error) {
	return false, errAuditUnsupported
}

// Mode returns "".
func (s *AuditSession) Mode() string { return "" }

// Read returns an "unsupported" error.
func (s *AuditSession) Read(buf []byte) (int, error) { return 0, errAuditUnsupported }

// Interrupt does nothing.
func (s *AuditSession) Interrupt() error { return nil }

// Lost returns an "unsupported" error.
func (s *AuditSession) Lost() (uint32, error) { return 0, errAuditUnsupported }

// Close does nothing.
func (s *AuditSession) Close() error { return nil }
