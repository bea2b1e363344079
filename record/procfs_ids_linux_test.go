package record

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"proctrail/formats"
	"proctrail/internal/testenv"
)

func init() { workloads["ids"] = idsWorkload }

// idsWorkload takes distinct real, effective, saved (and so filesystem)
// ids, says "ready" and waits for stdin to close.
func idsWorkload() int {
	if err := syscall.Setresgid(11, 12, 13); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := syscall.Setresuid(1, 2, 3); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestProcReaderPidfdIDs checks that the ids read with PIDFD_GET_INFO are
// those of status, in the same order, for a process whose real, effective,
// saved and filesystem ids differ.
func TestProcReaderPidfdIDs(t *testing.T) {
	testenv.NeedRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "PROCTRAIL_TEST_WORKLOAD=ids")
	cmd.Stderr = os.Stderr
	startReady(t, cmd)
	pid := int32(cmd.Process.Pid)
	wantUIDs, wantGIDs := [4]uint32{1, 2, 3, 2}, [4]uint32{11, 12, 13, 12}
	for _, kind := range []formats.ProcReason{formats.ReasonFork, formats.ReasonExec} {
		for _, pidfd := range []bool{true, false} {
			p := NewProcReader("")
			if !p.pidfd {
				t.Fatal("the reader of /proc does not use pidfds")
			}
			p.pidfd = pidfd
			var rec formats.ProcRecord
			if err := p.Read(pid, kind, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.UIDs != wantUIDs || rec.GIDs != wantGIDs {
				t.Errorf("%v read, pidfd %v: UIDs %v GIDs %v, want %v %v", kind, pidfd, rec.UIDs, rec.GIDs, wantUIDs, wantGIDs)
			}
			if pidfd && !p.pidfd {
				t.Logf("this kernel has no PIDFD_GET_INFO (Linux 6.13): the ids came from status")
			}
		}
	}
}

// startReady starts cmd, which says "ready" on stdout and then waits for
// its stdin to close: at the end of the test.
func startReady(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait() // its status tells nothing: sh's read fails at the end of input
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
}

// TestProcReaderOneThread checks the task list of a process of one thread,
// which is taken from stat's thread count: the pid, as the task directory
// lists it.
func TestProcReaderOneThread(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	pid := int32(cmd.Process.Pid)
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(int(pid)) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	var rec formats.ProcRecord
	if err := NewProcReader("").Read(pid, formats.ReasonExec, &rec); err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != strconv.Itoa(int(pid)) || !slices.Equal(rec.TIDs, []int32{pid}) {
		t.Errorf("TIDs = %v, task directory %v; want both [%d]", rec.TIDs, ents, pid)
	}
}

// BenchmarkProcReaderReadChild reads a process of one thread the way the
// recorder does after a fork and after an exec.
func BenchmarkProcReaderReadChild(b *testing.B) {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	pid := int32(cmd.Process.Pid)
	for _, kind := range []formats.ProcReason{formats.ReasonFork, formats.ReasonExec} {
		b.Run(kind.String(), func(b *testing.B) {
			p := NewProcReader("")
			var rec formats.ProcRecord
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Read(pid, kind, &rec); err != nil || rec.Gone {
					b.Fatal(err, rec.Gone)
				}
			}
		})
	}
}

// BenchmarkProcReaderReadFresh reads processes never read before, as the
// recorder reads each new process once after its fork and once after its
// exec: the kernel makes a dentry and an inode for each file looked up
// for the first time, which BenchmarkProcReaderReadChild (one process
// read again and again) does not pay. "ns" is the ten ns/* readlinks of
// an exec's read alone. The children are started outside the timer, in
// rounds of 200 sleeping processes.
func BenchmarkProcReaderReadFresh(b *testing.B) {
	read := map[string]func(p *ProcReader, pid int32, rec *formats.ProcRecord){
		"fork": func(p *ProcReader, pid int32, rec *formats.ProcRecord) { p.Read(pid, formats.ReasonFork, rec) },
		"exec": func(p *ProcReader, pid int32, rec *formats.ProcRecord) { p.Read(pid, formats.ReasonExec, rec) },
		"ns": func(p *ProcReader, pid int32, rec *formats.ProcRecord) {
			dir, _, err := p.openPID(pid)
			if err != nil {
				b.Fatal(err)
			}
			var link [64]byte
			for _, ns := range procNamespaces {
				procReadlinkat(dir, ns.path, link[:], p.raw)
			}
			syscall.Close(dir)
		},
	}
	for _, name := range []string{"fork", "exec", "ns"} {
		b.Run(name, func(b *testing.B) {
			p := NewProcReader("")
			var rec formats.ProcRecord
			var pids []int32
			var cmds []*exec.Cmd
			defer func() {
				for _, c := range cmds {
					c.Process.Kill()
					c.Wait()
				}
			}()
			for b.Loop() {
				if len(pids) == 0 {
					b.StopTimer()
					for _, c := range cmds {
						c.Process.Kill()
						c.Wait()
					}
					cmds = cmds[:0]
					for range 200 {
						c := exec.Command("sleep", "600")
						if err := c.Start(); err != nil {
							b.Fatal(err)
						}
						cmds = append(cmds, c)
						pids = append(pids, int32(c.Process.Pid))
					}
					b.StartTimer()
				}
				read[name](p, pids[0], &rec)
				pids = pids[1:]
			}
		})
	}
}
