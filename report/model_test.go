package report

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Models that the tests build in Go: a long fork chain, and a large capture
// shaped like a real one.

// chainModel is a fork chain depth processes deep, nested as the analyzer
// nests children.
func chainModel(depth int) []byte {
	var b strings.Builder
	b.WriteString(`{"schema":1,"capture":{"files":[],"host":"deep","kernel":"6.1","start":"2024-01-01T00:00:00.000000000Z","end":"2024-01-01T00:01:00.000000000Z","sources":{"connector":{"messages":1,"lost":0},"audit":{"messages":0,"events":0,"lost":0},"procfs":{"records":0}},"unreadable_bytes":0},"containers":[],"processes":[`)
	for i := range depth {
		fmt.Fprintf(&b, `{"pid":%d,"ppid":%d,"start":"2024-01-01T00:00:%02d.%09dZ","end":null,"exit_code":null,"signal":null,"uid":0,"comm":"sh","exe":"/bin/sh","argv":["sh","-c","again"],"cwd":"/","before_capture":false,"execs":[],"threads":[],"files":[],"container":null,"children":[`,
			1000+i, 999+i, i/1000, (i%1000)*1000000)
	}
	for range depth {
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

type genExec struct {
	Time string   `json:"time"`
	Exe  string   `json:"exe"`
	Argv []string `json:"argv"`
	Cwd  string   `json:"cwd"`
}

type genThread struct {
	TID   int     `json:"tid"`
	Start string  `json:"start"`
	End   *string `json:"end"`
}

type genFile struct {
	Path  string  `json:"path"`
	Op    string  `json:"op"`
	Mode  string  `json:"mode,omitempty"`
	Open  string  `json:"open"`
	Close *string `json:"close"`
	To    string  `json:"to,omitempty"`
}

type genProc struct {
	PID           int         `json:"pid"`
	PPID          int         `json:"ppid"`
	Start         string      `json:"start"`
	End           *string     `json:"end"`
	ExitCode      *int        `json:"exit_code"`
	Signal        *int        `json:"signal"`
	UID           int         `json:"uid"`
	Comm          string      `json:"comm"`
	Exe           string      `json:"exe"`
	Argv          []string    `json:"argv"`
	Cwd           string      `json:"cwd"`
	BeforeCapture bool        `json:"before_capture"`
	Execs         []genExec   `json:"execs"`
	Threads       []genThread `json:"threads"`
	Files         []genFile   `json:"files"`
	Container     *string     `json:"container"`
	Children      []*genProc  `json:"children"`
}

type genContainer struct {
	ID        string `json:"id"`
	Runtime   string `json:"runtime"`
	Rootfs    string `json:"rootfs"`
	Processes int    `json:"processes"`
}

// bigModel builds a capture of n processes: systemd with its daemons alive
// from before the capture, a parallel build of many short compiler runs, a
// container with a busy workload, and a deep recursive script. It is the
// same for the same n.
func bigModel(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2024, 5, 14, 9, 0, 0, 0, time.UTC)
	span := 120 * time.Second
	ts := func(d time.Duration) string { return base.Add(d).Format("2006-01-02T15:04:05.000000000Z") }
	tp := func(d time.Duration) *string { s := ts(d); return &s }
	ip := func(v int) *int { return &v }
	pid := 1
	total := 0
	mk := func(parent *genProc, start, life time.Duration, comm string, argv []string, ct *string) *genProc {
		pid++
		total++
		p := &genProc{PID: pid, Start: ts(start), UID: 1000, Comm: comm, Exe: "/usr/bin/" + comm,
			Argv: argv, Cwd: "/home/ana/src/app", Container: ct,
			Execs:   []genExec{{ts(start + 50*time.Microsecond), "/usr/bin/" + comm, argv, "/home/ana/src/app"}},
			Threads: []genThread{}, Files: []genFile{}, Children: []*genProc{}}
		if parent != nil {
			p.PPID = parent.PID
			parent.Children = append(parent.Children, p)
		}
		if life > 0 && start+life < span {
			p.End = tp(start + life)
			switch r := rng.IntN(40); {
			case r == 0:
				p.Signal = ip(9)
			case r < 3:
				p.ExitCode = ip(1 + r)
			default:
				p.ExitCode = ip(0)
			}
		}
		p.Threads = append(p.Threads, genThread{p.PID, p.Start, p.End})
		for k := range rng.IntN(3) {
			pid++
			e := start + life/2
			p.Threads = append(p.Threads, genThread{pid, ts(start + time.Duration(k+1)*time.Millisecond), tp(e)})
		}
		for k := range rng.IntN(5) {
			o := start + time.Duration(k)*life/8
			p.Files = append(p.Files, genFile{Path: fmt.Sprintf("/home/ana/src/app/src/mod%03d/file%d.c", rng.IntN(400), k),
				Op: []string{"open", "open", "create", "unlink"}[rng.IntN(4)], Mode: "r", Open: ts(o), Close: tp(o + life/16)})
		}
		return p
	}
	systemd := mk(nil, -48*time.Hour, 0, "systemd", []string{"/sbin/init", "splash"}, nil)
	systemd.PID, pid = 1, 1
	systemd.BeforeCapture = true
	roots := []*genProc{systemd}
	daemons := []*genProc{}
	for i := range 250 {
		d := mk(systemd, -47*time.Hour+time.Duration(i)*time.Minute, 0, fmt.Sprintf("daemon%d", i), []string{fmt.Sprintf("/usr/sbin/daemon%d", i), "--foreground"}, nil)
		d.BeforeCapture = true
		daemons = append(daemons, d)
	}
	ctID := "3f2a9c41d7e8b0a5c6d2e1f4a3b5c7d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5"
	shim := mk(daemons[3], 5*time.Second, 0, "containerd-shim", []string{"containerd-shim-runc-v2", "-id", ctID}, nil)
	cinit := mk(shim, 6*time.Second, 0, "nginx", []string{"nginx", "-g", "daemon off;"}, &ctID)
	for i := 0; i < 800; i++ {
		at := 6*time.Second + time.Duration(i)*100*time.Millisecond
		w := mk(cinit, at, time.Duration(50+rng.IntN(2000))*time.Millisecond, "sh", []string{"sh", "-c", fmt.Sprintf("handler %d", i)}, &ctID)
		if i%4 == 0 {
			mk(w, at+time.Millisecond, 20*time.Millisecond, "curl", []string{"curl", "-s", "http-backend:8080/health"}, &ctID)
		}
	}
	sshd := daemons[0]
	bash := mk(sshd, -2*time.Hour, 0, "bash", []string{"-bash"}, nil)
	bash.BeforeCapture = true
	mk(bash, time.Second, 100*time.Second, "sleep", []string{"sleep", "100"}, nil)
	chain := mk(bash, 2*time.Second, 3*time.Second, "recurse.sh", []string{"sh", "recurse.sh", "300"}, nil)
	for i := range 300 {
		chain = mk(chain, 2*time.Second+time.Duration(i)*5*time.Millisecond, 3*time.Second-time.Duration(i)*5*time.Millisecond, "recurse.sh", []string{"sh", "recurse.sh", fmt.Sprint(299 - i)}, nil)
	}
	build := mk(bash, 3*time.Second, 110*time.Second, "make", []string{"make", "-j8", "all"}, nil)
	at := 3 * time.Second
	for total < n {
		at += time.Duration(rng.IntN(40)) * time.Millisecond
		unit := fmt.Sprintf("src/mod%03d/file%d.c", rng.IntN(400), rng.IntN(20))
		obj := strings.TrimSuffix(unit, ".c") + ".o"
		life := time.Duration(80+rng.IntN(900)) * time.Millisecond
		sh := mk(build, at, life, "sh", []string{"/bin/sh", "-c", "cc -O2 -c " + unit + " -o " + obj}, nil)
		cc := mk(sh, at+time.Millisecond, life-2*time.Millisecond, "cc", []string{"cc", "-O2", "-c", unit, "-o", obj}, nil)
		mk(cc, at+2*time.Millisecond, life*7/10, "cc1", []string{"/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "-quiet", unit, "-O2"}, nil)
		mk(cc, at+life*3/4, life/5, "as", []string{"as", "--64", "-o", obj}, nil)
	}
	doc := map[string]any{
		"schema": 1,
		"capture": map[string]any{
			"files": []string{"big.zst"}, "host": "ci-runner-17", "kernel": "6.1.0-18-amd64",
			"start": ts(0), "end": ts(span),
			"sources": map[string]any{
				"connector": map[string]any{"messages": total * 4, "lost": 0},
				"audit":     map[string]any{"messages": total * 30, "events": total * 9, "lost": 0, "gaps": 0},
				"procfs":    map[string]any{"records": total * 2},
			},
			"unreadable_bytes": 0,
		},
		"containers": []genContainer{{ctID, "docker", "/var/lib/docker/overlay2/9d1c0e7a/merged", 1001}},
		"processes":  roots,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

// countProcs counts the processes of a model and lists their pids,
// depth-first.
func countProcs(t testing.TB, model []byte) []int {
	t.Helper()
	var doc struct {
		Processes []*genProc `json:"processes"`
	}
	if err := json.Unmarshal(model, &doc); err != nil {
		t.Fatal(err)
	}
	var pids []int
	var stack []*genProc
	push := func(ps []*genProc) {
		for i := len(ps) - 1; i >= 0; i-- {
			stack = append(stack, ps[i])
		}
	}
	push(doc.Processes)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		pids = append(pids, p.PID)
		push(p.Children)
	}
	return pids
}

func TestBigModel(t *testing.T) {
	m := bigModel(10000)
	n := len(countProcs(t, m))
	if n < 10000 || n > 10010 {
		t.Errorf("bigModel(10000) has %d processes", n)
	}
	t.Logf("model: %d processes, %d bytes", n, len(m))
}
