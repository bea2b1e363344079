package record

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// RuleKey is the audit key (-k) carried by every rule the recorder installs.
// It is how a later run recognises rules left behind by a killed recorder.
const RuleKey = "proctrail"

// AuditConfig configures [StartAudit]. A nil *AuditConfig and zero fields
// mean the defaults documented on each field.
type AuditConfig struct {
	// BacklogLimit is the kernel's audit backlog limit to use while
	// recording. It is only ever raised: the larger of this and the current
	// limit is set. Zero means 8192.
	BacklogLimit uint32

	// BacklogWaitTime is the kernel's backlog_wait_time to set while
	// recording. The kernel counts it in jiffies (its own default is 60*HZ,
	// one minute) and rejects values above ten times that default. Zero
	// means 60000, the value auditd's stock rules set.
	BacklogWaitTime int32

	// Rules are auditctl-syntax rule lines, as returned by [PresetRules] or
	// [ParseRules]. Each rule is installed with the key [RuleKey], which is
	// added when a line lacks it. Nil means PresetRules("forensic").
	Rules []string

	// StateDir is where the audit state found at start is persisted while
	// recording, so that a later run can restore it after a crash. Empty
	// means "/run/proctrail".
	StateDir string

	// Logger receives mode choices and recovery reports. Nil means
	// slog.Default().
	Logger *slog.Logger

	// ReadBuffer is the receive socket's buffer in bytes, set with
	// SO_RCVBUFFORCE when privileged. Zero means 16 MiB.
	ReadBuffer int
}

