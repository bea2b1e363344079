package record

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"proctrail/formats"
)

// lockedThread returns the tid of a thread other than the main one, which
// lives until the test ends: a goroutine locked to a thread keeps it, and a
// goroutine that happens to lock the main thread holds it while the next
// one tries again.
func lockedThread(t *testing.T) int32 {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	for {
		tid := make(chan int32)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid <- int32(unix.Gettid())
			<-done
		}()
		if id := <-tid; id != int32(os.Getpid()) {
			return id
		}
	}
}

func readSelf(t *testing.T, p *ProcReader, rec *formats.ProcRecord) {
	t.Helper()
	if err := p.Read(int32(os.Getpid()), formats.ReasonExec, rec); err != nil {
		t.Fatalf("Read(self): %v", err)
	}
	if rec.Gone {
		t.Fatal("Read(self): Gone")
	}
}

func TestProcReaderReadSelf(t *testing.T) {
	tid := lockedThread(t)
	pid := int32(os.Getpid())
	var rec formats.ProcRecord
	readSelf(t, NewProcReader(""), &rec)

	if rec.Kind != formats.ReasonExec || rec.PID != pid {
		t.Errorf("Kind, PID = %v, %d; want fork, %d", rec.Kind, rec.PID, pid)
	}
	if rec.PPID != int32(os.Getppid()) {
		t.Errorf("PPID = %d, want %d", rec.PPID, os.Getppid())
	}
	if rec.StartTicks == 0 {
		t.Error("StartTicks = 0")
	}
	if !slices.IsSorted(rec.TIDs) || !slices.Contains(rec.TIDs, pid) || !slices.Contains(rec.TIDs, tid) {
		t.Errorf("TIDs = %v, want sorted, holding pid %d and locked thread %d", rec.TIDs, pid, tid)
	}
	if uid := uint32(os.Getuid()); rec.UIDs[0] != uid || rec.UIDs[1] != uint32(os.Geteuid()) {
		t.Errorf("UIDs = %v, want real %d", rec.UIDs, uid)
	}
	if rec.GIDs[0] != uint32(os.Getgid()) {
		t.Errorf("GIDs = %v, want real %d", rec.GIDs, os.Getgid())
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(string(comm), "\n"); rec.Comm != want {
		t.Errorf("Comm = %q, want %q", rec.Comm, want)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		t.Fatal(err)
	}
	if rec.Exe != exe {
		t.Errorf("Exe = %q, want %q", rec.Exe, exe)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if wd, err = filepath.EvalSymlinks(wd); err != nil {
		t.Fatal(err)
	}
	if rec.Cwd != wd {
		t.Errorf("Cwd = %q, want %q", rec.Cwd, wd)
	}
	if rec.Root != "/" {
		t.Errorf("Root = %q, want /", rec.Root)
	}
	if diff := cmp.Diff(os.Args, rec.Cmdline); diff != "" {
		t.Errorf("Cmdline (-want +got):\n%s", diff)
	}
	cgroup, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Cgroup != string(cgroup) {
		t.Errorf("Cgroup = %q, want %q", rec.Cgroup, cgroup)
	}

	var names []string
	for _, ns := range rec.Namespaces {
		names = append(names, ns.Name)
		fi, err := os.Stat("/proc/self/ns/" + ns.Name)
		if err != nil {
			t.Errorf("namespace %s: %v", ns.Name, err)
			continue
		}
		if ino := fi.Sys().(*syscall.Stat_t).Ino; ns.Inode != ino {
			t.Errorf("namespace %s inode = %d, want %d", ns.Name, ns.Inode, ino)
		}
	}
	if !slices.Contains(names, "mnt") {
		t.Errorf("Namespaces %v lack mnt", names)
	}
	order := []string{"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"}
	if !slices.IsSortedFunc(names, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) }) {
		t.Errorf("Namespaces %v not in the order %v", names, order)
	}
}

