package analyze

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"proctrail/formats"
)

const (
	cid  = "3f2a6b1c9d8e7f60112233445566778899aabbccddeeff001122334455667788"
	cid2 = "77777777777777777777777777777777777777777777777777777777777777ff"
)

func TestThreads(t *testing.T) {
	tests := []struct {
		name        string
		script      func(s *script)
		pid         int32
		wantThreads []Thread
		wantEnd     int64
		wantCode    int
		wantSignal  int
	}{{
		name: "merged by tgid, sorted, main exits first",
		script: func(s *script) {
			s.at(0).fork(1, 100)
			s.at(1).thread(1, 100, 103)
			s.at(2).thread(1, 100, 101)
			s.at(3).thread(1, 100, 102)
			s.at(4).exit(100, 103, 0, 0, 1)
			s.at(5).exit(100, 100, 0, 0, 1) // pthread_exit: the process lives on
			s.at(6).exit(100, 101, 0, 0, 1)
			s.at(7).exit(100, 102, 3, 0, 1) // the last task: its status is the process's
		},
		pid:         100,
		wantThreads: []Thread{{100, ms(0), ms(5)}, {101, ms(2), ms(6)}, {102, ms(3), ms(7)}, {103, ms(1), ms(4)}},
		wantEnd:     ms(7),
		wantCode:    3,
	}, {
		name: "killed: a thread whose exit is lost ends with the process",
		script: func(s *script) {
			s.at(0).fork(1, 200)
			s.at(1).thread(1, 200, 201)
			s.at(2).thread(1, 200, 202)
			s.at(3).exit(200, 201, 0, 9, 1)
			s.at(4).exit(200, 200, 0, 9, 1)
		},
		pid:         200,
		wantThreads: []Thread{{200, ms(0), ms(4)}, {201, ms(1), ms(3)}, {202, ms(2), ms(4)}},
		wantEnd:     ms(4),
		wantSignal:  9,
	}, {
		name: "still running at the end of the capture",
		script: func(s *script) {
			s.at(0).fork(1, 250)
			s.at(1).thread(1, 250, 251)
			s.at(2).exit(250, 250, 0, 0, 1)
		},
		pid:         250,
		wantThreads: []Thread{{250, ms(0), ms(2)}, {251, ms(1), 0}},
	}, {
		name: "exec from a thread ends the others",
		script: func(s *script) {
			s.at(0).fork(1, 300)
			s.at(1).thread(1, 300, 301)
			s.at(2).thread(1, 300, 302)
			s.at(3).exit(300, 300, 0, 0, 1) // de_thread reaps the old leader…
			s.at(4).exit(300, 302, 0, 0, 1)
			s.at(5).exec(300) // …and 301 becomes the leader
			s.at(6).exit(300, 300, 0, 0, 1)
		},
		pid:         300,
		wantThreads: []Thread{{300, ms(0), ms(6)}, {301, ms(1), ms(5)}, {302, ms(2), ms(4)}},
		wantEnd:     ms(6),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t)
			tt.script(s)
			p := one(t, s.build(nil), tt.pid)
			if diff := cmp.Diff(tt.wantThreads, p.Threads); diff != "" {
				t.Errorf("threads (-want +got):\n%s", diff)
			}
			if p.End != tt.wantEnd {
				t.Errorf("end = %d, want %d", p.End, tt.wantEnd)
			}
			if tt.wantEnd != 0 && (!p.Exited || p.ExitCode != tt.wantCode || p.Signal != tt.wantSignal) {
				t.Errorf("exit = %v %d %d, want code %d signal %d", p.Exited, p.ExitCode, p.Signal, tt.wantCode, tt.wantSignal)
			}
		})
	}
}