// Defaults of AuditConfig.
const (
	defaultBacklogLimit    = 8192
	defaultBacklogWaitTime = 60000
	defaultStateDir        = "/run/proctrail"
	defaultReadBuffer      = 16 << 20
	defaultPreset          = "forensic"
)

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c *AuditConfig) withDefaults() (AuditConfig, error) {
	var out AuditConfig
	if c != nil {
		out = *c
	}
	if out.BacklogLimit == 0 {
		out.BacklogLimit = defaultBacklogLimit
	}
	if out.BacklogWaitTime == 0 {
		out.BacklogWaitTime = defaultBacklogWaitTime
	}
	if out.BacklogWaitTime < 0 {
		return out, fmt.Errorf("record: negative audit backlog wait time %d", out.BacklogWaitTime)
	}
	if out.StateDir == "" {
		out.StateDir = defaultStateDir
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.ReadBuffer <= 0 {
		out.ReadBuffer = defaultReadBuffer
	}
	if out.Rules == nil {
		rules, err := PresetRules(defaultPreset)
		if err != nil {
			return out, err
		}
		out.Rules = rules
	}
	return out, nil
}

// presets maps a preset name to the syscalls its rules audit, in rule order.
var presets = map[string][]string{
	// forensic covers what the analyzer rebuilds: process lifetimes and
	// execs, the fd table (open/dup/close), renames and unlinks, the cwd,
	// and the container plumbing (pivot_root, setns, unshare, mount,
	// umount2, move_mount: after each the recorder reads the caller's
	// mount table again).
	"forensic": {
		"execve", "execveat", "clone", "clone3", "fork", "vfork", "exit_group",
		"open", "openat", "openat2", "creat", "close", "dup", "dup2", "dup3",
		"rename", "renameat", "renameat2", "unlink", "unlinkat",
		"chdir", "fchdir", "pivot_root", "setns", "unshare", "mount",
		// The network: sockets, and what they connect to, bind or
		// listen on (accept and sendto below, filtered).
		"socket", "connect", "bind", "listen",
		// The fd table: close_range closes (or marks close-on-exec) a
		// range of fds at once; fcntl's duplications are below. Pipes,
		// socket pairs and pidfds are fds that name no path, and
		// pidfd_getfd copies another process's fd: without them a
		// reused fd number would keep a stale path.
		"close_range", "pipe", "pipe2", "socketpair", "pidfd_open", "pidfd_getfd",
		// What a run changed beyond open, rename and unlink: directories,
		// links, modes and owners, sizes, device nodes, extended
		// attributes, timestamps, mounts; memfd_create for fileless
		// execs (its fd, then execveat of it).
		"mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink", "symlinkat",
		"chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "fchownat", "lchown",
		"truncate", "ftruncate", "mknod", "mknodat",
		"setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
		"utimensat", "utimes", "futimesat", "utime", "umount2", "umount", "move_mount", "memfd_create",
		// i386's 32-bit-id and 64-bit-size and -time forms of the above.
		"chown32", "fchown32", "lchown32", "truncate64", "ftruncate64", "utimensat_time64",
	},
}

// filteredRule is a rule of a preset that audits its syscalls only when
// its fields (auditctl -F, after the arch) match.
type filteredRule struct {
	syscalls []string
	fields   string
}

// presetFiltered are the rules of a preset that come after its main rule,
// per ABI, each its own rule because of its filter.
var presetFiltered = map[string][]filteredRule{
	"forensic": {
		// Signals between processes, but not signal 0 (kill -0, a probe
		// of whether a pid lives: pidfile checks, supervisors, shells'
		// job control; it delivers nothing), nor SIGURG (23 on every
		// architecture proctrail records) sent to a thread: the Go
		// runtime preempts its goroutines with tgkill(SIGURG) every
		// 10 ms of a busy one, thousands a second per Go program on the
		// host, and SIGURG's default action is to be ignored.
		{[]string{"kill"}, "-F a1!=0"},
		{[]string{"tkill"}, "-F a1!=0 -F a1!=23"},
		{[]string{"tgkill"}, "-F a2!=0 -F a2!=23"},
		// ptrace only when it attaches (PTRACE_ATTACH 16, PTRACE_SEIZE
		// 0x4206) or makes its caller traced by its parent
		// (PTRACE_TRACEME 0): a debugger or strace then makes millions of
		// PEEK, GETREGS and CONT requests, which say nothing more.
		{[]string{"ptrace"}, "-F a0=16"},
		{[]string{"ptrace"}, "-F a0=0x4206"},
		{[]string{"ptrace"}, "-F a0=0"},
		// A failed accept with EAGAIN is a non-blocking server's loop
		// finding its queue empty: nothing happened, once per wake-up.
		{[]string{"accept", "accept4"}, "-F exit!=-EAGAIN"},
		// sendto and sendmsg are audited only when they carry an inet or
		// inet6 address: an unconnected UDP socket's datagrams. On a
		// connected socket they have none (send is sendto(…, NULL, 0) on
		// x86_64, every TCP write of many programs), and those with a
		// unix or netlink address are journald's and sd_notify's
		// messages and every netlink request to the kernel: floods that
		// say nothing connect does not. The kernel filters on the
		// address's family (saddr_fam, Linux 5.3), which a call without
		// an address never matches; go-libaudit takes 2 and 10 only.
		{[]string{"sendto", "sendmsg"}, "-F saddr_fam=2"},
		{[]string{"sendto", "sendmsg"}, "-F saddr_fam=10"},
		// fcntl only when it duplicates an fd (F_DUPFD 0,
		// F_DUPFD_CLOEXEC 1030): the new fd is a copy, which the fd
		// table must know, or a dirfd of that number answers with a
		// stale path (dpkg's rm -rf did). Its other commands (locks,
		// flags) are millions a second in some servers.
		{[]string{"fcntl", "fcntl64"}, "-F a1=0"},
		{[]string{"fcntl", "fcntl64"}, "-F a1=1030"},
	},
}

// PresetRules returns the auditctl-syntax rules of the named preset, each
// carrying -k [RuleKey]. "forensic" is the default preset. For each ABI of
// the running architecture (b64 and, where the kernel has a compat ABI,
// b32) come its main rule, then its filtered rules, each listing only the
// syscalls that ABI has. The returned slice is the caller's.
func PresetRules(name string) ([]string, error) {
	return PresetRulesWithout(name, nil)
}

// PresetRulesWithout returns [PresetRules] of the named preset less the
// syscalls named in without, which must each be in the preset (the
// command line's --leave-out: a busy host's costly group, such as
// sendto and sendmsg on one sending many datagrams, left out knowingly).
// A filtered rule left with no syscall is dropped.
func PresetRulesWithout(name string, without []string) ([]string, error) {
	syscalls, ok := presets[name]
	if !ok {
		known := make([]string, 0, len(presets))
		for k := range presets {
			known = append(known, k)
		}
		slices.Sort(known)
		return nil, fmt.Errorf("record: unknown audit rule preset %q (known: %s)", name, strings.Join(known, ", "))
	}
	abis, err := ruleABIs()
	if err != nil {
		return nil, err
	}
	left := func(scs []string) []string {
		return slices.DeleteFunc(slices.Clone(scs), func(sc string) bool { return slices.Contains(without, sc) })
	}
	filtered := slices.Clone(presetFiltered[name])
	for i := range filtered {
		filtered[i].syscalls = left(filtered[i].syscalls)
	}
	for _, sc := range without {
		if !slices.Contains(syscalls, sc) && !slices.ContainsFunc(presetFiltered[name], func(fr filteredRule) bool { return slices.Contains(fr.syscalls, sc) }) {
			return nil, fmt.Errorf("record: %q is not audited by the %s preset", sc, name)
		}
	}
	syscalls = left(syscalls)
	var rules []string
	for _, ruleABI := range abis {
		table := auparse.AuditSyscalls[ruleABI.arch]
		names := make(map[string]bool, len(table))
		for _, n := range table {
			names[n] = true
		}
		var have []string
		for _, sc := range syscalls {
			if names[sc] {
				have = append(have, sc)
			}
		}
		if len(have) > 0 {
			rules = append(rules, fmt.Sprintf("-a always,exit -F arch=%s -S %s -k %s",
				ruleABI.name, strings.Join(have, ","), RuleKey))
		}
		for _, fr := range filtered {
			var have []string
			for _, sc := range fr.syscalls {
				if names[sc] {
					have = append(have, sc)
				}
			}
			if len(have) > 0 {
				rules = append(rules, fmt.Sprintf("-a always,exit -F arch=%s -S %s %s -k %s",
					ruleABI.name, strings.Join(have, ","), fr.fields, RuleKey))
			}
		}
	}
	return rules, nil
}

// ruleABI is one syscall ABI of the running architecture: auditctl's name for
// it (b64, b32) and go-libaudit's syscall table name.
type ruleABI struct{ name, arch string }

// ruleABIs mirrors go-libaudit's resolution of -F arch=b64/b32 for the
// architecture this program was built for.
func ruleABIs() ([]ruleABI, error) {
	switch runtime.GOARCH {
	case "amd64":
		return []ruleABI{{"b64", "x86_64"}, {"b32", "i386"}}, nil
	case "arm64":
		return []ruleABI{{"b64", "aarch64"}, {"b32", "arm"}}, nil
	case "ppc64", "ppc64le":
		return []ruleABI{{"b64", runtime.GOARCH}, {"b32", "ppc"}}, nil
	case "s390x":
		return []ruleABI{{"b64", "s390x"}, {"b32", "s390"}}, nil
	case "386":
		return []ruleABI{{"b32", "i386"}}, nil
	case "arm":
		return []ruleABI{{"b32", "arm"}}, nil
	}
	return nil, fmt.Errorf("record: audit rules are not supported on %s", runtime.GOARCH)
}

// Layout of struct audit_rule_data (linux/audit.h): flags, action,
// field_count, mask[64], fields[64], values[64], fieldflags[64], buflen, buf.
const (
	auditMaxFields    = 64
	auditBitmaskSize  = 64
	ruleFieldsOffset  = 12 + 4*auditBitmaskSize
	ruleValuesOffset  = ruleFieldsOffset + 4*auditMaxFields
	ruleBufLenOffset  = ruleValuesOffset + 8*auditMaxFields
	ruleBufOffset     = ruleBufLenOffset + 4
	auditKeySeparator = "\x01"
)

// auditStringFields are the audit rule fields whose value is a length into buf.
var auditStringFields = map[uint32]bool{
	13: true, 14: true, 15: true, 16: true, 17: true, // AUDIT_SUBJ_USER..AUDIT_SUBJ_CLR
	19: true, 20: true, 21: true, 22: true, 23: true, // AUDIT_OBJ_USER..AUDIT_OBJ_LEV_HIGH
	105: true, 107: true, 112: true, // AUDIT_WATCH, AUDIT_DIR, AUDIT_EXE
	auditFilterKey: true,
}

// ruleKeys returns the keys of a rule in wire format. The kernel stores
// several keys as one string joined by \x01.
func ruleKeys(wf []byte) []string {
	if len(wf) < ruleBufOffset {
		return nil
	}
	ne := binary.NativeEndian
	count := min(ne.Uint32(wf[8:]), auditMaxFields)
	buf := wf[ruleBufOffset:]
	off := uint32(0)
	var keys []string
	for i := range count {
		field := ne.Uint32(wf[ruleFieldsOffset+4*i:])
		if !auditStringFields[field] {
			continue
		}
		l := ne.Uint32(wf[ruleValuesOffset+4*i:])
		if uint64(off)+uint64(l) > uint64(len(buf)) {
			return keys
		}
		if field == auditFilterKey {
			keys = append(keys, strings.Split(string(buf[off:off+l]), auditKeySeparator)...)
		}
		off += l
	}
	return keys
}

func hasRuleKey(wf []byte) bool {
	for _, k := range ruleKeys(wf) {
		if k == RuleKey {
			return true
		}
	}
	return false
}
