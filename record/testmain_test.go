package record

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain runs the workload helpers the integration tests start, and fails
// the package when tests leak file descriptors or goroutines: the recorder
// opens sockets and must close them on every path.
func TestMain(m *testing.M) {
	if h := os.Getenv("PROCTRAIL_TEST_WORKLOAD"); h != "" {
		os.Exit(runWorkload(h))
	}
	// The runtime's netpoller opens its epoll and eventfd descriptors on
	// first use and keeps them: open them before counting.
	if r, w, err := os.Pipe(); err == nil {
		r.SetReadDeadline(time.Now())
		r.Close()
		w.Close()
	}
	fds := openFDs()
	goroutines := runtime.NumGoroutine()
	code := m.Run()
	// The fuzzing engine keeps goroutines and pipes of its own, and the
	// testing package leaves the files of -cpuprofile and -trace open (the
	// benchmarks' usage profiles them, and so does scripts/pgo).
	fuzzing := flagSet("test.fuzz")
	profiling := flagSet("test.cpuprofile") || flagSet("test.trace")
	if code == 0 && !fuzzing {
		// Let exiting goroutines finish.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && (runtime.NumGoroutine() > goroutines || !profiling && openFDs() > fds) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "leaked goroutines: %d before, %d after\n%s\n", goroutines, n, buf[:runtime.Stack(buf, true)])
			code = 1
		}
		if n := openFDs(); n > fds && !profiling {
			fmt.Fprintf(os.Stderr, "leaked file descriptors: %d before, %d after\n", fds, n)
			code = 1
		}
	}
	os.Exit(code)
}

// flagSet reports whether the testing flag name is set to a value.
func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != ""
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// workloads are the programs runWorkload runs besides its own, registered
// by platform-specific test files.
var workloads = map[string]func() int{}

// runWorkload is a program the integration tests record: "threads" starts
// three OS threads that end at different times, then exits.
func runWorkload(name string) int {
	switch name {
	case "threads":
		done := make(chan struct{})
		for i := range 3 {
			go func() {
				runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
				time.Sleep(time.Duration(20*(i+1)) * time.Millisecond)
				done <- struct{}{}
			}()
		}
		for range 3 {
			<-done
		}
		return 0
	}
	if w := workloads[name]; w != nil {
		return w()
	}
	fmt.Fprintf(os.Stderr, "unknown workload %q\n", name)
	return 2
}