func TestPidReuse(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 100)
	s.at(1).exit(100, 100, 0, 0, 1)
	s.at(50).fork(1, 100)
	// A late audit event of the first process (header time 0.5 ms).
	s.at(51).header(0.5).audit(100, 1, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/old", "NORMAL"))
	s.at(52).audit(100, 1, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/new", "NORMAL"))
	s.at(60).exit(100, 100, 1<<0, 0, 1)
	m := s.build(nil)
	ps := find(m, 100)
	if len(ps) != 2 {
		t.Fatalf("%d processes 100, want 2: %s", len(ps), pids(m.Processes))
	}
	type life struct {
		Start, End int64
		Files      []string
	}
	var got []life
	for _, p := range ps {
		l := life{Start: p.Start, End: p.End}
		for _, f := range p.Files {
			l.Files = append(l.Files, f.Path)
		}
		got = append(got, l)
	}
	want := []life{{ms(0), ms(1), []string{"/old"}}, {ms(50), ms(60), []string{"/new"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("incarnations (-want +got):\n%s", diff)
	}
}

func TestTrueParent(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(10, 20)
	s.at(1).fork(20, 30)
	s.at(2).exit(20, 20, 0, 0, 10) // the middle parent exits first
	// The orphan, now a child of init, creates a thread and execs.
	s.at(3).thread(1, 30, 31)
	s.at(4).exec(30)
	s.at(4).audit(30, 1, "execve", `comm="echo" exe="/bin/echo"`, execve("/bin/echo", "orphaned"), cwd("/"), pathRec(0, "/bin/echo", "NORMAL"))
	s.at(5).exit(30, 30, 0, 0, 1)
	m := s.build(nil)
	if got, want := pids(m.Processes), "10[20[30]]"; got != want {
		t.Errorf("forest = %s, want %s", got, want)
	}
	p := one(t, m, 30)
	if p.PPID != 20 {
		t.Errorf("ppid = %d, want 20", p.PPID)
	}
	if diff := cmp.Diff([]Thread{{30, ms(0 + 1), ms(5)}, {31, ms(3), ms(4)}}, p.Threads); diff != "" {
		t.Errorf("threads (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/bin/echo", "orphaned"}, p.Argv); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
}

func TestExecs(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 50)
	s.at(1).exec(50)
	// PROCTITLE is stale after an execve: argv comes from EXECVE.
	s.at(1.5).audit(50, 1, "execve", `comm="ls" exe="/usr/bin/ls"`,
		execve("ls", "-l", "a b"), cwd("/home/u"), pathRec(0, "/bin/ls", "NORMAL"), proctitle("bash"))
	// The second exec's audit event comes before its connector event.
	s.at(2).audit(50, 1, "execve", `comm="cat" exe="/usr/bin/cat"`,
		execve("cat", "f"), cwd("/tmp"), pathRec(0, "/usr/bin/cat", "NORMAL"), proctitle("ls", "-l", "a b"))
	s.at(2.1).exec(50)
	s.at(3).exit(50, 50, 0, 0, 1)
	p := one(t, s.build(nil), 50)
	want := []Exec{
		{Time: ms(1), Exe: "/usr/bin/ls", Argv: []string{"ls", "-l", "a b"}, Cwd: "/home/u"},
		{Time: ms(2.1), Exe: "/usr/bin/cat", Argv: []string{"cat", "f"}, Cwd: "/tmp"},
	}
	if diff := cmp.Diff(want, p.Execs); diff != "" {
		t.Errorf("execs (-want +got):\n%s", diff)
	}
	got := []string{p.Comm, p.Exe, strings.Join(p.Argv, " "), p.Cwd}
	if diff := cmp.Diff([]string{"cat", "/usr/bin/cat", "cat f", "/tmp"}, got); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
}

func TestForkInheritsIdentity(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 60)
	s.at(1).exec(60)
	s.at(1).audit(60, 1, "execve", `comm="sh" exe="/usr/bin/dash"`, execve("sh", "-c", "x"), cwd("/w"), pathRec(0, "/bin/sh", "NORMAL"))
	s.at(2).fork(60, 61) // a subshell: never execs
	s.at(3).comm(61, "renamed")
	p := one(t, s.build(nil), 61)
	got := []string{p.Comm, p.Exe, strings.Join(p.Argv, " "), p.Cwd}
	if diff := cmp.Diff([]string{"renamed", "/usr/bin/dash", "sh -c x", "/w"}, got); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
}

// files returns a process's files in a compact, comparable form.
func files(p *Process) []File {
	out := append([]File(nil), p.Files...)
	for i := range out {
		out[i].Serial = 0 // the script's, checked by TestSerials
	}
	return out
}

func TestFiles(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 60)
	s.at(1).audit(60, 1, "openat", "exit=3 a0=ffffff9c a2=0", cwd("/a/b"), pathRec(0, "../x/./y", "NORMAL"))
	s.at(2).audit(60, 1, "openat", "exit=4 a0=ffffff9c a2=241", cwd("/a/b"), dirPath(0, "/a/b", "PARENT", 9), pathRec(1, "out", "CREATE"))
	s.at(3).audit(60, 1, "dup2", "exit=1 a0=4 a1=1")
	s.at(4).audit(60, 1, "close", "a0=4")
	s.at(5).audit(60, 1, "close", "a0=3")
	s.at(6).audit(60, 1, "rename", "", cwd("/a/b"),
		dirPath(0, "/a/b", "PARENT", 9), dirPath(1, "/a/b", "PARENT", 9), pathRec(2, "out", "DELETE"), pathRec(3, "new", "CREATE"))
	s.at(7).audit(60, 1, "unlinkat", "a0=ffffff9c", cwd("/a/b"), dirPath(0, "/a/b", "PARENT", 9), pathRec(1, "new", "DELETE"))
	s.at(8).audit(60, 1, "openat", "exit=5 a0=ffffff9c a2=2", cwd("/a/b"), pathRec(0, "/etc/passwd", "NORMAL"))
	s.at(9).audit(60, 1, "openat", "success=no exit=-13 a0=ffffff9c a2=0", cwd("/a/b"), pathRec(0, "/etc/shadow", "NORMAL"))
	s.at(9).audit(60, 1, "openat", "success=no exit=-2 a0=ffffff9c a2=0", cwd("/a/b"), pathRec(0, "/nonexistent", "UNKNOWN"))
	s.at(10).audit(60, 1, "chdir", "", cwd("/a/b"), dirPath(0, "..", "NORMAL", 8))
	s.at(11).audit(60, 1, "mkdir", "", cwd("/a"), dirPath(0, "/a", "PARENT", 8), dirPath(1, "made", "CREATE", 12))
	s.at(20).exit(60, 60, 0, 0, 1)
	p := one(t, s.build(nil), 60)
	want := []File{
		{Path: "/a/x/y", Op: "open", Mode: "r", Open: ms(1), Close: ms(5)},
		{Path: "/a/b/out", Op: "create", Mode: "w", Open: ms(2), Close: ms(20)}, // fd 1 still open at exit
		{Path: "/a/b/out", Op: "rename", Open: ms(6), Close: ms(6), To: "/a/b/new"},
		{Path: "/a/b/new", Op: "unlink", Open: ms(7), Close: ms(7)},
		{Path: "/etc/passwd", Op: "open", Mode: "rw", Open: ms(8), Close: ms(20)},
		{Path: "/etc/shadow", Op: "open", Mode: "r", Open: ms(9), Close: ms(9), Error: "EACCES"},
		{Path: "/nonexistent", Op: "open", Mode: "r", Open: ms(9), Close: ms(9), Error: "ENOENT"}, // every failure is kept
		{Path: "/a", Op: "chdir", Open: ms(10), Close: ms(10)},
		{Path: "/a/made", Op: "mkdir", Open: ms(11), Close: ms(11), Perm: "0755"},
	}
	if diff := cmp.Diff(want, files(p)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestDirfd(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 70)
	s.at(1).audit(70, 1, "openat", "exit=3 a0=ffffff9c a2=10000", cwd("/home"), dirPath(0, "/d", "NORMAL", 77))
	// rm -r: the PARENT item prints the cwd, not the fd's directory.
	s.at(2).audit(70, 1, "unlinkat", "a0=3 a2=0", cwd("/home"), dirPath(0, "/home", "PARENT", 77), pathRec(1, "x", "DELETE"))
	s.at(3).audit(70, 1, "unlinkat", "a0=3 a2=200", cwd("/home"), dirPath(0, "/home", "PARENT", 77), dirPath(1, "sub", "DELETE", 78))
	s.at(4).audit(70, 1, "openat", "exit=4 a0=3 a2=0", cwd("/home"), pathRec(0, "f", "NORMAL"))
	// An fd the table does not know: found by the PARENT item's inode.
	s.at(5).audit(70, 1, "unlinkat", "a0=9 a2=0", cwd("/home"), dirPath(0, "/home", "PARENT", 77), pathRec(1, "y", "DELETE"))
	// Neither the fd nor the inode: named through the fd, unresolved.
	s.at(6).audit(70, 1, "unlinkat", "a0=9 a2=0", cwd("/home"), dirPath(0, "/home", "PARENT", 99), pathRec(1, "z", "DELETE"))
	p := one(t, s.build(nil), 70)
	var got []string
	for _, f := range p.Files {
		got = append(got, f.Op+" "+f.Path+map[bool]string{true: " (unresolved)"}[f.Unresolved])
	}
	want := []string{"open /d", "unlink /d/x", "rmdir /d/sub", "open /d/f", "unlink /d/y", "unlink /proc/70/fd/9/z (unresolved)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestFDInheritance(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 80)
	s.at(1).audit(80, 1, "openat", "exit=3 a0=ffffff9c a2=10000", cwd("/"), dirPath(0, "/data", "NORMAL", 5))
	s.at(2).fork(80, 81)
	s.at(3).audit(80, 1, "openat", "exit=4 a0=ffffff9c a2=10000", cwd("/"), dirPath(0, "/late", "NORMAL", 6))
	s.at(4).audit(81, 80, "fchdir", "a0=3", cwd("/"))
	s.at(5).audit(81, 80, "openat", "exit=5 a0=4 a2=0", cwd("/data"), pathRec(0, "q", "NORMAL")) // fd 4 was opened after the fork: unknown
	s.at(6).audit(81, 80, "close", "a0=3")
	s.at(7).audit(81, 80, "fchdir", "a0=3")                                                                     // closed in the child: unknown
	s.at(8).audit(80, 1, "unlinkat", "a0=3", cwd("/"), dirPath(0, "/", "PARENT", 5), pathRec(1, "r", "DELETE")) // still open in the parent
	m := s.build(nil)
	var got []string
	for _, pid := range []int32{80, 81} {
		for _, f := range one(t, m, pid).Files {
			got = append(got, f.Op+" "+f.Path)
		}
	}
	want := []string{"open /data", "open /late", "unlink /data/r", "chdir /data", "open /proc/81/fd/4/q"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestCloseOnExec(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 90)
	s.at(1).audit(90, 1, "openat", "exit=3 a0=ffffff9c a2=80000", cwd("/"), pathRec(0, "/cloexec", "NORMAL"))
	s.at(1).audit(90, 1, "openat", "exit=4 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/kept", "NORMAL"))
	s.at(2).exec(90)
	s.at(2).audit(90, 1, "execve", `exe="/bin/true"`, execve("true"), cwd("/"), pathRec(0, "/bin/true", "NORMAL"))
	s.at(3).exit(90, 90, 0, 0, 1)
	p := one(t, s.build(nil), 90)
	want := []File{
		{Path: "/cloexec", Op: "open", Mode: "r", Open: ms(1), Close: ms(2)},
		{Path: "/kept", Op: "open", Mode: "r", Open: ms(1), Close: ms(3)},
		{Path: "/bin/true", Op: "exec", Open: ms(2), Close: ms(2)},
	}
	if diff := cmp.Diff(want, files(p)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestLateAuditAfterExit(t *testing.T) {
	// Audit records of a process's last syscalls reach the recorder after
	// the connector's exit: they still apply, and clamp into its life.
	s := newScript(t)
	s.at(0).fork(1, 95)
	s.at(1).exit(95, 95, 0, 0, 1)
	s.at(2).audit(95, 1, "openat", "exit=3 a0=ffffff9c a2=1", cwd("/"), pathRec(0, "/log", "NORMAL"))
	s.at(3).audit(95, 1, "close", "a0=3")
	p := one(t, s.build(nil), 95)
	want := []File{{Path: "/log", Op: "open", Mode: "w", Open: ms(1), Close: ms(1)}}
	if diff := cmp.Diff(want, files(p)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestFinalizeFreesState(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 96)
	s.at(1).audit(96, 1, "openat", "exit=3 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/f", "NORMAL"))
	s.at(2).thread(1, 96, 97)
	s.at(3).exit(96, 97, 0, 0, 1)
	s.at(4).exit(96, 96, 0, 0, 1)
	s.at(4+2*float64(finalizeGrace)/1e6).fork(1, 98) // time passes
	b := newBuilder()
	defer b.spool.Close()
	var ps parser
	for _, ev := range s.evs {
		pe := parsedEvent{ev: ev}
		if ev.Audit != nil {
			pe.ok, _ = ps.parse(&pe.c, ev.Audit, ev.Time, nil)
		}
		b.event(&pe)
	}
	b.procs.Update(b.now, func() {
		p := b.procs.Stub(b.byPID[96])
		if p == nil || p.PID != 96 || len(p.Tasks) != 2 {
			t.Fatalf("process 96: %+v", p)
		}
		if !p.Finalized() || p.FDs != nil || len(b.byTID) != 0 {
			t.Errorf("exited process not finalized: pid %d finalized %v fds %v tids %v", p.PID, p.Finalized(), p.FDs, b.byTID)
		}
	})
	// Its open file was closed at its end.
	m := s.build(nil)
	if want := []File{{Path: "/f", Op: "open", Mode: "r", Open: ms(1), Close: ms(4)}}; !cmp.Equal(want, files(one(t, m, 96))) {
		t.Errorf("files (-want +got):\n%s", cmp.Diff(want, files(one(t, m, 96))))
	}
}

func TestContainers(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 500) // runc run
	s.at(1).fork(500, 501)
	s.at(1).procfs(formats.ProcRecord{Kind: formats.ReasonFork, PID: 501, PPID: 500, Cgroup: "0::/user.slice/session-1.scope\n"})
	s.at(2).audit(501, 500, "openat", "exit=5 a0=ffffff9c a2=10000", cwd("/bundle"), dirPath(0, "/bundle/rootfs", "NORMAL", 40))
	s.at(3).audit(501, 500, "fchdir", "a0=5", cwd("/bundle"))
	// pivot_root's CWD record is already relative to the new root.
	s.at(4).audit(501, 500, "pivot_root", "", cwd("/"), dirPath(0, ".", "NORMAL", 40), dirPath(1, ".", "NORMAL", 40))
	s.at(5).exec(501)
	s.at(5).audit(501, 500, "execve", `exe="/bin/busybox" comm="sh"`, execve("sh"), cwd("/"), pathRec(0, "/bin/sh", "NORMAL"))
	s.at(5).procfs(formats.ProcRecord{Kind: formats.ReasonExec, PID: 501, PPID: 500, Cgroup: "0::/docker/" + cid + "\n"})
	s.at(6).fork(501, 502) // inherits the container
	// runc exec: joins the container's mount namespace through an fd.
	s.at(10).fork(1, 600)
	s.at(10).procfs(formats.ProcRecord{Kind: formats.ReasonFork, PID: 600, PPID: 1, Cgroup: "0::/user.slice\n"})
	s.at(11).audit(600, 1, "openat", "exit=7 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/proc/501/ns/mnt", "NORMAL"))
	s.at(11).audit(600, 1, "openat", "exit=8 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/proc/501/ns/net", "NORMAL"))
	s.at(12).audit(600, 1, "setns", "a0=8")
	s.at(12).audit(600, 1, "setns", "a0=7")
	s.at(13).fork(600, 601)
	// runc exec's last process is read at its fork in the host's cgroup,
	// before runc joins it to the container's: it inherits the container.
	s.at(14).fork(601, 602)
	s.at(14).procfs(formats.ProcRecord{Kind: formats.ReasonFork, PID: 602, PPID: 600, Cgroup: "0::/user.slice\n"})
	// A later read that names no container is believed.
	s.at(15).fork(502, 503)
	s.at(15).exec(503)
	s.at(15).procfs(formats.ProcRecord{Kind: formats.ReasonExec, PID: 503, PPID: 502, Cgroup: "0::/user.slice\n"})
	// A CNI plugin joins only the network namespace: not in the container.
	s.at(20).fork(1, 700)
	s.at(20).procfs(formats.ProcRecord{Kind: formats.ReasonFork, PID: 700, PPID: 1, Cgroup: "0::/system.slice/containerd.service\n"})
	s.at(21).audit(700, 1, "openat", "exit=3 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/proc/501/ns/net", "NORMAL"))
	s.at(21).audit(700, 1, "setns", "a0=3")
	// Another container, podman under systemd.
	s.at(30).fork(1, 800)
	s.at(30).procfs(formats.ProcRecord{Kind: formats.ReasonFork, PID: 800, PPID: 1, Cgroup: "0::/machine.slice/libpod-" + cid2 + ".scope/container\n"})
	m := s.build(nil)
	wantConts := []Container{
		{ID: cid, Runtime: "docker", Rootfs: "/bundle/rootfs", Processes: 5},
		{ID: cid2, Runtime: "podman", Processes: 1},
	}
	if diff := cmp.Diff(wantConts, m.Containers); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	got := map[int32]string{}
	walk(m.Processes, func(p *Process) { got[p.PID] = p.Container })
	want := map[int32]string{1: "", 500: "", 501: cid, 502: cid, 503: "", 600: cid, 601: cid, 602: cid, 700: "", 800: cid2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("process containers (-want +got):\n%s", diff)
	}
	m = s.build(&Options{Container: cid[:12]})
	if got, want := pids(m.Processes), "501[502] 600[601[602]]"; got != want {
		t.Errorf("--container forest = %s, want %s", got, want)
	}
}

