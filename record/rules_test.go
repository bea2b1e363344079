package record

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/google/go-cmp/cmp"
)

func TestPresetRulesBuild(t *testing.T) {
	rules, err := PresetRules("forensic")
	if err != nil {
		t.Fatal(err)
	}
	// Per ABI: the main rule, kill's, tkill's, tgkill's and ptrace's
	// three, accept's, sendto's for each family, and fcntl's two.
	if runtime.GOARCH == "amd64" && len(rules) != 24 {
		t.Fatalf("got %d rules on amd64, want twelve for b64 and twelve for b32:\n%s", len(rules), strings.Join(rules, "\n"))
	}
	for _, line := range rules {
		t.Run(line, func(t *testing.T) {
			r, hadKey, err := parseRule(line)
			if err != nil {
				t.Fatalf("parseRule: %v", err)
			}
			if !hadKey {
				t.Error("preset rule lacks -k " + RuleKey)
			}
			wf, err := rule.Build(r)
			if err != nil {
				t.Fatalf("rule.Build: %v", err)
			}
			if diff := cmp.Diff([]string{RuleKey}, ruleKeys(wf)); diff != "" {
				t.Errorf("keys in wire format (-want +got):\n%s", diff)
			}
			sr := r.(*rule.SyscallRule)
			if len(sr.Syscalls) == 0 {
				t.Error("rule lists no syscalls")
			}
		})
	}
	if runtime.GOARCH == "amd64" {
		// Every forensic syscall but the old umount and i386's 32-bit-id,
		// 64-bit-size and -time forms exists on x86_64, in preset order;
		// i386 has them all.
		var b64 []string
		for _, sc := range presets["forensic"] {
			switch sc {
			case "umount", "chown32", "fchown32", "lchown32", "truncate64", "ftruncate64", "utimensat_time64":
			default:
				b64 = append(b64, sc)
			}
		}
		want := "-a always,exit -F arch=b64 -S " + strings.Join(b64, ",") + " -k proctrail"
		if diff := cmp.Diff(want, rules[0]); diff != "" {
			t.Errorf("b64 rule (-want +got):\n%s", diff)
		}
		wantFiltered := []string{
			"-a always,exit -F arch=b64 -S kill -F a1!=0 -k proctrail",
			"-a always,exit -F arch=b64 -S tkill -F a1!=0 -F a1!=23 -k proctrail",
			"-a always,exit -F arch=b64 -S tgkill -F a2!=0 -F a2!=23 -k proctrail",
			"-a always,exit -F arch=b64 -S ptrace -F a0=16 -k proctrail",
			"-a always,exit -F arch=b64 -S ptrace -F a0=0x4206 -k proctrail",
			"-a always,exit -F arch=b64 -S ptrace -F a0=0 -k proctrail",
			"-a always,exit -F arch=b64 -S accept,accept4 -F exit!=-EAGAIN -k proctrail",
			"-a always,exit -F arch=b64 -S sendto,sendmsg -F saddr_fam=2 -k proctrail",
			"-a always,exit -F arch=b64 -S sendto,sendmsg -F saddr_fam=10 -k proctrail",
			"-a always,exit -F arch=b64 -S fcntl -F a1=0 -k proctrail",
			"-a always,exit -F arch=b64 -S fcntl -F a1=1030 -k proctrail",
		}
		if diff := cmp.Diff(wantFiltered, rules[1:12]); diff != "" {
			t.Errorf("rules after the b64 main rule (-want +got):\n%s", diff)
		}
	}
}

// TestPresetRulesWithout leaves syscalls out of the preset: they are in
// no rule, every other rule is the preset's, a filtered rule left empty
// goes, and a syscall the preset does not audit is an error.
func TestPresetRulesWithout(t *testing.T) {
	all, err := PresetRules("forensic")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		without []string
		gone    int // rules fewer than the preset's
	}{
		{nil, 0},
		{[]string{"sendto", "sendmsg"}, 4}, // both families' rules, per ABI
		{[]string{"sendto"}, 0},
		{[]string{"openat", "kill"}, 2},
	} {
		t.Run(strings.Join(tc.without, ","), func(t *testing.T) {
			rules, err := PresetRulesWithout("forensic", tc.without)
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOARCH == "amd64" && len(rules) != len(all)-tc.gone {
				t.Errorf("%d rules, want %d:\n%s", len(rules), len(all)-tc.gone, strings.Join(rules, "\n"))
			}
			var kept []string
			for _, line := range rules {
				r, _, err := parseRule(line)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				for _, sc := range tc.without {
					if slices.Contains(r.(*rule.SyscallRule).Syscalls, sc) {
						t.Errorf("%s is still audited: %s", sc, line)
					}
				}
				kept = append(kept, line)
			}
			// The rules that lost nothing are the preset's.
			for _, line := range all {
				if !slices.ContainsFunc(tc.without, func(sc string) bool { return strings.Contains(line, sc) }) && !slices.Contains(kept, line) {
					t.Errorf("preset rule %s is gone", line)
				}
			}
		})
	}
	if _, err := PresetRulesWithout("forensic", []string{"read"}); err == nil || !strings.Contains(err.Error(), `"read"`) {
		t.Errorf("leaving out read: error %v, want one naming it", err)
	}
}

func TestPresetRulesUnknown(t *testing.T) {
	_, err := PresetRules("paranoid")
	if err == nil || !strings.Contains(err.Error(), `"paranoid"`) || !strings.Contains(err.Error(), "forensic") {
		t.Fatalf("got error %v, want one naming the preset and listing forensic", err)
	}
}

