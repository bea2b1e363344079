package analyze_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/analyze"
	"proctrail/record"
	"proctrail/replay"
)

// TestIntegrationLiveNet records testdata/scenarios/net.c run under
// strace (-e trace=network) and checks the analysis against strace's
// account of the same run: every socket, bind, listen, connect and
// accept, in order, with its family, address, port or path, and errno;
// sendto and sendmsg when they carry an inet or inet6 address (the
// rules' filter: the 50 send()s on a connected socket and the netlink
// request are not there).
func TestIntegrationLiveNet(t *testing.T) {
	needRoot(t)
	needTool(t, "strace")
	bin := buildC(t, "net")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	out := filepath.Join(t.TempDir(), "strace.out")
	capture := filepath.Join(t.TempDir(), "trace.zst")
	res, err := record.Record(context.Background(), &record.Config{Output: capture, Audit: true, Stderr: os.Stderr,
		Command: []string{"strace", "-f", "-qq", "-e", "trace=network", "-o", out, bin, dir, "50"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	build := func(addr string) *analyze.Model {
		s, err := replay.Open([]string{capture}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		m, err := analyze.Build(s, &analyze.Options{Cmd: true, Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := build("")
	p := find(m, func(p *analyze.Process) bool { return p.Exe == bin })
	if p == nil {
		t.Fatalf("no process ran %s", bin)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := straceNet(string(text))
	var got []string
	for _, e := range p.Net {
		ep := analyze.NetEndpoint(&e)
		if e.Op == "listen" {
			ep = "" // strace shows listen's fd, not its address
		}
		got = append(got, strings.TrimSpace(strings.Join([]string{e.Op, e.Family, ep, e.Error}, " ")))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("network entries against strace (-strace +analyze):\n%s", diff)
	}
	if len(want) < 30 {
		t.Errorf("strace saw %d calls: the scenario did not run whole", len(want))
	}
	// Selected by address: the scenario and its parent, strace.
	port := 0
	for _, e := range p.Net {
		if e.Op == "connect" && e.Family == "inet6" {
			port = e.Port
		}
	}
	for _, sel := range []string{"::1", "127.0.0.0/8", ":" + strconv.Itoa(port), filepath.Join(dir, "*"), "@proctrail-*"} {
		if got := len(all(build(sel))); got != 2 {
			t.Errorf("Addr %s keeps %d processes, want the scenario and strace", sel, got)
		}
	}
	if got := len(all(build("192.0.2.0/24"))); got != 0 {
		t.Errorf("Addr 192.0.2.0/24 keeps %d processes, want none", got)
	}
}

var (
	straceCall = regexp.MustCompile(`^\d+\s+(\w+)\((.*)\)\s+= (-?\d+)(?: (E[A-Z0-9]+))?`)
	straceFam  = regexp.MustCompile(`sa_family=AF_(\w+)|^AF_(\w+)`)
	stracePort = regexp.MustCompile(`sin6?_port=htons\((\d+)\)`)
	straceV4   = regexp.MustCompile(`sin_addr=inet_addr\("([^"]+)"\)`)
	straceV6   = regexp.MustCompile(`inet_pton\(AF_INET6, "([^"]+)"`)
	straceUnix = regexp.MustCompile(`sun_path=(@?)"([^"]*)"`)
	straceNl   = regexp.MustCompile(`nl_pid=(\d+)`)
)

// straceNet turns strace's network calls into analysis lines: "OP FAMILY
// [ENDPOINT] [ERRNO]", as the rules record them.
func straceNet(text string) []string {
	var out []string
	for line := range strings.Lines(text) {
		m := straceCall.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		op, args, errno := m[1], m[2], m[4]
		// The address argument: after the fd, up to its closing brace.
		_, addr, _ := strings.Cut(args, ", ")
		if op == "sendmsg" {
			addr, _, _ = strings.Cut(strings.TrimPrefix(addr, "{msg_name="), ", msg_namelen")
		}
		if op == "sendto" {
			// fd, buf, len, flags, then the address or NULL.
			addr = ""
			if i := strings.Index(args, "{sa_family"); i >= 0 {
				addr = args[i:]
			}
		}
		fam, ep := straceSockaddr(addr)
		if op == "socket" {
			fam = strings.ToLower(strings.TrimPrefix(strings.SplitN(args, ",", 2)[0], "AF_"))
		}
		fam = map[string]string{"inet": "inet", "inet6": "inet6", "unix": "unix", "netlink": "netlink"}[fam]
		switch op {
		case "accept4":
			op = "accept"
		case "sendto", "sendmsg":
			if fam != "inet" && fam != "inet6" {
				continue // no address, or one the rules leave out
			}
		case "socket", "bind", "listen", "connect", "accept":
		default:
			continue
		}
		if op == "listen" || (op == "accept" && fam == "") {
			// listen(fd) and accept(fd, NULL, NULL): the family is the
			// socket's, which strace does not show here; the scenario
			// bound it just before.
			fam = lastBind(out)
		}
		out = append(out, strings.TrimSpace(strings.Join([]string{op, fam, ep, errno}, " ")))
	}
	return out
}

// straceSockaddr is the family of a sockaddr strace printed, and its
// address as analyze.NetEndpoint writes it.
func straceSockaddr(addr string) (fam, ep string) {
	if f := straceFam.FindStringSubmatch(addr); f != nil {
		fam = strings.ToLower(f[1] + f[2])
	}
	switch {
	case straceV4.MatchString(addr):
		ep = straceV4.FindStringSubmatch(addr)[1] + ":" + stracePort.FindStringSubmatch(addr)[1]
	case straceV6.MatchString(addr):
		ep = "[" + straceV6.FindStringSubmatch(addr)[1] + "]:" + stracePort.FindStringSubmatch(addr)[1]
	case straceUnix.MatchString(addr):
		u := straceUnix.FindStringSubmatch(addr)
		ep = u[1] + u[2]
	case straceNl.MatchString(addr):
		if n := straceNl.FindStringSubmatch(addr)[1]; n != "0" {
			ep = "port " + n
		}
	}
	return fam, ep
}

// lastBind is the family of the last bind line.
func lastBind(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); f[0] == "bind" {
			return f[1]
		}
	}
	return ""
}

// TestIntegrationLiveSearches records execvp's searches across $PATH (env
// runs its command with execvp): one that finds true in the third
// directory, one that finds its command nowhere. The tree folds each into
// one line, and the JSON keeps every attempt, marked.
func TestIntegrationLiveSearches(t *testing.T) {
	needRoot(t)
	m := recordAndAnalyze(t, "sh", "-c", "env PATH=/nonexistent-a:/nonexistent-b:/usr/bin true; env PATH=/nonexistent-a:/usr/bin frobnicate-nowhere; exit 0")
	var txt strings.Builder
	if err := analyze.WriteText(&txt, m, &analyze.TextOptions{Files: true}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"exec /usr/bin/true (tried 3 places)\n", "exec frobnicate-nowhere: command not found (tried 2 places)\n"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("tree lacks %q:\n%s", want, txt.String())
		}
	}
	var attempts []string
	for _, p := range all(m) {
		for _, f := range p.Files {
			if f.Op == "exec" && f.Search {
				attempts = append(attempts, f.Path+" "+f.Error)
			}
		}
	}
	want := []string{"/nonexistent-a/true ENOENT", "/nonexistent-b/true ENOENT", "/usr/bin/true ",
		"/nonexistent-a/frobnicate-nowhere ENOENT", "/usr/bin/frobnicate-nowhere ENOENT"}
	if diff := cmp.Diff(want, attempts); diff != "" {
		t.Errorf("exec attempts marked as searches (-want +got):\n%s", diff)
	}
}
