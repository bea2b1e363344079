package analyze

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"

	"proctrail/formats"
	"proctrail/replay"
)

// base is the capture time of a script's "at 0": 2023-11-14T22:13:20Z.
const base = int64(1_700_000_000) * int64(time.Second)

// source is an EventSource over a fixed list of events.
type source struct {
	evs  []replay.Event
	i    int
	info replay.CaptureInfo
}

func (s *source) NextEvent() (replay.Event, error) {
	if s.i >= len(s.evs) {
		return replay.Event{}, io.EOF
	}
	s.i++
	return s.evs[s.i-1], nil
}

func (s *source) Info() replay.CaptureInfo { return s.info }

// script builds a synthetic event stream in capture order. Times are
// milliseconds after base; audit records are parsed from realistic
// auditd text with replay.ParseLogLine.
type script struct {
	t      *testing.T
	now    int64
	serial uint64
	evs    []replay.Event
	boot   time.Time
	hdr    int64 // if set, the header time of the next audit event
}

// header sets the audit header time of the next audit event, in ms after
// base: an event that waited in the kernel's queue.
func (s *script) header(ms float64) *script {
	s.hdr = base + int64(ms*float64(time.Millisecond))
	return s
}

func newScript(t *testing.T) *script {
	return &script{t: t, now: base, serial: 1000}
}

// at sets the capture time of the next events, in ms after base.
func (s *script) at(ms float64) *script {
	s.now = base + int64(ms*float64(time.Millisecond))
	return s
}

func (s *script) proc(e replay.ProcEvent) *script {
	if e.Timestamp == 0 && !s.boot.IsZero() {
		e.Timestamp = uint64(s.now - s.boot.UnixNano())
	}
	s.evs = append(s.evs, replay.Event{Time: s.now, Source: formats.SourceConnector, Proc: &e})
	return s
}

// fork: a new process child, created by parent.
func (s *script) fork(parent, child int32) *script {
	return s.proc(replay.ProcEvent{Kind: replay.ProcFork, ParentPID: parent, ParentTGID: parent, ChildPID: child, ChildTGID: child})
}

// thread: a new thread tid of process tgid, whose parent is ppid (the
// kernel names the process's parent in a thread's fork event).
func (s *script) thread(ppid, tgid, tid int32) *script {
	return s.proc(replay.ProcEvent{Kind: replay.ProcFork, ParentPID: ppid, ParentTGID: ppid, ChildPID: tid, ChildTGID: tgid})
}

func (s *script) exec(pid int32) *script {
	return s.proc(replay.ProcEvent{Kind: replay.ProcExec, PID: pid, TGID: pid})
}

// exit: task tid of tgid exits with wait status code<<8, or killed by sig.
func (s *script) exit(tgid, tid int32, code, sig int, ppid int32) *script {
	return s.proc(replay.ProcEvent{Kind: replay.ProcExit, PID: tid, TGID: tgid, ExitCode: uint32(code<<8 | sig), ExitSignal: 17, ParentPID: ppid, ParentTGID: ppid})
}

func (s *script) comm(pid int32, name string) *script {
	return s.proc(replay.ProcEvent{Kind: replay.ProcComm, PID: pid, TGID: pid, Comm: name})
}

func (s *script) procfs(r formats.ProcRecord) *script {
	s.evs = append(s.evs, replay.Event{Time: s.now, Source: formats.SourceProcfs, ProcFS: &r})
	return s
}

// syscallNumbers maps x86_64 syscall names to numbers.
var syscallNumbers = func() map[string]int {
	m := map[string]int{}
	for n, name := range auparse.AuditSyscalls["x86_64"] {
		m[name] = n
	}
	return m
}()

