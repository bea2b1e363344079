//go:build !linux

package record

import (
	"errors"
	"fmt"

	"proctrail/formats"
)

// ProcReader reads /proc/PID into a [formats.ProcRecord]. procfs is Linux
// only: elsewhere every method returns an error wrapping
// [errors.ErrUnsupported].
type ProcReader struct{}

// NewProcReader returns a reader of the procfs mounted at procRoot; ""
// means "/proc".
func NewProcReader(procRoot string) *ProcReader { return &ProcReader{} }

var errProcUnsupported = fmt.Errorf("record: procfs: %w", errors.ErrUnsupported)

// Read returns an error wrapping [errors.ErrUnsupported].
func (p *ProcReader) Read(pid int32, kind formats.ProcReason, rec *formats.ProcRecord) error {
	return errProcUnsupported
}

// Snapshot returns an error wrapping [errors.ErrUnsupported].
func (p *ProcReader) Snapshot(fn func(rec *formats.ProcRecord) error) error {
	return errProcUnsupported
}