func TestContainerFromCgroup(t *testing.T) {
	tests := []struct {
		name, cgroup, id, runtime string
	}{
		{"docker cgroupfs", "0::/docker/" + cid, cid, "docker"},
		{"docker systemd", "0::/system.slice/docker-" + cid + ".scope", cid, "docker"},
		{"containerd cri", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + cid + ".scope", cid, "containerd"},
		{"kubepods cgroupfs", "0::/kubepods/burstable/pod0a1b2c3d-1111-2222-3333-444455556666/" + cid, cid, "unknown"},
		{"podman", "0::/machine.slice/libpod-" + cid + ".scope/container", cid, "podman"},
		{"podman cgroupfs", "0::/libpod_parent/libpod-" + cid, cid, "podman"},
		{"podman conmon", "0::/machine.slice/libpod-conmon-" + cid + ".scope", "", ""},
		{"crio", "0::/kubepods.slice/kubepods-pod1.slice/crio-" + cid + ".scope", cid, "crio"},
		{"crio conmon", "0::/kubepods.slice/crio-conmon-" + cid + ".scope", "", ""},
		{"cgroup v1 lines", "12:pids:/docker/" + cid + "\n11:memory:/docker/" + cid + "\n0::/\n", cid, "docker"},
		{"docker in docker: deepest", "0::/docker/" + cid + "/docker/" + cid2, cid2, "docker"},
		{"host", "0::/user.slice/user-1000.slice/session-2.scope\n", "", ""},
		{"short id", "0::/docker/3f2a6b1c9d8e", "", ""},
		{"uppercase", "0::/docker/" + strings.ToUpper(cid), "", ""},
		{"docker- without scope", "0::/docker-" + cid, "", ""},
		{"garbage", "\x00::\n:::\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, rt := ContainerFromCgroup(tt.cgroup)
			if id != tt.id || rt != tt.runtime {
				t.Errorf("ContainerFromCgroup = %q, %q; want %q, %q", id, rt, tt.id, tt.runtime)
			}
		})
	}
}

