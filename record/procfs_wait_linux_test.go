package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"proctrail/formats"
)

func init() { workloads["waitp"] = waitWorkload }

// waitFIFOs are the files of the fake procfs of TestProcReaderWaitGivesUpP
// that are FIFOs, in the order an exec's Read opens them, with what is
// written to each. A fork's Read opens cgroup alone.
var waitFIFOs = []struct{ name, content string }{
	{"cmdline", "sh\x00-c\x00true\x00"},
	{"cgroup", waitCgroup},
}

const waitCgroup = "0::/waited\n"

// waitWorkload reads the fake procfs at $PROCTRAIL_TEST_ROOT for an exec
// (for a fork when $PROCTRAIL_TEST_KIND is "fork") on one P, with
// the reader's raw system calls on as for the real /proc, while cmdline and
// cgroup are FIFOs that nobody writes to yet: opening one waits for a
// writer. Meanwhile it collects garbage and, once the reader waits at a
// FIFO, writes the FIFO's content. All of that runs only if the read that
// waits gave up the one P; a raw system call would hold it, and the
// process would hang. It exits 0 when the record holds what was written.
func waitWorkload() int {
	runtime.GOMAXPROCS(1)
	root := os.Getenv("PROCTRAIL_TEST_ROOT")
	p := NewProcReader(root)
	// As for /proc: only the calls that may wait go through the scheduler;
	// cgroup among them, as before Linux 6.8 (rawCgroup stays false).
	p.raw = true
	kind, fifos := formats.ReasonExec, waitFIFOs
	if os.Getenv("PROCTRAIL_TEST_KIND") == "fork" {
		kind, fifos = formats.ReasonFork, waitFIFOs[1:]
	}
	type result struct {
		rec formats.ProcRecord
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = p.Read(42, kind, &r.rec)
		done <- r
	}()
	for _, f := range fifos {
		path := filepath.Join(root, "42", f.name)
		var fd int
		for {
			runtime.GC() // a collection stops the world: every P must come to it
			var err error
			// Opening for writing without waiting fails with ENXIO until
			// a reader has the FIFO open, which the ProcReader has once
			// it waits in open(2) for a writer.
			fd, err = unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.ENXIO) {
				fmt.Fprintln(os.Stderr, "waitp:", err)
				return 1
			}
			time.Sleep(time.Millisecond)
		}
		_, err := unix.Write(fd, []byte(f.content))
		unix.Close(fd)
		if err != nil {
			fmt.Fprintln(os.Stderr, "waitp:", err)
			return 1
		}
	}
	r := <-done
	wantArgs := []string{"sh", "-c", "true"}
	if kind == formats.ReasonFork {
		wantArgs = nil
	}
	if r.err != nil || r.rec.Gone || !slices.Equal(r.rec.Cmdline, wantArgs) || r.rec.Cgroup != waitCgroup {
		fmt.Fprintf(os.Stderr, "waitp: read %+v, %v\n", r.rec, r.err)
		return 1
	}
	return 0
}

// TestProcReaderWaitGivesUpP checks that the procfs reads that can wait
// (cmdline behind the target's mmap lock, cgroup behind the cgroup_mutex
// before Linux 6.8) are not raw system calls: the recorder runs on one P
// (cmd/proctrail's recordProcs), and a raw call that waits would stop every
// goroutine, and the garbage collector for good. The reader is in a child
// process, which hangs if it is wrong; the test gives it a minute.
func TestProcReaderWaitGivesUpP(t *testing.T) {
	root := fakeProc(t, map[string]string{
		"42/stat":   fakeStat(42, "sh", 1, 100),
		"42/status": fakeStatus,
	})
	for _, f := range waitFIFOs {
		if err := unix.Mkfifo(filepath.Join(root, "42", f.name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"fork", "exec"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, self, "-test.run=^$")
		cmd.Env = append(os.Environ(), "PROCTRAIL_TEST_WORKLOAD=waitp", "PROCTRAIL_TEST_ROOT="+root, "PROCTRAIL_TEST_KIND="+kind)
		out, err := cmd.CombinedOutput()
		hung := ctx.Err() != nil
		cancel()
		if hung {
			t.Fatalf("%s: the reader hung at a FIFO: a read that waits held the only P\n%s", kind, out)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", kind, err, out)
		}
	}
}

// TestProcReaderRaw checks which readers make raw system calls: only one of
// the real /proc, whose files are all procfs's.
func TestProcReaderRaw(t *testing.T) {
	if p := NewProcReader(""); !p.raw {
		t.Error(`NewProcReader("") makes no raw system call`)
	}
	if p := NewProcReader(t.TempDir()); p.raw {
		t.Error("a reader of another root makes raw system calls")
	}
}

func TestKernelAtLeast(t *testing.T) {
	for _, c := range []struct {
		release string
		want    bool
	}{
		{"6.18.44-fc-v1300", true},
		{"6.8.0-45-generic", true},
		{"6.8", true},
		{"7.0.1", true},
		{"6.7.12", false},
		{"6.10-rc1", true},
		{"5.14.0-362.el9.x86_64", false},
		{"4.19.0", false},
		{"", false},
		{"six.eight", false},
		{"6", false},
		{"6.", false},
	} {
		if got := kernelAtLeast(c.release, 6, 8); got != c.want {
			t.Errorf("kernelAtLeast(%q, 6, 8) = %v, want %v", c.release, got, c.want)
		}
	}
	if p := NewProcReader(""); p.rawCgroup != kernelAtLeast(kernelRelease(), 6, 8) {
		t.Errorf("the reader of /proc on %s reads cgroup raw: %v", kernelRelease(), p.rawCgroup)
	}
	if p := NewProcReader(t.TempDir()); p.rawCgroup {
		t.Error("a reader of another root reads cgroup raw")
	}
}
