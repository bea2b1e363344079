package record

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// TestProcReaderNamespacesPidfd checks that the namespaces read from a
// pidfd (PIDFD_GET_*_NAMESPACE) are those of the ns/* links, for the test
// itself, a child, and (as root) a process that has unshared every kind
// of namespace, whose pid_for_children and time_for_children then differ
// from its pid and time.
func TestProcReaderNamespacesPidfd(t *testing.T) {
	pids := []int32{int32(os.Getpid())}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sleep.Process.Kill()
		sleep.Wait()
	})
	pids = append(pids, int32(sleep.Process.Pid))
	if os.Geteuid() == 0 || testenv.CI() {
		testenv.NeedRoot(t)
		unshare := testenv.NeedTool(t, "unshare")
		// unshare forks its child once it has unshared them all, and
		// the child says so.
		cmd := exec.Command(unshare, "--user", "--map-root-user", "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--time", "--fork",
			"sh", "-c", "echo ready; exec cat")
		cmd.Stderr = os.Stderr
		startReady(t, cmd)
		pids = append(pids, int32(cmd.Process.Pid))
	}
	var self formats.ProcRecord
	for i, pid := range pids {
		var byLink, byPidfd formats.ProcRecord
		links := NewProcReader("")
		links.nsPidfd = false
		if err := links.Read(pid, formats.ReasonExec, &byLink); err != nil || byLink.Gone {
			t.Fatal(pid, err, byLink.Gone)
		}
		p := NewProcReader("")
		if err := p.Read(pid, formats.ReasonExec, &byPidfd); err != nil || byPidfd.Gone {
			t.Fatal(pid, err, byPidfd.Gone)
		}
		if !p.nsPidfd {
			if kernelAtLeast(kernelRelease(), 6, 13) {
				t.Fatalf("Linux %s: the namespaces were not read from the pidfd", kernelRelease())
			}
			t.Skipf("Linux %s has no PIDFD_GET_*_NAMESPACE (6.11) or PIDFD_GET_INFO (6.13)", kernelRelease())
		}
		if len(byLink.Namespaces) != len(procNamespaces) || !slices.Equal(byPidfd.Namespaces, byLink.Namespaces) {
			t.Errorf("pid %d: namespaces from the pidfd %v, from the links %v", pid, byPidfd.Namespaces, byLink.Namespaces)
		}
		if i == 0 {
			self = byLink
			continue
		}
		if i == 2 {
			// Only the pid and time namespaces are the test's: unshare
			// gives those to its child.
			for j, ns := range byLink.Namespaces {
				if same := ns.Inode == self.Namespaces[j].Inode; same != (ns.Name == "pid" || ns.Name == "time") {
					t.Errorf("the unshared process's %s namespace %d, the test's %d", ns.Name, ns.Inode, self.Namespaces[j].Inode)
				}
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
// read again and again) does not pay. The namespaces of an exec's read
// alone: the ten ns/* readlinks ("ns"), the pidfd's ioctls as the
// recorder makes them ("ns-pidfd"), and those without the descriptors of the
// recorder's own namespaces that keep their nsfs dentries alive
// ("ns-pidfd-unpinned"). The children are started outside the timer, in
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
		"ns-pidfd": func(p *ProcReader, pid int32, rec *formats.ProcRecord) {
			pidfd := p.openPidfd(pid)
			rec.Namespaces = p.readNamespaces(-1, pidfd, rec.Namespaces[:0])
			syscall.Close(pidfd)
		},
	}
	read["ns-pidfd-unpinned"] = read["ns-pidfd"]
	for _, name := range []string{"fork", "exec", "ns", "ns-pidfd", "ns-pidfd-unpinned"} {
		b.Run(name, func(b *testing.B) {
			p := NewProcReader("")
			if name == "ns-pidfd-unpinned" {
				unpinOwnNamespaces()
				defer pinOwnNamespaces()
			}
			if strings.HasPrefix(name, "ns-pidfd") && !p.nsPidfd {
				b.Skip("no PIDFD_GET_*_NAMESPACE")
			}
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

// unpinOwnNamespaces closes the descriptors pinOwnNamespaces opened, and
// lets it open them again.
func unpinOwnNamespaces() {
	for _, fd := range ownNamespaces.fds {
		syscall.Close(fd)
	}
	ownNamespaces.fds = nil
	ownNamespaces.once = sync.Once{}
}