func TestProcReaderReadComm(t *testing.T) {
	const comm = "a) (b c"
	// read is a shell builtin: the shell itself stays, with the comm it set.
	cmd := exec.Command("sh", "-c", `printf '`+comm+`' > /proc/self/comm && echo ready && read x`)
	startReady(t, cmd)

	var rec formats.ProcRecord
	if err := NewProcReader("").Read(int32(cmd.Process.Pid), formats.ReasonExec, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Comm != comm {
		t.Errorf("Comm = %q, want %q", rec.Comm, comm)
	}
	if rec.PPID != int32(os.Getpid()) {
		t.Errorf("PPID = %d, want %d", rec.PPID, os.Getpid())
	}
	if rec.StartTicks == 0 {
		t.Error("StartTicks = 0")
	}
}

func TestProcReaderReadGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	p := NewProcReader("")
	var rec formats.ProcRecord
	readSelf(t, p, &rec) // rec now full: Read must clear it
	pid := int32(cmd.Process.Pid)
	if err := p.Read(pid, formats.ReasonExec, &rec); err != nil {
		t.Fatalf("Read(gone): %v", err)
	}
	want := formats.ProcRecord{Kind: formats.ReasonExec, PID: pid, Gone: true}
	if diff := cmp.Diff(want, rec, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Read(gone) (-want +got):\n%s", diff)
	}
}

func TestProcReaderReadDeletedExe(t *testing.T) {
	src, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	if src, err = filepath.EvalSymlinks(src); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "sleep") // busybox picks its applet by name
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	// Start returns once the exec closed the child's close-on-exec
	// descriptors (begin_new_exec), before the new program's argument
	// area is set up: until then its cmdline reads empty. The recorder
	// reads after the connector's exec event, sent when exec is done.
	cmdline := fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if b, err := os.ReadFile(cmdline); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still empty after 10 s", cmdline)
		}
	}

	var rec formats.ProcRecord
	if err := NewProcReader("").Read(int32(cmd.Process.Pid), formats.ReasonExec, &rec); err != nil {
		t.Fatal(err)
	}
	if want := exe + " (deleted)"; rec.Exe != want {
		t.Errorf("Exe = %q, want %q", rec.Exe, want)
	}
	if diff := cmp.Diff([]string{exe, "60"}, rec.Cmdline); diff != "" {
		t.Errorf("Cmdline (-want +got):\n%s", diff)
	}
}

func TestProcReaderSnapshot(t *testing.T) {
	tid := lockedThread(t)
	pid := int32(os.Getpid())
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var threads []int32 // our tids other than the pid
	for _, e := range tasks {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if int32(n) != pid {
			threads = append(threads, int32(n))
		}
	}
	if !slices.Contains(threads, tid) {
		t.Fatalf("threads %v lack the locked thread %d", threads, tid)
	}

	var pids []int32
	err = NewProcReader("").Snapshot(func(rec *formats.ProcRecord) error {
		if rec.Kind != formats.ReasonSnapshot || rec.Gone {
			t.Errorf("pid %d: Kind %v, Gone %v", rec.PID, rec.Kind, rec.Gone)
		}
		if rec.PID == pid && !slices.Contains(rec.TIDs, tid) {
			t.Errorf("own TIDs %v lack %d", rec.TIDs, tid)
		}
		pids = append(pids, rec.PID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int32{1, pid} {
		if !slices.Contains(pids, want) {
			t.Errorf("snapshot %v lacks pid %d", pids, want)
		}
	}
	for i := 1; i < len(pids); i++ {
		if pids[i] <= pids[i-1] {
			t.Errorf("snapshot not strictly ascending at %d: %d after %d", i, pids[i], pids[i-1])
		}
	}
	for _, tid := range threads {
		if slices.Contains(pids, tid) {
			t.Errorf("snapshot holds thread %d of process %d", tid, pid)
		}
	}
}

func TestProcReaderSnapshotStop(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := NewProcReader("").Snapshot(func(*formats.ProcRecord) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("Snapshot = %v after %d calls, want %v after 1", err, n, stop)
	}
}

func TestProcReaderRoundTrip(t *testing.T) {
	var rec, got formats.ProcRecord
	readSelf(t, NewProcReader(""), &rec)
	b, err := rec.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-read +decoded):\n%s", diff)
	}
}

func TestProcReaderReadAllocs(t *testing.T) {
	p := NewProcReader("")
	var rec formats.ProcRecord
	readSelf(t, p, &rec)
	pid := int32(os.Getpid())
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.Read(pid, formats.ReasonExec, &rec); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("Read allocates %v times, want at most 1 (the strings)", allocs)
	}
}