func TestSnapshotAndCommand(t *testing.T) {
	s := newScript(t)
	s.boot = time.Unix(0, base).Add(-time.Hour)
	s.at(0).procfs(formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 1, StartTicks: 100, Comm: "init", Exe: "/sbin/init", Cmdline: []string{"/sbin/init"}, Cwd: "/"})
	s.at(0.1).procfs(formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 42, PPID: 1, TIDs: []int32{42, 43}, StartTicks: 200, UIDs: [4]uint32{1000}, Comm: "bash", Exe: "/bin/bash", Cmdline: []string{"-bash"}, Cwd: "/home/u"})
	// A process forked while the snapshot was being taken: its record
	// comes before its fork event; the start times match.
	s.at(0.5).procfs(formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 44, PPID: 42, StartTicks: uint64(time.Hour/time.Duration(clockTick)) + 0, Comm: "bash"})
	s.at(0.6).fork(42, 44)
	s.at(1).fork(42, 50)
	s.at(1.1).exec(50)
	s.at(1.2).procfs(formats.ProcRecord{Kind: formats.ReasonCommand, PID: 50, PPID: 42, Comm: "make", Exe: "/usr/bin/make", Cmdline: []string{"make", "test"}, Cwd: "/src"})
	s.at(2).fork(50, 51)
	s.at(3).fork(42, 52)
	m := s.build(nil)
	if got, want := pids(m.Processes), "1[42[44 50[51] 52]]"; got != want {
		t.Fatalf("forest = %s, want %s", got, want)
	}
	type facts struct {
		Before, Command bool
		Start           int64
		UID             int64
		Comm, Exe, Cwd  string
		Argv            []string
		TIDs            []int32
	}
	get := func(pid int32) facts {
		p := one(t, m, pid)
		f := facts{Before: p.BeforeCapture, Command: p.Command, Start: p.Start, UID: p.UID, Comm: p.Comm, Exe: p.Exe, Cwd: p.Cwd, Argv: p.Argv}
		for _, th := range p.Threads {
			f.TIDs = append(f.TIDs, th.TID)
		}
		return f
	}
	got := map[int32]facts{1: get(1), 42: get(42), 44: get(44), 50: get(50)}
	boot := s.boot.UnixNano()
	want := map[int32]facts{
		1:  {Before: true, Start: boot + 100*clockTick, UID: 0, Comm: "init", Exe: "/sbin/init", Cwd: "/", Argv: []string{"/sbin/init"}, TIDs: []int32{1}},
		42: {Before: true, Start: boot + 200*clockTick, UID: 1000, Comm: "bash", Exe: "/bin/bash", Cwd: "/home/u", Argv: []string{"-bash"}, TIDs: []int32{42, 43}},
		44: {Start: ms(0.6), UID: 1000, Comm: "bash", Exe: "/bin/bash", Cwd: "/home/u", Argv: []string{"-bash"}, TIDs: []int32{44}},
		50: {Command: true, Start: ms(1), UID: 1000, Comm: "make", Exe: "/usr/bin/make", Cwd: "/src", Argv: []string{"make", "test"}, TIDs: []int32{50}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("processes (-want +got):\n%s", diff)
	}

	m = s.build(&Options{Cmd: true})
	if got, want := pids(m.Processes), "50[51]"; got != want {
		t.Errorf("--cmd forest = %s, want %s", got, want)
	}
	s2 := newScript(t)
	s2.at(0).fork(1, 2)
	if _, err := Build(s2.source(), &Options{Cmd: true}); !errors.Is(err, ErrNoCommand) {
		t.Errorf("--cmd without a command record: err = %v, want ErrNoCommand", err)
	}
}

