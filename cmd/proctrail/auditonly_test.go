package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The same trees from auditd logs: each test capture is written as an
// auditd log (replay --format audit: the audit records of the same run,
// as auditd writes them) and analyzed again, from audit alone; what the
// live capture says of the processes created during it is the reference.

// gradeProc is what the grading compares of one process.
type gradeProc struct {
	PID           int32                  `json:"pid"`
	PPID          int32                  `json:"ppid"`
	Comm          string                 `json:"comm"`
	BeforeCapture bool                   `json:"before_capture"`
	Execs         []struct{ Exe string } `json:"execs"`
	Threads       []struct{ TID int32 }  `json:"threads"`
	Files         []struct {
		Path, Op, Error string
	} `json:"files"`
	Container *string      `json:"container"`
	Children  []*gradeProc `json:"children"`
}

// facts are a model's facts by kind, each a set of strings.
type facts map[string]map[string]bool

// gradeFacts reads analyze's JSON into facts; only processes that pids
// allows (nil: all) count.
func gradeFacts(t *testing.T, js string, pids map[int32]bool) (facts, map[int32]bool) {
	t.Helper()
	var m struct {
		Processes []*gradeProc `json:"processes"`
	}
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	f := facts{}
	add := func(kind, s string) {
		if f[kind] == nil {
			f[kind] = map[string]bool{}
		}
		f[kind][s] = true
	}
	created := map[int32]bool{}
	var walk func(p *gradeProc)
	walk = func(p *gradeProc) {
		// Kernel threads (kthreadd's children) make no system call:
		// audit never shows them.
		if !p.BeforeCapture && p.PPID != 2 && p.PID != 2 {
			created[p.PID] = true
		}
		if pids == nil && created[p.PID] || pids[p.PID] {
			add("processes", fmt.Sprint(p.PID))
			add("parents", fmt.Sprint(p.PID, "<", p.PPID))
			add("created during the capture", fmt.Sprint(p.PID, p.BeforeCapture))
			for _, x := range p.Execs {
				add("execs", fmt.Sprint(p.PID, " ", x.Exe))
			}
			for _, th := range p.Threads {
				if th.TID != p.PID {
					add("threads", fmt.Sprint(p.PID, "/", th.TID))
				}
			}
			for _, fl := range p.Files {
				add("files", fmt.Sprint(p.PID, " ", fl.Op, " ", fl.Path, " ", fl.Error))
			}
			c := "none"
			if p.Container != nil {
				c = *p.Container
			}
			add("containers", fmt.Sprint(p.PID, " ", c))
		}
		for _, c := range p.Children {
			walk(c)
		}
	}
	for _, p := range m.Processes {
		walk(p)
	}
	return f, created
}

// gradeKinds are the kinds graded, in the table's order.
var gradeKinds = []string{"processes", "parents", "created during the capture", "execs", "threads", "containers", "files"}

// auditOnlyGrade analyzes capture live and from its audit log alone, and
// returns, per kind, the facts of the live analysis and how many of them
// the log's gives, with the misses.
func auditOnlyGrade(t *testing.T, capture string) (live, got, wrong map[string]int, misses map[string][]string) {
	t.Helper()
	code, logText, stderr := runCLI(t, "replay", "--format", "audit", capture)
	if code != 0 {
		t.Fatalf("replay --format audit: exit %d: %s", code, stderr)
	}
	log := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(log, []byte(logText), 0o600); err != nil {
		t.Fatal(err)
	}
	code, liveJSON, stderr := runCLI(t, "analyze", capture)
	if code != 0 {
		t.Fatalf("analyze: exit %d: %s", code, stderr)
	}
	code, logJSON, stderr := runCLI(t, "analyze", log)
	if code != 0 {
		t.Fatalf("analyze of the log: exit %d: %s", code, stderr)
	}
	want, created := gradeFacts(t, liveJSON, nil)
	have, _ := gradeFacts(t, logJSON, created)
	live, got, wrong, misses = map[string]int{}, map[string]int{}, map[string]int{}, map[string][]string{}
	for _, kind := range gradeKinds {
		live[kind] = len(want[kind])
		for s := range have[kind] {
			if !want[kind][s] {
				wrong[kind]++
				misses[kind] = append(misses[kind], "not live: "+s)
			}
		}
		for s := range want[kind] {
			if have[kind][s] {
				got[kind]++
			} else {
				misses[kind] = append(misses[kind], s)
			}
		}
		slices.Sort(misses[kind])
	}
	return live, got, wrong, misses
}

// TestAuditOnlyTrees grades the analysis of each test capture's audit
// log against the capture's own.
func TestAuditOnlyTrees(t *testing.T) {
	captures, err := filepath.Glob("../../testdata/analyze/*/capture.zst")
	if err != nil || len(captures) == 0 {
		t.Fatalf("no captures in testdata/analyze: %v", err)
	}
	totLive, totGot, totWrong := map[string]int{}, map[string]int{}, map[string]int{}
	var table strings.Builder
	fmt.Fprintf(&table, "%-10s", "")
	for _, k := range gradeKinds {
		fmt.Fprintf(&table, " %14.14s", k)
	}
	table.WriteString("\n")
	for _, capture := range captures {
		name := filepath.Base(filepath.Dir(capture))
		live, got, wrong, misses := auditOnlyGrade(t, capture)
		for _, k := range gradeKinds {
			totLive[k] += live[k]
			totGot[k] += got[k]
			totWrong[k] += wrong[k]
		}
		fmt.Fprintf(&table, "%-10s", name)
		for _, k := range gradeKinds {
			cell := fmt.Sprintf("%d/%d", got[k], live[k])
			if wrong[k] > 0 {
				cell += fmt.Sprintf(" +%d", wrong[k])
			}
			fmt.Fprintf(&table, " %14s", cell)
		}
		table.WriteString("\n")
		for _, k := range gradeKinds {
			if len(misses[k]) > 0 {
				t.Logf("%s: %s missed (%d): %s", name, k, len(misses[k]), strings.Join(misses[k][:min(len(misses[k]), 40)], "; "))
			}
		}
	}
	t.Logf("facts of the live analysis the audit log's gives (recovered/live, +facts the live one does not have):\n%s", table.String())

	// What audit alone cannot tell, by design: a process that made no
	// audited call (one killed by SIGKILL before any: fschanges has
	// one); the recorder's own children (it does not audit itself:
	// the command's creation is not seen, "created" +2 a capture);
	// threads made inside a pid namespace (their host tids are not in
	// any record); a process runc put in the container's cgroup before
	// its child's pivot_root.
	for _, c := range []struct {
		kind     string
		recall   float64
		maxWrong int
	}{
		{"processes", 0.99, 0},
		{"parents", 0.99, 0},
		{"execs", 1, 0},
		{"files", 0.995, 0},
		{"containers", 0.97, 2},
		{"threads", 0.75, 0},
		{"created during the capture", 0.85, 2 * len(captures)},
	} {
		r := float64(totGot[c.kind]) / float64(max(totLive[c.kind], 1))
		if r < c.recall || totWrong[c.kind] > c.maxWrong {
			t.Errorf("%s: %d of %d recovered (%.3f, want ≥ %.3f), %d not in the live analysis (want ≤ %d)",
				c.kind, totGot[c.kind], totLive[c.kind], r, c.recall, totWrong[c.kind], c.maxWrong)
		}
	}
}