// audit appends one audit event of syscall call by pid. fields are the
// SYSCALL record's own key=values (exit=, a0=…); missing success, exit,
// a0-a3, comm and exe get defaults. Each more is "TYPE body", e.g.
// `CWD cwd="/tmp"`. The event's capture time is the script's now and its
// header time now truncated to milliseconds, as the kernel prints it.
func (s *script) audit(pid, ppid int32, call, fields string, more ...string) *script {
	s.t.Helper()
	num, ok := syscallNumbers[call]
	if !ok {
		s.t.Fatalf("unknown syscall %q", call)
	}
	s.serial++
	h := s.now
	if s.hdr != 0 {
		h, s.hdr = s.hdr, 0
	}
	hdr := fmt.Sprintf("audit(%d.%03d:%d): ", h/1e9, h%1e9/1e6, s.serial)
	items := 0
	for _, m := range more {
		if strings.HasPrefix(m, "PATH ") {
			items++
		}
	}
	has := func(k string) bool { return strings.Contains(" "+fields, " "+k+"=") }
	f := fields
	if !has("success") && call != "exit_group" {
		f += " success=yes"
	}
	if !has("exit") && call != "exit_group" {
		f += " exit=0"
	}
	for i := range 4 {
		if !has(fmt.Sprintf("a%d", i)) {
			f += fmt.Sprintf(" a%d=0", i)
		}
	}
	f += fmt.Sprintf(" items=%d ppid=%d pid=%d auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295", items, ppid, pid)
	if !has("comm") {
		f += ` comm="x"`
	}
	if !has("exe") {
		f += ` exe="/usr/bin/x"`
	}
	f += ` key="proctrail"`
	lines := append([]string{"SYSCALL arch=c000003e syscall=" + fmt.Sprint(num) + " " + strings.TrimSpace(f)}, more...)
	ev := replay.AuditEvent{Serial: s.serial, Received: s.now, Complete: true, End: replay.EndProctitle}
	for _, l := range lines {
		typ, body, _ := strings.Cut(l, " ")
		r, err := replay.ParseLogLine("type=" + typ + " msg=" + hdr + body)
		if err != nil {
			s.t.Fatalf("audit record %q: %v", l, err)
		}
		ev.Records = append(ev.Records, r)
	}
	ev.Time = ev.Records[0].Time
	s.evs = append(s.evs, replay.Event{Time: s.now, Source: formats.SourceAudit, Audit: &ev})
	return s
}

// Record text helpers.
func cwd(dir string) string { return fmt.Sprintf("CWD cwd=%q", dir) }

func pathRec(item int, name, nametype string) string {
	return fmt.Sprintf("PATH item=%d name=%q inode=%d dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=%s cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0", item, name, 1000+item, nametype)
}

// dirPath is a PATH item for a directory with a given inode.
func dirPath(item int, name, nametype string, inode int) string {
	return fmt.Sprintf("PATH item=%d name=%q inode=%d dev=fe:00 mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=%s cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0", item, name, inode, nametype)
}

func execve(argv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "EXECVE argc=%d", len(argv))
	for i, a := range argv {
		fmt.Fprintf(&b, " a%d=%q", i, a)
	}
	return b.String()
}

func proctitle(argv ...string) string {
	return fmt.Sprintf("PROCTITLE proctitle=%X", strings.Join(argv, "\x00"))
}

// build runs the script through Build.
func (s *script) build(opts *Options) *Model {
	s.t.Helper()
	m, err := Build(s.source(), opts)
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

func (s *script) source() *source {
	info := replay.CaptureInfo{Files: []string{"test.zst"}, Host: "testhost", Kernel: "6.1.0", BootTime: s.boot}
	if len(s.evs) > 0 {
		info.Start, info.End = s.evs[0].Time, s.evs[0].Time
		for _, e := range s.evs {
			info.Start, info.End = min(info.Start, e.Time), max(info.End, e.Time)
			info.Messages[e.Source]++
		}
	}
	// A script of audit records alone stands for an auditd log.
	info.AuditOnly = info.Messages[formats.SourceConnector] == 0 && info.Messages[formats.SourceProcfs] == 0
	return &source{evs: s.evs, info: info}
}

// find returns the processes of m with pid, in tree order.
func find(m *Model, pid int32) []*Process {
	var out []*Process
	walk(m.Processes, func(p *Process) {
		if p.PID == pid {
			out = append(out, p)
		}
	})
	return out
}

// one returns the only process of m with pid.
func one(t *testing.T, m *Model, pid int32) *Process {
	t.Helper()
	ps := find(m, pid)
	if len(ps) != 1 {
		t.Fatalf("%d processes with pid %d, want 1", len(ps), pid)
	}
	return ps[0]
}

func walk(ps []*Process, f func(*Process)) {
	for _, p := range ps {
		f(p)
		walk(p.Children, f)
	}
}

// ms is the capture time of ms after base.
func ms(v float64) int64 { return base + int64(v*float64(time.Millisecond)) }

// pids lists the pids of a forest, children in brackets: "1[2[3] 4]".
func pids(ps []*Process) string {
	var parts []string
	for _, p := range ps {
		s := fmt.Sprint(p.PID)
		if len(p.Children) > 0 {
			s += "[" + pids(p.Children) + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// renderDOT checks that Graphviz renders a DOT document and returns its
// plain output. Without dot the test is skipped, or fails under CI=true.
func renderDOT(t *testing.T, dot []byte, format string) []byte {
	t.Helper()
	bin, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("Graphviz dot is not installed")
		}
		t.Skip("Graphviz dot is not installed")
	}
	cmd := exec.Command(bin, "-T"+format)
	cmd.Stdin = strings.NewReader(string(dot))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("dot -T%s: %v\n%s\n--- input:\n%s", format, err, stderr.String(), dot)
	}
	return out
}