func TestParseRules(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		keys [][]string // keys in each built rule's wire format
	}{
		{
			name: "empty",
			in:   "\n# only comments\n   \n",
			want: nil,
		},
		{
			name: "key appended",
			in:   "# header\n\n-a always,exit -F arch=b64 -S execve\n",
			want: []string{"-a always,exit -F arch=b64 -S execve -k proctrail"},
			keys: [][]string{{"proctrail"}},
		},
		{
			name: "key present",
			in:   "  -a exit,always -S openat,close -k proctrail  \n",
			want: []string{"-a exit,always -S openat,close -k proctrail"},
			keys: [][]string{{"proctrail"}},
		},
		{
			name: "key as filter",
			in:   "-a always,exit -S unlink -F key=proctrail",
			want: []string{"-a always,exit -S unlink -F key=proctrail"},
			keys: [][]string{{"proctrail"}},
		},
		{
			name: "other key kept",
			in:   "-w /etc/passwd -p wa -k identity\n-a always,exit -F arch=b64 -S mount -F key=mounts",
			want: []string{
				"-w /etc/passwd -p wa -k identity -k proctrail",
				"-a always,exit -F arch=b64 -S mount -F key=mounts -k proctrail",
			},
			keys: [][]string{{"identity", "proctrail"}, {"mounts", "proctrail"}},
		},
		{
			name: "prepend with filters and comparison",
			in:   "-A always,exit -F arch=b64 -S execve -F uid>=1000 -F auid!=-1 -C uid!=euid",
			want: []string{"-A always,exit -F arch=b64 -S execve -F uid>=1000 -F auid!=-1 -C uid!=euid -k proctrail"},
			keys: [][]string{{"proctrail"}},
		},
		{
			name: "quoted key",
			in:   `-a always,exit -S chdir -k "proctrail"`,
			want: []string{`-a always,exit -S chdir -k "proctrail"`},
			keys: [][]string{{"proctrail"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRules(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("rules (-want +got):\n%s", diff)
			}
			var keys [][]string
			for _, line := range got {
				wf, err := buildRule(line)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, ruleKeys(wf))
			}
			if diff := cmp.Diff(tt.keys, keys); diff != "" {
				t.Errorf("keys in wire format (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		msg  string // substring of the error
	}{
		{"delete all", "# comment\n\n-D\n", 3, "rules file line 3: -D is a control command, not a rule; proctrail manages the audit state itself"},
		{"backlog", "-a always,exit -S execve\n-b 8192", 2, "-b is a control command"},
		{"wait time", "--backlog_wait_time 60000", 1, "--backlog_wait_time is a control command"},
		{"wait time equals", "--backlog_wait_time=60000", 1, "--backlog_wait_time=60000 is a control command"},
		{"enable", "-e 2", 1, "-e is a control command"},
		{"failure", "-f 1", 1, "-f is a control command"},
		{"rate", "-r 100", 1, "-r is a control command"},
		{"loginuid", "--loginuid-immutable", 1, "--loginuid-immutable is a control command"},
		{"delete one", "-d always,exit -S execve", 1, "-d is a control command"},
		{"unknown syscall", "\n-a always,exit -F arch=b64 -S nosuchcall", 2, "nosuchcall"},
		{"no action", "-a always -S execve", 1, "line 1: expected list,action"},
		{"bad list", "-a always,sometimes -S execve", 1, "invalid list or action"},
		{"no add", "-S execve -k x", 1, "needs -a or -A"},
		{"both add and prepend", "-a always,exit -A always,exit -S execve", 1, "only one of -a or -A"},
		{"mixed watch and syscall", "-w /etc/passwd -S execve -a always,exit", 1, "cannot be mixed"},
		{"relative watch", "-w etc/passwd -p wa", 1, "absolute"},
		{"bad perm", "-w /etc/passwd -p wz", 1, "invalid file access type"},
		{"missing value", "-a always,exit -S", 1, "-S needs a value"},
		{"unknown option", "-a always,exit -S execve -x", 1, `unknown option "-x"`},
		{"bad filter", "-a always,exit -F uid", 1, "invalid filter"},
		{"bad field", "-a always,exit -F colour=blue", 1, "colour"},
		{"key operator", "-a always,exit -S execve -F key!=x", 1, "only supports ="},
		{"unterminated quote", `-a always,exit -S execve -k "x`, 1, "unterminated quote"},
		{"key too long", "-a always,exit -S execve -k " + strings.Repeat("k", 260), 1, "cannot be longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRules(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("got rules %q, want an error", got)
			}
			if got != nil {
				t.Errorf("got rules %q with the error, want nil", got)
			}
			var re *RulesError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *RulesError", err, err)
			}
			if re.Line != tt.line {
				t.Errorf("error line %d, want %d (%v)", re.Line, tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestBuildRuleEnforcesKey(t *testing.T) {
	for _, line := range []string{
		"-A never,exit -F pid=1234 -k proctrail",
		"-a always,exit -S execve",
		"-a always,exit -S execve -k other",
	} {
		wf, err := buildRule(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if !hasRuleKey(wf) {
			t.Errorf("%s: built rule lacks key %s (keys %q)", line, RuleKey, ruleKeys(wf))
		}
	}
}

func TestRuleKeysShortInput(t *testing.T) {
	// Hostile or truncated wire formats must not panic.
	wf, err := buildRule("-w /etc/passwd -p wa -k identity")
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(wf); n += 7 {
		_ = ruleKeys(wf[:n])
	}
	if diff := cmp.Diff([]string{"identity", "proctrail"}, ruleKeys(wf)); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}
