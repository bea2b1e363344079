//go:build linux

package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"
	"golang.org/x/sys/unix"
)

// The audit state a recording changes, saved to a file while it runs so
// that a recorder that was killed can be undone by the next (RecoverStale).

// auditState is the audit state found at start, persisted as JSON in
// StateDir while recording.
type auditState struct {
	RecorderPID   int    `json:"recorder_pid"`
	RecorderStart uint64 `json:"recorder_start_ticks"` // /proc/PID/stat starttime, guards against pid reuse
	Mode          string `json:"mode"`
	SavedAt       string `json:"saved_at"`

	Enabled         uint32 `json:"enabled"`
	Failure         uint32 `json:"failure"`
	PID             uint32 `json:"pid"`
	RateLimit       uint32 `json:"rate_limit"`
	BacklogLimit    uint32 `json:"backlog_limit"`
	BacklogWaitTime uint32 `json:"backlog_wait_time"`

	// Rules are the kernel's rules in wire format (struct audit_rule_data).
	Rules [][]byte `json:"rules"`
}

// RecoverStale undoes what a killed recorder left behind. If
// stateDir/audit-state.json exists and the recorder that wrote it is gone,
// it deletes every audit rule keyed [RuleKey], restores the enabled flag,
// backlog limit and backlog wait time saved in the file, clears the audit
// pid if the dead recorder still holds it, removes the file and returns
// true. Without a state file it still deletes rules keyed RuleKey and
// returns whether there were any. If the recorder that wrote the file is
// still running it returns an error wrapping [ErrRecorderRunning]. A nil
// logger means slog.Default().
func RecoverStale(stateDir string, logger *slog.Logger) (bool, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if stateDir == "" {
		stateDir = defaultStateDir
	}
	path := filepath.Join(stateDir, stateFileName)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("record: %w", err)
	}
	var saved *auditState
	if err == nil {
		saved = new(auditState)
		if err := json.Unmarshal(data, saved); err != nil {
			logger.Warn("ignoring unreadable audit state file; removing stale rules only", "path", path, "err", err)
			saved = nil
		} else if auditRecorderAlive(saved.RecorderPID, saved.RecorderStart) {
			return false, fmt.Errorf("%w (pid %d, state in %s)", ErrRecorderRunning, saved.RecorderPID, path)
		}
	}

	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return false, fmt.Errorf("record: audit control socket: %w", err)
	}
	defer ctl.Close()
	st, err := ctl.GetStatus()
	if err != nil {
		return false, fmt.Errorf("record: audit status: %w", err)
	}
	rules, err := ctl.GetRules()
	if err != nil {
		return false, fmt.Errorf("record: listing audit rules: %w", err)
	}
	if st.Enabled == 2 {
		if saved != nil || countKeyedRules(rules) > 0 {
			return false, errImmutable
		}
		return false, nil
	}
	n, err := deleteKeyedRules(ctl, rules)
	if err != nil {
		return false, err
	}
	if saved == nil {
		if n > 0 {
			logger.Info("removed " + strconv.Itoa(n) + " stale proctrail audit rules left by an earlier run")
		}
		if data != nil { // the unreadable file
			if err := os.Remove(path); err != nil {
				return n > 0, fmt.Errorf("record: %w", err)
			}
		}
		return n > 0 || data != nil, nil
	}

	var errs []error
	if st.PID != 0 && (st.PID == uint32(saved.RecorderPID) || !auditProcExists(int(st.PID))) && st.PID != saved.PID {
		// Only the audit daemon may unregister itself, but the kernel first
		// pings the registered port; a dead recorder's port fails the ping
		// and the kernel lets anyone reset the pid.
		if err := auditRequest(ctl, libaudit.AuditSet, marshalAuditStatus(libaudit.AuditStatusPID, 0)); err != nil {
			errs = append(errs, fmt.Errorf("clearing audit pid %d: %w", st.PID, err))
		}
	}
	if st.Enabled != saved.Enabled && saved.Enabled < 2 {
		if err := ctl.SetEnabled(saved.Enabled == 1, libaudit.WaitForReply); err != nil {
			errs = append(errs, fmt.Errorf("restoring audit enabled=%d: %w", saved.Enabled, err))
		}
	}
	if st.BacklogLimit != saved.BacklogLimit {
		if err := ctl.SetBacklogLimit(saved.BacklogLimit, libaudit.WaitForReply); err != nil {
			errs = append(errs, fmt.Errorf("restoring audit backlog limit %d: %w", saved.BacklogLimit, err))
		}
	}
	if st.BacklogWaitTime != saved.BacklogWaitTime {
		if err := ctl.SetBacklogWaitTime(int32(saved.BacklogWaitTime), libaudit.WaitForReply); err != nil {
			errs = append(errs, fmt.Errorf("restoring audit backlog wait time %d: %w", saved.BacklogWaitTime, err))
		}
	}
	if len(errs) > 0 {
		return false, fmt.Errorf("record: recovering audit state from %s: %w", path, errors.Join(errs...))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("record: %w", err)
	}
	logger.Info("restored the audit state left by a killed proctrail recorder",
		"recorder_pid", saved.RecorderPID, "saved_at", saved.SavedAt, "rules_removed", n,
		"enabled", saved.Enabled, "backlog_limit", saved.BacklogLimit, "backlog_wait_time", saved.BacklogWaitTime)
	return true, nil
}

// writeAuditState persists st to dir/audit-state.json (dir 0700, file 0600),
// atomically: a crash leaves the old file or the new one.
func writeAuditState(dir string, st *auditState) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record: audit state dir: %w", err)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	f, err := os.CreateTemp(dir, stateFileName+".*")
	if err != nil {
		return fmt.Errorf("record: audit state: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, stateFileName))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("record: audit state: %w", err)
	}
	return nil
}

// deleteKeyedRules deletes the rules among rules whose key list contains
// RuleKey and returns how many it deleted.
func deleteKeyedRules(ctl *libaudit.AuditClient, rules [][]byte) (int, error) {
	n := 0
	for _, wf := range rules {
		if !hasRuleKey(wf) {
			continue
		}
		if err := auditRequest(ctl, auditDelRule, wf); err != nil && !errors.Is(err, unix.ENOENT) {
			line, _ := rule.ToCommandLine(wf, false)
			return n, fmt.Errorf("record: deleting stale audit rule %q: %w", line, err)
		}
		n++
	}
	return n, nil
}

func countKeyedRules(rules [][]byte) int {
	n := 0
	for _, wf := range rules {
		if hasRuleKey(wf) {
			n++
		}
	}
	return n
}

// auditProcExists reports whether pid names a live process (a zombie counts
// as gone: it can no longer read a socket).
func auditProcExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := auditStatFields(stat)
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// auditRecorderAlive reports whether the recorder pid that started at start
// (clock ticks since boot, 0 if unknown) is still running; a reused pid
// has another start time.
func auditRecorderAlive(pid int, start uint64) bool {
	if !auditProcExists(pid) {
		return false
	}
	if start == 0 {
		return true
	}
	got, err := auditProcStartTicks(pid)
	return err == nil && got == start
}

// auditProcStartTicks returns field 22 (starttime) of /proc/PID/stat.
func auditProcStartTicks(pid int) (uint64, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	fields := auditStatFields(stat)
	// fields[0] is field 3 (state), so starttime (22) is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// auditStatFields returns the fields of /proc/PID/stat after "pid (comm)"; comm
// may contain blanks and parentheses, so split after its last ')'.
func auditStatFields(stat []byte) []string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(stat[i+1:]))
}
