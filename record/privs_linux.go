package record

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// keptCapabilities are what the recorder still needs once its sockets are
// open and its command started: restoring the audit state
// (CAP_AUDIT_CONTROL), telling the connector to stop (CAP_NET_ADMIN),
// reading other users' /proc/PID links (CAP_SYS_PTRACE,
// CAP_DAC_READ_SEARCH), creating rotated files in the invoking user's
// directory and giving them to that user (CAP_DAC_OVERRIDE, CAP_FOWNER,
// CAP_CHOWN), and stopping a command that runs as that user (CAP_KILL).
const keptCapabilities = 1<<unix.CAP_AUDIT_CONTROL | 1<<unix.CAP_NET_ADMIN |
	1<<unix.CAP_SYS_PTRACE | 1<<unix.CAP_DAC_READ_SEARCH | 1<<unix.CAP_DAC_OVERRIDE |
	1<<unix.CAP_FOWNER | 1<<unix.CAP_CHOWN | 1<<unix.CAP_KILL

// dropPrivileges keeps only keptCapabilities, on every thread of the
// process, and sets no_new_privs. Capabilities are per thread in Linux, so
// this needs AllThreadsSyscall, which a binary built with cgo cannot use:
// it returns ENOTSUP then, and `make build` builds without cgo.
func dropPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("record: capget: %w", err)
	}
	for i := range data {
		keep := uint32(uint64(keptCapabilities) >> (32 * i))
		data[i].Effective &= keep
		data[i].Permitted &= keep
		data[i].Inheritable = 0
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e != 0 {
		return fmt.Errorf("record: drop privileges: %w", e)
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("record: drop capabilities: %w", e)
	}
	return nil
}
