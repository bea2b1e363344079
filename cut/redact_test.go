package cut

import (
	"encoding/binary"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"proctrail/formats"
	"proctrail/replay"
)

// auditMsg is an audit netlink message of text.
func auditMsg(text string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(16+len(text)))
	b = binary.LittleEndian.AppendUint16(b, 1300)
	b = append(b, make([]byte, 10)...)
	return append(b, text...)
}

func TestRedactAudit(t *testing.T) {
	r := &redactor{res: []*regexp.Regexp{regexp.MustCompile(`alice|secret`)}}
	hexOf := func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }
	for _, tt := range []struct {
		name, in, want string
		n              uint64
	}{
		{"quoted", `audit(1.001:2): arch=c000003e syscall=59 success=yes exit=0 a0=7ffd uid=1000 comm="alice-sh" exe="/home/alice/bin/x"`,
			`audit(1.001:2): arch=c000003e syscall=59 success=yes exit=0 a0=7ffd uid=1000 comm="*****-sh" exe="/home/*****/bin/x"`, 2},
		{"hex", `audit(1.001:2): item=0 name=` + hexOf("/tmp/a b/secret") + ` inode=5 nametype=NORMAL`,
			`audit(1.001:2): item=0 name=` + hexOf("/tmp/a b/******") + ` inode=5 nametype=NORMAL`, 1},
		{"proctitle", `audit(1.001:2): proctitle=` + hexOf("cat\x00/home/alice/secret.txt"),
			`audit(1.001:2): proctitle=` + hexOf("cat\x00/home/*****/******.txt"), 1},
		{"execve", `audit(1.001:2): argc=3 a0="cat" a1="alice" a2=` + hexOf("x secret"),
			`audit(1.001:2): argc=3 a0="cat" a1="*****" a2=` + hexOf("x ******"), 2},
		{"execve pieces", `audit(1.001:2): a1_len=20000 a1[0]=` + hexOf("aaalice") + ` a1[1]=` + hexOf("secretzz"),
			`audit(1.001:2): a1_len=20000 a1[0]=` + hexOf("aa*****") + ` a1[1]=` + hexOf("******zz"), 2},
		{"cwd", `audit(1.001:2): cwd="/home/alice"`, `audit(1.001:2): cwd="/home/*****"`, 1},
		{"user record", `audit(1.001:2): pid=1 uid=0 msg='op=PAM:session_open acct="alice" exe="/usr/bin/sudo" hostname=alicebox addr=? terminal=/dev/pts/0 res=success'`,
			`audit(1.001:2): pid=1 uid=0 msg='op=PAM:session_open acct="*****" exe="/usr/bin/sudo" hostname=*****box addr=? terminal=/dev/pts/0 res=success'`, 2},
		{"other keys stay", `audit(1.001:2): key="alice" subj=secret_t res=1`, `audit(1.001:2): key="alice" subj=secret_t res=1`, 0},
		{"unclosed quote", `audit(1.001:2): comm="alice`, `audit(1.001:2): comm="*****`, 1},
		{"empty", `audit(1.001:2):`, `audit(1.001:2):`, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := auditMsg(tt.in)
			n := r.auditRecord(msg)
			if got := string(msg[16:]); got != tt.want || n != tt.n {
				t.Errorf("got %q (%d fields), want %q (%d)", got, n, tt.want, tt.n)
			}
			if _, err := replay.DecodeAuditMessage(msg); err != nil {
				t.Errorf("the masked message does not decode: %v", err)
			}
		})
	}
}

func TestRedactProcfsAndComm(t *testing.T) {
	r := &redactor{res: []*regexp.Regexp{regexp.MustCompile(`alice`)}}
	rec := formats.ProcRecord{Kind: formats.ReasonExec, PID: 5, Comm: "alice", Exe: "/bin/x", Cmdline: []string{"x", "--user=alice"}, Cwd: "/home/alice", Cgroup: "0::/"}
	raw, _ := rec.AppendBinary(nil)
	out, n, err := r.procRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got formats.ProcRecord
	if err := got.UnmarshalBinary(out); err != nil {
		t.Fatal(err)
	}
	if n != 3 || got.Comm != "*****" || got.Cmdline[1] != "--user=*****" || got.Cwd != "/home/*****" || got.Exe != "/bin/x" || got.PID != 5 {
		t.Errorf("%d fields: %+v", n, got)
	}
	if rec.Cmdline[1] != "--user=alice" {
		t.Error("the input was changed")
	}
	if out, n, _ := r.procRecord(raw[:5]); out != nil || n != 0 {
		t.Error("a broken record masked")
	}
	if n := r.procEvent([]byte("too short")); n != 0 {
		t.Error("a comm in no event")
	}
}

// FuzzRedactAudit: masking never panics, keeps the message's length, and
// leaves no match in a quoted or hex value it masked.
func FuzzRedactAudit(f *testing.F) {
	f.Add(`audit(1.001:2): comm="alice" name=616C696365 a1[0]=41 msg='acct="alice" hostname=alice'`, "alice")
	f.Add(`audit(1.1:1): a0=" a1="x"`, "x")
	f.Add(`audit(1.1:1): proctitle=4`, "4")
	f.Fuzz(func(t *testing.T, text, pattern string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		r := &redactor{res: []*regexp.Regexp{re}}
		msg := auditMsg(text)
		n := len(msg)
		r.auditRecord(msg)
		if len(msg) != n {
			t.Fatalf("length %d, was %d", len(msg), n)
		}
	})
}