// fakeProc builds a procfs tree under a temporary directory: name → content,
// a content beginning with "->" makes a symbolic link, a name ending in "/"
// a directory.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(path, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(content[2:], path)
		default:
			err = os.WriteFile(path, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fakeStat is a /proc/PID/stat line of a process of one thread with the
// given comm, ppid and start.
func fakeStat(pid int, comm string, ppid int, start uint64) string {
	return fakeStatThreads(pid, comm, ppid, start, 1)
}

// fakeStatThreads is fakeStat with a number of threads.
func fakeStatThreads(pid int, comm string, ppid int, start uint64, threads int) string {
	return strconv.Itoa(pid) + " (" + comm + ") S " + strconv.Itoa(ppid) +
		" 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 " + strconv.Itoa(threads) + " 0 " +
		strconv.FormatUint(start, 10) + " 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 0 17 3 0 0\n"
}

const fakeStatus = "Name:\tx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nNgid:\t0\nPid:\t42\nPPid:\t7\nTracerPid:\t0\n" +
	"Uid:\t1000\t1001\t1002\t4294967294\nGid:\t100\t101\t102\t103\nFDSize:\t64\nGroups:\t1 2 3\n"

func TestProcReaderReadFake(t *testing.T) {
	long := strings.Repeat("x", procMaxFile+100)
	tests := []struct {
		name  string
		files map[string]string
		want  formats.ProcRecord
	}{{
		name: "full",
		files: map[string]string{
			"42/stat":                 fakeStatThreads(42, "a) (b\nc)", 7, 123456789012, 3),
			"42/status":               fakeStatus,
			"42/task/42/":             "",
			"42/task/7/":              "",
			"42/task/1000/":           "",
			"42/task/oops/":           "",
			"42/exe":                  "->/usr/bin/x (deleted)",
			"42/cwd":                  "->/home/a b",
			"42/root":                 "->/var/lib/containers/x",
			"42/cmdline":              "x\x00-c\x00\x00last\x00",
			"42/cgroup":               "0::/system.slice/docker-3f2a.scope\n",
			"42/ns/mnt":               "->mnt:[4026531841]",
			"42/ns/pid_for_children":  "->pid:[4026531836]",
			"42/ns/cgroup":            "->cgroup:[1]",
			"42/ns/net":               "->garbage",
			"42/ns/uts":               "->uts:[]",
			"42/ns/user":              "->user:[18446744073709551616]",
			"42/ns/time_for_children": "->time:[18446744073709551615]",
		},
		want: formats.ProcRecord{
			Kind: formats.ReasonExec, PID: 42, PPID: 7, StartTicks: 123456789012,
			TIDs: []int32{7, 42, 1000},
			UIDs: [4]uint32{1000, 1001, 1002, 4294967294},
			GIDs: [4]uint32{100, 101, 102, 103},
			Comm: "a) (b\nc)", Exe: "/usr/bin/x (deleted)", Cwd: "/home/a b", Root: "/var/lib/containers/x",
			Cmdline: []string{"x", "-c", "", "last"},
			Cgroup:  "0::/system.slice/docker-3f2a.scope\n",
			Namespaces: []formats.Namespace{
				{Name: "cgroup", Inode: 1},
				{Name: "mnt", Inode: 4026531841},
				{Name: "pid_for_children", Inode: 4026531836},
				{Name: "time_for_children", Inode: 18446744073709551615},
			},
		},
	}, {
		name: "kernel thread",
		files: map[string]string{
			"42/stat":     fakeStat(42, "kworker/0:1-events", 2, 5),
			"42/status":   fakeStatus,
			"42/cmdline":  "",
			"42/task/42/": "",
		},
		want: formats.ProcRecord{
			Kind: formats.ReasonExec, PID: 42, PPID: 2, StartTicks: 5, TIDs: []int32{42},
			UIDs: [4]uint32{1000, 1001, 1002, 4294967294}, GIDs: [4]uint32{100, 101, 102, 103},
			Comm: "kworker/0:1-events",
		},
	}, {
		name: "setproctitle",
		files: map[string]string{
			"42/stat":    fakeStat(42, "postgres", 1, 5),
			"42/cmdline": "postgres: checkpointer ",
		},
		want: formats.ProcRecord{
			Kind: formats.ReasonExec, PID: 42, PPID: 1, StartTicks: 5, TIDs: []int32{42},
			Comm: "postgres", Cmdline: []string{"postgres: checkpointer "},
		},
	}, {
		name: "bounded",
		files: map[string]string{
			"42/stat":    fakeStat(42, "x", 1, 5),
			"42/cmdline": long + "\x00y\x00",
			"42/cgroup":  long,
		},
		want: formats.ProcRecord{
			Kind: formats.ReasonExec, PID: 42, PPID: 1, StartTicks: 5, Comm: "x", TIDs: []int32{42},
			Cmdline: []string{long[:procMaxFile]}, Cgroup: long[:procMaxFile],
		},
	}, {
		name: "garbled stat",
		files: map[string]string{
			"42/stat":   "42 (x R 7",
			"42/status": "Uid:\t1\t2\t3\t4\n",
			"42/cgroup": "0::/\n",
		},
		want: formats.ProcRecord{Kind: formats.ReasonExec, PID: 42, UIDs: [4]uint32{1, 2, 3, 4}, Cgroup: "0::/\n"},
	}, {
		name:  "no stat",
		files: map[string]string{"42/cmdline": "x\x00"},
		want:  formats.ProcRecord{Kind: formats.ReasonExec, PID: 42, Gone: true},
	}, {
		name:  "no process",
		files: map[string]string{"43/stat": fakeStat(43, "x", 1, 5)},
		want:  formats.ProcRecord{Kind: formats.ReasonExec, PID: 42, Gone: true},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProcReader(fakeProc(t, tt.files))
			var got formats.ProcRecord
			readSelf(t, NewProcReader(""), &got) // Read must overwrite every field
			if err := p.Read(42, formats.ReasonExec, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProcReaderSnapshotFake(t *testing.T) {
	root := fakeProc(t, map[string]string{
		"100/stat":      fakeStat(100, "b", 42, 2),
		"42/stat":       fakeStat(42, "a", 1, 1),
		"9/cmdline":     "gone\x00", // no stat: exited between listing and reading
		"self":          "->42",
		"sys/":          "",
		"0x10/":         "",
		"99999999999/":  "",
		"-5/":           "",
		"2147483647/":   "",
		"2147483648/":   "",
		"2147483647/xx": "",
	})
	var got []formats.ProcRecord
	err := NewProcReader(root).Snapshot(func(rec *formats.ProcRecord) error {
		r := *rec
		r.TIDs = slices.Clone(rec.TIDs) // rec's arrays are reused
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// stat says one thread: the pid itself, with no task directory read.
	want := []formats.ProcRecord{
		{Kind: formats.ReasonSnapshot, PID: 42, PPID: 1, StartTicks: 1, Comm: "a", TIDs: []int32{42}},
		{Kind: formats.ReasonSnapshot, PID: 100, PPID: 42, StartTicks: 2, Comm: "b", TIDs: []int32{100}},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}

	err = NewProcReader(filepath.Join(root, "nonexistent")).Snapshot(func(*formats.ProcRecord) error { return nil })
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Snapshot of a missing root = %v, want ErrNotExist", err)
	}
}

func TestProcParseStat(t *testing.T) {
	tests := []struct {
		name, stat string
		comm       string
		ppid       int32
		start      uint64
		threads    int32
		ok         bool
	}{
		{"plain", fakeStat(1, "init", 0, 3), "init", 0, 3, 1, true},
		{"parens", fakeStat(5, ") (", 4, 9), ") (", 4, 9, 1, true},
		{"empty comm", fakeStat(5, "", 4, 9), "", 4, 9, 1, true},
		{"newline", fakeStat(5, "a\n) S 1", 4, 9), "a\n) S 1", 4, 9, 1, true},
		{"threads", fakeStatThreads(5, "x", 4, 9, 12), "x", 4, 9, 12, true},
		{"bad threads", fakeStatThreads(5, "x", 4, 9, -1), "x", 4, 9, 0, true},
		{"short", "5 (x) S 4 1 1", "x", 4, 0, 0, false},
		{"no paren", "5 x S 4", "", 0, 0, 0, false},
		{"reversed", "5 )x( S 4", "", 0, 0, 0, false},
		{"bad ppid", strings.Replace(fakeStat(5, "x", 4, 9), " 4 ", " -4 ", 1), "x", 0, 9, 1, false},
		{"huge start", strings.Replace(fakeStat(5, "x", 4, 9), " 9 ", " 99999999999999999999 ", 1), "x", 4, 0, 1, false},
		{"empty", "", "", 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comm, ppid, start, threads, ok := procParseStat([]byte(tt.stat))
			if string(comm) != tt.comm || ppid != tt.ppid || start != tt.start || threads != tt.threads || ok != tt.ok {
				t.Errorf("procParseStat = %q, %d, %d, %d, %v; want %q, %d, %d, %d, %v",
					comm, ppid, start, threads, ok, tt.comm, tt.ppid, tt.start, tt.threads, tt.ok)
			}
		})
	}
}

func FuzzProcParse(f *testing.F) {
	f.Add([]byte(fakeStat(42, "a) (b", 7, 99)))
	f.Add([]byte(fakeStatus))
	f.Add([]byte("mnt:[4026531841]"))
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(b)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		comm, _, _, _, ok := procParseStat(b)
		if ok && len(comm) > len(b) {
			t.Errorf("comm %q longer than its input", comm)
		}
		procParseIDs(b, "Uid:")
		procParseNS(b)
	})
}

func BenchmarkProcReaderRead(b *testing.B) {
	p := NewProcReader("")
	pid := int32(os.Getpid())
	var rec formats.ProcRecord
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Read(pid, formats.ReasonExec, &rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProcReaderSnapshot(b *testing.B) {
	p := NewProcReader("")
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Snapshot(func(*formats.ProcRecord) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// TestProcReaderReadFork checks that a fork read holds what the analysis
// needs of a fork, and only that.
func TestProcReaderReadFork(t *testing.T) {
	var full, fork formats.ProcRecord
	p := NewProcReader("")
	readSelf(t, p, &full)
	if err := p.Read(int32(os.Getpid()), formats.ReasonFork, &fork); err != nil {
		t.Fatal(err)
	}
	if fork.Kind != formats.ReasonFork || fork.PPID != full.PPID || fork.StartTicks != full.StartTicks || fork.UIDs != full.UIDs ||
		fork.GIDs != full.GIDs || fork.Comm != full.Comm || fork.Cgroup != full.Cgroup || fork.Cgroup == "" {
		t.Errorf("fork read %+v\nfull read %+v", fork, full)
	}
	if fork.Exe != "" || fork.Cwd != "" || fork.Root != "" || len(fork.Cmdline) != 0 || len(fork.TIDs) != 0 || len(fork.Namespaces) != 0 {
		t.Errorf("fork read holds more than stat, status and cgroup: %+v", fork)
	}
}