func TestSnapshotRace(t *testing.T) {
	// The snapshot reads a process started while recording began, after
	// it created threads, but the connector's queued events for it are
	// read later: its threads must not be counted twice.
	s := newScript(t)
	s.boot = time.Unix(0, base).Add(-time.Hour)
	ticks := uint64(time.Hour / time.Duration(clockTick))
	s.at(5).procfs(formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 570, PPID: 1, TIDs: []int32{570, 571}, StartTicks: ticks})
	s.at(0).fork(1, 570) // kernel times: the events happened earlier
	s.at(1).exec(570)
	s.at(2).thread(1, 570, 571)
	s.at(6).exit(570, 571, 0, 0, 1)
	s.at(7).exit(570, 570, 0, 0, 1)
	p := one(t, s.build(nil), 570)
	if diff := cmp.Diff([]Thread{{570, ms(0), ms(7)}, {571, ms(2), ms(6)}}, p.Threads); diff != "" {
		t.Errorf("threads (-want +got):\n%s", diff)
	}
	if p.BeforeCapture {
		t.Error("before_capture set for a process whose fork is in the capture")
	}
}

func TestAuditOnly(t *testing.T) {
	tests := []struct {
		name   string
		script func(s *script)
		forest string
		check  func(t *testing.T, m *Model)
	}{{
		name: "vfork record after the child's execve",
		script: func(s *script) {
			s.at(1).audit(81, 80, "execve", `exe="/bin/ls" comm="ls"`, execve("ls"), cwd("/"), pathRec(0, "/bin/ls", "NORMAL"))
			s.at(2).audit(80, 1, "vfork", "exit=81")
			s.at(3).audit(81, 80, "exit_group", "a0=2")
		},
		forest: "1[80[81]]",
		check: func(t *testing.T, m *Model) {
			p := one(t, m, 81)
			if p.BeforeCapture || !p.Exited || p.ExitCode != 2 || p.End != ms(3) || p.Exe != "/bin/ls" {
				t.Errorf("81: before %v exited %v code %d end %d exe %q; want created in capture, exit 2 at 3 ms, /bin/ls", p.BeforeCapture, p.Exited, p.ExitCode, p.End, p.Exe)
			}
		},
	}, {
		name: "vfork record after the child's exit_group",
		script: func(s *script) {
			s.at(1).audit(81, 80, "execve", `exe="/bin/true" comm="true"`, execve("true"), cwd("/"), pathRec(0, "/bin/true", "NORMAL"))
			s.at(2).audit(81, 80, "exit_group", "a0=0")
			// vfork's header is its entry's, before the child ran.
			s.header(0.5).at(3).audit(80, 1, "vfork", "exit=81")
		},
		forest: "1[80[81]]",
		check: func(t *testing.T, m *Model) {
			if p := one(t, m, 81); p.BeforeCapture || !p.Exited || p.End != ms(2) {
				t.Errorf("81: before %v exited %v end %d; want created in capture, exited at 2 ms", p.BeforeCapture, p.Exited, p.End)
			}
		},
	}, {
		name: "a pid reused after exit_group",
		script: func(s *script) {
			s.at(1).audit(80, 1, "clone", "exit=81 a0=1200011")
			s.at(2).audit(81, 80, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/first", "NORMAL"))
			s.at(3).audit(81, 80, "exit_group", "a0=1")
			s.at(20).audit(80, 1, "clone", "exit=81 a0=1200011")
			s.at(21).audit(81, 80, "execve", `exe="/bin/ls" comm="ls"`, execve("ls"), cwd("/"), pathRec(0, "/bin/ls", "NORMAL"))
			s.at(22).audit(81, 80, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/second", "NORMAL"))
			s.at(23).audit(81, 80, "exit_group", "a0=0")
			s.at(15000).audit(1, 0, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/later", "NORMAL"))
		},
		forest: "1[80[81 81]]",
		check: func(t *testing.T, m *Model) {
			ps := find(m, 81)
			if len(ps) != 2 {
				t.Fatalf("%d processes with pid 81, want 2", len(ps))
			}
			a, b := ps[0], ps[1]
			if a.End != ms(3) || a.ExitCode != 1 || len(a.Files) != 1 || a.Files[0].Path != "/first" || a.Files[0].Close != ms(3) {
				t.Errorf("first 81: end %d code %d files %+v; want exit 1 at 3 ms, /first closed then", a.End, a.ExitCode, a.Files)
			}
			if b.Start != ms(20) || b.End != ms(23) || b.Exe != "/bin/ls" || len(b.Files) != 2 || b.Files[1].Path != "/second" {
				t.Errorf("second 81: %d to %d exe %q files %+v; want 20 to 23 ms, /bin/ls, exec then /second", b.Start, b.End, b.Exe, b.Files)
			}
		},
	}, {
		name: "child's records before the creator's clone, creator gone",
		script: func(s *script) {
			s.at(1).audit(80, 1, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/x", "NORMAL"))
			s.at(2).audit(91, 1, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/y", "NORMAL")) // reparented to init already
			s.at(3).audit(80, 1, "clone", "exit=91 a0=1200011")
		},
		forest: "1[80[91]]",
	}, {
		name: "clone3 of a thread and a pending clone",
		script: func(s *script) {
			s.at(1).audit(80, 1, "clone3", "exit=82")
			s.at(2).audit(82, 1, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/z", "NORMAL"))
		},
		forest: "1[80[82]]",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t)
			tt.script(s)
			m := s.build(nil)
			if got := pids(m.Processes); got != tt.forest {
				t.Errorf("forest = %s, want %s", got, tt.forest)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestCloneParent(t *testing.T) {
	// runc's nsexec clones with CLONE_PARENT: the kernel (and the
	// connector) names the creator's parent. The creator's clone record
	// arrives before the child's fork event, and the child's own records
	// may come before it too.
	s := newScript(t)
	s.at(0).fork(1, 500)
	s.at(1).fork(500, 510)
	s.at(2).audit(510, 500, "clone", "exit=511 a0=8011")
	s.at(2.1).fork(500, 511)
	s.at(3).audit(511, 500, "clone", "exit=512 a0=8011")
	s.at(3.1).audit(512, 500, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/x", "NORMAL"))
	s.at(3.2).fork(500, 512)
	// A plain clone (no CLONE_PARENT) leaves the connector's parent.
	s.at(4).audit(512, 500, "clone", "exit=513 a0=1200011")
	s.at(4.1).fork(512, 513)
	// Inside a pid namespace clone returns a namespace-local pid: pid 5 on
	// the host is another process.
	s.at(0).procfs(formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 5, PPID: 2, Comm: "kworker"})
	s.at(5).audit(512, 500, "clone", "exit=5 a0=8011")
	m := s.build(nil)
	if got, want := pids(m.Processes), "1[500[510[511[512[513]]]]] 2[5]"; got != want {
		t.Errorf("forest = %s, want %s", got, want)
	}
}

func TestThreadCloneRecord(t *testing.T) {
	// clone3 hides CLONE_THREAD; the connector tells threads apart, and the
	// clone3 record returning the thread's tid must not make a process.
	s := newScript(t)
	s.at(0).fork(1, 400)
	s.at(1).audit(400, 1, "clone3", "exit=401")
	s.at(1.1).thread(1, 400, 401)
	s.at(2).audit(400, 1, "clone3", "exit=402")
	s.at(2.1).thread(1, 400, 402)
	s.at(3).audit(400, 1, "clone3", "exit=402") // again, now known as a thread
	m := s.build(nil)
	if got, want := pids(m.Processes), "1[400]"; got != want {
		t.Errorf("forest = %s, want %s", got, want)
	}
	if got := len(one(t, m, 400).Threads); got != 3 {
		t.Errorf("%d threads, want 3", got)
	}
}

func TestSelfReexec(t *testing.T) {
	// runc re-executes itself with execveat(fd, "", AT_EMPTY_PATH): audit
	// shows exe="/" and an item 0 without a name; its inode was seen
	// executed as /usr/sbin/runc. A memfd's inode is unknown.
	s := newScript(t)
	s.at(0).fork(1, 300)
	s.at(1).exec(300)
	s.at(1).audit(300, 1, "execve", `exe="/usr/sbin/runc"`, execve("runc", "init"), cwd("/b"),
		"PATH item=0 name=\"/proc/self/exe\" inode=4242 dev=fe:00 mode=0100755 nametype=NORMAL")
	s.at(2).exec(300)
	s.at(2).audit(300, 1, "execveat", `a0=5 exe="/"`, execve("runc", "init"), cwd("/b"),
		"PATH item=0 name=\"\" inode=4242 dev=fe:00 mode=0100755 nametype=NORMAL",
		"PATH item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode=7 dev=fe:00 mode=0100755 nametype=NORMAL")
	s.at(3).exec(300)
	s.at(3).audit(300, 1, "execveat", `a0=6 exe="/"`, execve("payload"), cwd("/b"),
		"PATH item=0 name=\"\" inode=31337 dev=00:01 mode=0100777 nametype=NORMAL")
	p := one(t, s.build(nil), 300)
	var got []string
	for _, x := range p.Execs {
		got = append(got, x.Exe)
	}
	if diff := cmp.Diff([]string{"/usr/sbin/runc", "/usr/sbin/runc", ""}, got); diff != "" {
		t.Errorf("exes (-want +got):\n%s", diff)
	}
}

func TestFilters(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 10)
	s.at(0).comm(10, "sh")
	s.at(1).fork(10, 11)
	s.at(1).comm(11, "curl")
	s.at(2).audit(11, 10, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/etc/ssl/certs/ca.pem", "NORMAL"))
	s.at(3).exit(11, 11, 0, 0, 10)
	s.at(4).fork(10, 12)
	s.at(4).comm(12, "ls")
	s.at(5).audit(12, 10, "openat", "exit=3 a0=ffffff9c", cwd("/"), pathRec(0, "/srv/app.conf", "NORMAL"))
	s.at(100).fork(1, 20)
	s.at(100).comm(20, "cron")
	s.at(101).procfs(formats.ProcRecord{Kind: formats.ReasonFork, PID: 20, Cgroup: "0::/docker/" + cid})
	s.at(102).fork(20, 21)
	tests := []struct {
		name   string
		opts   Options
		forest string
	}{
		{"none", Options{}, "1[10[11 12] 20[21]]"},
		{"pid subtree", Options{Pid: 10}, "10[11 12]"},
		{"comm with ancestors", Options{Comm: "curl"}, "1[10[11]]"},
		{"path glob on a parent dir", Options{PathGlob: "/etc/ssl"}, "1[10[11]]"},
		{"path glob wildcard", Options{PathGlob: "/etc/*"}, "1[10[11]]"},
		{"path glob base name", Options{PathGlob: "*.conf"}, "1[10[12]]"},
		{"since", Options{Since: time.Unix(0, ms(50))}, "1[10[12] 20[21]]"},
		{"until", Options{Until: time.Unix(0, ms(50))}, "1[10[11 12]]"},
		{"window", Options{Since: time.Unix(0, ms(3.5)), Until: time.Unix(0, ms(50))}, "1[10[12]]"},
		{"container prefix", Options{Container: cid[:5]}, "20[21]"},
		{"combined", Options{Pid: 10, Comm: "ls"}, "10[12]"},
		{"nothing", Options{Pid: 999}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := s.build(&tt.opts)
			if got := pids(m.Processes); got != tt.forest {
				t.Errorf("forest = %q, want %q", got, tt.forest)
			}
		})
	}
	if _, err := Build(s.source(), &Options{PathGlob: "[x"}); err == nil {
		t.Error("bad glob: no error")
	}
}

func TestParentCycle(t *testing.T) {
	// Hostile snapshot records naming each other as parents.
	s := newScript(t)
	s.at(0).procfs(formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 7, PPID: 8})
	s.at(0).procfs(formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 8, PPID: 7})
	m := s.build(&Options{Comm: "x"})
	if len(m.Processes) != 0 {
		t.Errorf("forest = %s, want empty", pids(m.Processes))
	}
	m = s.build(nil)
	n := 0
	walk(m.Processes, func(*Process) { n++ })
	if n != 2 {
		t.Errorf("%d processes in %q, want 2", n, pids(m.Processes))
	}
}

func TestContainerFromRootfs(t *testing.T) {
	const id = "9516a9c4b2bf47cb60c9cb98f2a20c69c732ecbb65d0e9c820a6f9e5dfe325d5"
	for _, tc := range []struct{ rootfs, id, runtime string }{
		{"/run/containerd/io.containerd.runtime.v2.task/moby/" + id + "/rootfs", id, RuntimeDocker},
		{"/run/docker/containerd/daemon/io.containerd.runtime.v1.linux/moby/" + id + "/rootfs", id, RuntimeDocker},
		{"/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + id + "/rootfs", id, RuntimeContainerd},
		{"/var/lib/containers/storage/overlay-containers/" + id + "/userdata/rootfs", id, RuntimeUnknown},
		// An overlay layer's directory is no container id.
		{"/var/lib/docker/overlay2/" + id + "/merged", "rootfs:/var/lib/docker/overlay2/" + id + "/merged", RuntimeUnknown},
		{"/tmp/bundle/rootfs", "rootfs:/tmp/bundle/rootfs", RuntimeUnknown},
		{"/", "rootfs:/", RuntimeUnknown},
	} {
		gotID, gotRT := ContainerFromRootfs(tc.rootfs)
		if gotID != tc.id || gotRT != tc.runtime {
			t.Errorf("%s: %q %q, want %q %q", tc.rootfs, gotID, gotRT, tc.id, tc.runtime)
		}
	}
}

// TestDirfdStale: a dirfd's entry is believed only when the PARENT
// record agrees with the inode it was opened with; a renamed directory
// is named as it is now; after pivot_root the fds opened before are not
// used; a /proc/self/fd/N name is the fd's path.
func TestDirfdStale(t *testing.T) {
	s := newScript(t)
	s.at(0).fork(1, 70)
	s.at(1).audit(70, 1, "openat", "exit=3 a0=ffffff9c a2=10000", cwd("/"), dirPath(0, "/a", "NORMAL", 10))
	// fd 3 is now b's, made out of view (inode 11): not /a/x.
	s.at(2).audit(70, 1, "unlinkat", "a0=3 a2=0", cwd("/"), dirPath(0, "/", "PARENT", 11), pathRec(1, "x", "DELETE"))
	s.at(3).audit(70, 1, "openat", "exit=4 a0=ffffff9c a2=10000", cwd("/"), dirPath(0, "/b", "NORMAL", 11))
	s.at(4).audit(70, 1, "close", "a0=4")
	s.at(5).audit(70, 1, "unlinkat", "a0=3 a2=0", cwd("/"), dirPath(0, "/", "PARENT", 11), pathRec(1, "y", "DELETE"))
	// fd 3 back to a; a renamed to c.
	s.at(6).audit(70, 1, "openat", "exit=3 a0=ffffff9c a2=10000", cwd("/"), dirPath(0, "/a", "NORMAL", 10))
	s.at(7).audit(70, 1, "rename", "", cwd("/"), dirPath(0, "/", "PARENT", 2), dirPath(1, "/", "PARENT", 2),
		dirPath(2, "/a", "DELETE", 10), dirPath(3, "/c", "CREATE", 10))
	s.at(8).audit(70, 1, "unlinkat", "a0=3 a2=0", cwd("/"), dirPath(0, "/", "PARENT", 10), pathRec(1, "z", "DELETE"))
	s.at(9).audit(70, 1, "fchmodat", "a0=ffffff9c a2=1ed", cwd("/"), pathRec(0, "/proc/self/fd/3", "NORMAL"))
	// pivot_root: fd 3 names /c from the old root.
	s.at(10).audit(70, 1, "chdir", "", cwd("/"), dirPath(0, "/root", "NORMAL", 12))
	s.at(11).audit(70, 1, "pivot_root", "", cwd("/"), dirPath(0, ".", "NORMAL", 12), dirPath(1, ".", "NORMAL", 12))
	s.at(12).audit(70, 1, "fchmodat", "a0=ffffff9c a2=1ed", cwd("/"), pathRec(0, "/proc/self/fd/3", "NORMAL"))
	s.at(13).audit(70, 1, "unlinkat", "a0=3 a2=0", cwd("/"), dirPath(0, "/", "PARENT", 10), pathRec(1, "w", "DELETE"))
	p := one(t, s.build(nil), 70)
	var got []string
	for _, f := range p.Files {
		if f.Op != "open" && f.Op != "chdir" && f.Op != "pivot_root" {
			got = append(got, f.Op+" "+f.Path+" "+f.To+map[bool]string{true: "(unresolved)"}[f.Unresolved])
		}
	}
	want := []string{
		"unlink /proc/70/fd/3/x (unresolved)",
		"unlink /b/y ",
		"rename /a /c",
		"unlink /c/z ",
		"chmod /c ",
		"chmod /proc/self/fd/3 ",
		"unlink /proc/70/fd/3/w (unresolved)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestParseFDPair(t *testing.T) {
	for text, want := range map[string][2]int32{"fd0=3 fd1=4": {3, 4}, "fd1=9 fd0=12": {12, 9}} {
		if got, ok := parseFDPair(text); !ok || got != want {
			t.Errorf("parseFDPair(%q) = %v, %v; want %v", text, got, ok, want)
		}
	}
	for _, text := range []string{"", "fd0=3", "fd0=x fd1=4", "fd0=-1 fd1=2"} {
		if _, ok := parseFDPair(text); ok {
			t.Errorf("parseFDPair(%q) ok", text)
		}
	}
}
