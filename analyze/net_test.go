package analyze

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/analyze/internal/spool"
)

func TestParseSockaddr(t *testing.T) {
	const x86 = "c000003e" // AUDIT_ARCH_X86_64: little-endian
	const s390x = "80000016"
	hx := func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }
	tests := []struct {
		name, saddr, arch string
		want              sockAddr
		ok                bool
	}{
		{"inet", "02001F907F0000010000000000000000", x86, sockAddr{family: "inet", addr: "127.0.0.1", port: 8080}, true},
		{"inet big-endian", "00021F90CB0071070000000000000000", s390x, sockAddr{family: "inet", addr: "203.0.113.7", port: 8080}, true},
		{"inet short", "0200", x86, sockAddr{family: "inet"}, true},
		{"inet6", "0A0001BB00000000" + strings.Repeat("00", 15) + "01" + "00000000", x86, sockAddr{family: "inet6", addr: "::1", port: 443}, true},
		{"inet6 scope", "0A00003500000000FE80" + strings.Repeat("00", 13) + "01" + "02000000", x86, sockAddr{family: "inet6", addr: "fe80::1%2", port: 53}, true},
		{"inet6 mapped", "0A00005000000000" + strings.Repeat("00", 10) + "FFFF0A000001" + "00000000", x86, sockAddr{family: "inet6", addr: "::ffff:10.0.0.1", port: 80}, true},
		{"unix", "0100" + hx("/run/x.sock") + "0000000000", x86, sockAddr{family: "unix", path: "/run/x.sock"}, true},
		{"unix relative", "0100" + hx("s"), x86, sockAddr{family: "unix", path: "s"}, true},
		{"unix abstract", "0100" + "00" + hx("abc") + "00", x86, sockAddr{family: "unix", path: "@abc\x00"}, true},
		{"unix unnamed", "0100", x86, sockAddr{family: "unix"}, true},
		{"netlink", "10000000D204000001000000", x86, sockAddr{family: "netlink", port: 1234}, true},
		{"netlink kernel", "100000000000000000000000", x86, sockAddr{family: "netlink"}, true},
		{"packet", "1100", x86, sockAddr{family: "packet"}, true},
		{"unknown family", "FF00", x86, sockAddr{family: "family 255"}, true},
		{"not hex", "XYZ0", x86, sockAddr{}, false},
		{"too short", "02", x86, sockAddr{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseSockaddr("audit(1700000000.000:1): saddr="+tt.saddr, tt.arch)
			if ok != tt.ok || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestProtoName(t *testing.T) {
	tests := []struct {
		f, typ, proto uint64
		want          string
	}{
		{afInet, 1, 0, "tcp"},
		{afInet6, 2 | sockCloexec, 0, "udp"},
		{afInet, 2, 1, "icmp"},
		{afInet, 3, 1, "raw icmp"},
		{afInet, 3, 255, "raw"},
		{afInet, 1, 262, "mptcp"},
		{afInet, 1, 99, "proto 99"},
		{afUnix, 5, 0, "seqpacket"},
		{afNetlink, 3, 9, "audit"},
		{afNetlink, 3, 77, "proto 77"},
		{afPacket, 3, 0x0300, "raw all"},
		{afPacket, 2, 0x0008, "dgram 0x0800"},
	}
	for _, tt := range tests {
		if got := protoName(tt.f, tt.typ, tt.proto); got != tt.want {
			t.Errorf("protoName(%d, %d, %d) = %q, want %q", tt.f, tt.typ, tt.proto, got, tt.want)
		}
	}
}

// sockRec is a SOCKADDR record of an inet address.
func sockRec(saddr string) string { return "SOCKADDR saddr=" + saddr }

const (
	saddrListen = "02001F90000000000000000000000000" // 0.0.0.0:8080
	saddrPeer   = "0200D4317F0000010000000000000000" // 127.0.0.1:54321
	saddrRemote = "020001BBCB0071070000000000000000" // 203.0.113.7:443
	saddrDNS    = "02000035C63364010000000000000000" // 198.51.100.1:53
)

// netScript is a server (pid 10) and its child (11) on the network.
func netScript(t *testing.T) *script {
	s := newScript(t)
	s.at(0).fork(1, 10)
	s.at(1).audit(10, 1, "socket", "a0=2 a1=80001 a2=0 exit=3")
	s.at(2).audit(10, 1, "bind", "a0=3 exit=0", sockRec(saddrListen))
	s.at(3).audit(10, 1, "dup2", "a0=3 a1=7 exit=7")
	s.at(4).audit(10, 1, "listen", "a0=7 a1=80 exit=0")
	s.at(5).audit(10, 1, "accept4", "a0=7 a3=80000 exit=8", sockRec(saddrPeer))
	s.at(6).audit(10, 1, "accept4", "a0=7 exit=-11 success=no")
	s.at(7).audit(10, 1, "socket", "a0=2 a1=1 a2=0 exit=4")
	s.at(8).audit(10, 1, "connect", "a0=4 exit=-115 success=no", sockRec(saddrRemote))
	s.at(9).audit(10, 1, "sendto", "a0=8 exit=10")
	s.at(10).fork(10, 11)
	s.at(11).audit(11, 10, "socket", "a0=2 a1=2 a2=0 exit=5")
	s.at(12).audit(11, 10, "sendto", "a0=5 exit=30", sockRec(saddrDNS))
	s.at(13).audit(11, 10, "sendmsg", "a0=5 exit=30", sockRec(saddrDNS))
	// The inherited listening socket, then the same after an exec that
	// closed it (SOCK_CLOEXEC): unknown.
	s.at(14).audit(11, 10, "listen", "a0=3 exit=0")
	s.at(15).exec(11).audit(11, 10, "execve", "exit=0", pathRec(0, "/bin/sh", "NORMAL"))
	s.at(16).audit(11, 10, "listen", "a0=3 exit=0")
	s.at(17).audit(11, 10, "connect", "a0=6 exit=-2 success=no", cwd("/srv"), "SOCKADDR saddr=0100"+strings.ToUpper(hex.EncodeToString([]byte("run/app.sock\x00"))))
	s.at(18).audit(11, 10, "socket", "a0=a a1=3 a2=3a exit=-1 success=no")
	s.at(19).audit(11, 10, "socket", "a0=10 a1=3 a2=0 exit=6")
	s.at(20).audit(11, 10, "bind", "a0=6 exit=0", "SOCKADDR saddr=100000000000000000000000")
	s.at(30).exit(11, 11, 0, 0, 10).exit(10, 10, 0, 0, 1)
	return s
}

func TestNetEntries(t *testing.T) {
	m := netScript(t).build(nil)
	want10 := []NetEntry{
		{Op: "socket", Family: "inet", Proto: "tcp", Time: ms(1)},
		{Op: "bind", Family: "inet", Proto: "tcp", Addr: "0.0.0.0", Port: 8080, Time: ms(2)},
		{Op: "listen", Family: "inet", Proto: "tcp", Addr: "0.0.0.0", Port: 8080, Time: ms(4)},
		{Op: "accept", Family: "inet", Proto: "tcp", Addr: "127.0.0.1", Port: 54321, Time: ms(5)},
		{Op: "socket", Family: "inet", Proto: "tcp", Time: ms(7)},
		{Op: "connect", Family: "inet", Proto: "tcp", Addr: "203.0.113.7", Port: 443, Time: ms(8), Error: "EINPROGRESS"},
	}
	if diff := cmp.Diff(want10, one(t, m, 10).Net); diff != "" {
		t.Errorf("server's entries (-want +got):\n%s", diff)
	}
	want11 := []NetEntry{
		{Op: "socket", Family: "inet", Proto: "udp", Time: ms(11)},
		{Op: "sendto", Family: "inet", Proto: "udp", Addr: "198.51.100.1", Port: 53, Time: ms(12)},
		{Op: "sendmsg", Family: "inet", Proto: "udp", Addr: "198.51.100.1", Port: 53, Time: ms(13)},
		{Op: "listen", Family: "inet", Proto: "tcp", Addr: "0.0.0.0", Port: 8080, Time: ms(14)},
		{Op: "listen", Time: ms(16)},
		{Op: "connect", Family: "unix", Path: "/srv/run/app.sock", Time: ms(17), Error: "ENOENT"},
		{Op: "socket", Family: "inet6", Proto: "raw icmpv6", Time: ms(18), Error: "EPERM"},
		{Op: "socket", Family: "netlink", Proto: "route", Time: ms(19)},
		{Op: "bind", Family: "netlink", Proto: "route", Time: ms(20)},
	}
	if diff := cmp.Diff(want11, one(t, m, 11).Net); diff != "" {
		t.Errorf("child's entries (-want +got):\n%s", diff)
	}

	// The text tree, with --net.
	var txt bytes.Buffer
	if err := WriteText(&txt, m, &TextOptions{Net: true}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"listen inet tcp 0.0.0.0:8080\n",
		"connect inet tcp 203.0.113.7:443 EINPROGRESS\n",
		"connect unix /srv/run/app.sock ENOENT\n",
		"bind netlink route\n",
		"   └─ 11 ",
	} {
		if !strings.Contains(txt.String(), line) {
			t.Errorf("tree lacks %q:\n%s", line, txt.String())
		}
	}
	var plain bytes.Buffer
	if err := WriteText(&plain, m, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "connect") {
		t.Errorf("tree without Net shows entries:\n%s", plain.String())
	}
}

// TestNetOutputsStream checks that the streamed outputs write what the
// renderers of the Model write, with the entries in the spool's file.
func TestNetOutputsStream(t *testing.T) {
	defer func(s *spool.Sizes) { spoolSizes = s }(spoolSizes)
	spoolSizes = &spool.Sizes{Mem: 64, Read: 64}
	s := netScript(t)
	m := s.build(nil)
	var want, got bytes.Buffer
	if err := WriteJSON(&want, m); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildJSON(&got, s.source(), nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want.Bytes(), got.Bytes()) {
		t.Errorf("BuildJSON differs from WriteJSON(Build):\n%s\n---\n%s", got.Bytes(), want.Bytes())
	}
	type proc struct {
		PID      int              `json:"pid"`
		Net      []map[string]any `json:"net"`
		Children []proc           `json:"children"`
	}
	var doc struct {
		Processes []proc `json:"processes"`
	}
	if err := json.Unmarshal(got.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.String(), `"files": [],
      "container": null,`) || strings.Count(got.String(), `"net": [`) != 2 {
		t.Errorf("JSON: want net after files, for the two processes with entries only:\n%s", got.String())
	}
	srv := doc.Processes[0].Children[0]
	if n := len(srv.Net); srv.PID != 10 || n != 6 {
		t.Fatalf("JSON has %d entries for %d, want 6 for the server", n, srv.PID)
	}
	e := srv.Net[5]
	if e["addr"] != "203.0.113.7" || e["port"] != float64(443) || e["error"] != "EINPROGRESS" || e["proto"] != "tcp" {
		t.Errorf("JSON of the connect: %v", e)
	}
	if _, ok := srv.Net[0]["port"]; ok {
		t.Errorf("socket's entry has a port: %v", srv.Net[0])
	}
	want.Reset()
	got.Reset()
	if err := WriteText(&want, m, &TextOptions{Net: true, Files: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildText(&got, s.source(), nil, &TextOptions{Net: true, Files: true}); err != nil {
		t.Fatal(err)
	}
	if want.String() != got.String() {
		t.Errorf("BuildText differs from WriteText(Build):\n%s\n---\n%s", got.String(), want.String())
	}
	// NoNet leaves them out.
	no := s.build(&Options{NoNet: true})
	if n := len(one(t, no, 10).Net); n != 0 {
		t.Errorf("NoNet: %d entries", n)
	}
}

func TestAddrFilter(t *testing.T) {
	e := func(family, addr string, port int, path string) *NetEntry {
		return &NetEntry{Op: "connect", Family: family, Addr: addr, Port: port, Path: path}
	}
	tests := []struct {
		filter string
		hit    []*NetEntry
		miss   []*NetEntry
	}{
		{"203.0.113.0/24", []*NetEntry{e("inet", "203.0.113.7", 443, ""), e("inet6", "::ffff:203.0.113.9", 1, "")},
			[]*NetEntry{e("inet", "203.0.114.1", 443, ""), e("unix", "", 0, "/x")}},
		{"203.0.113.7", []*NetEntry{e("inet", "203.0.113.7", 1, "")}, []*NetEntry{e("inet", "203.0.113.8", 1, "")}},
		{":443", []*NetEntry{e("inet", "203.0.113.7", 443, ""), e("inet6", "::1", 443, "")},
			[]*NetEntry{e("inet", "203.0.113.7", 80, ""), e("netlink", "", 443, "")}},
		{"10.0.0.1:53", []*NetEntry{e("inet", "10.0.0.1", 53, "")}, []*NetEntry{e("inet", "10.0.0.1", 54, ""), e("inet", "10.0.0.2", 53, "")}},
		{"[::1]:8080", []*NetEntry{e("inet6", "::1", 8080, "")}, []*NetEntry{e("inet6", "::2", 8080, "")}},
		{"::1", []*NetEntry{e("inet6", "::1", 8080, "")}, []*NetEntry{e("inet6", "::2", 8080, ""), e("inet", "127.0.0.1", 1, "")}},
		{"fe80::/10", []*NetEntry{e("inet6", "fe80::1%2", 53, "")}, []*NetEntry{e("inet", "10.0.0.1", 53, "")}},
		{"/run/*.sock", []*NetEntry{e("unix", "", 0, "/run/app.sock")},
			[]*NetEntry{e("unix", "", 0, "/run/x/y.sock"), e("unix", "", 0, "/tmp/app.sock"), e("unix", "", 0, "@/run/app.sock")}},
		{"/run/*", []*NetEntry{e("unix", "", 0, "/run/x/y.sock")}, nil},
		{"@proctrail*", []*NetEntry{e("unix", "", 0, "@proctrail-net-test")}, []*NetEntry{e("unix", "", 0, "/proctrail")}},
	}
	for _, tt := range tests {
		f, err := parseAddrFilter(tt.filter)
		if err != nil {
			t.Fatalf("%q: %v", tt.filter, err)
		}
		for _, h := range tt.hit {
			if !f.match(h) {
				t.Errorf("%q does not match %+v", tt.filter, *h)
			}
		}
		for _, m := range tt.miss {
			if f.match(m) {
				t.Errorf("%q matches %+v", tt.filter, *m)
			}
		}
	}
	for _, bad := range []string{"", ":", ":0", ":65536", ":http", "example.com", "203.0.113.300", "run/x.sock", "/[", "10.0.0.0/33"} {
		if _, err := parseAddrFilter(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}

	// In Build: the processes with a matching entry, with their
	// ancestors.
	s := netScript(t)
	for _, tt := range []struct{ addr, want string }{
		{"198.51.100.0/24", "1[10[11]]"},
		{"203.0.113.7:443", "1[10]"},
		{":8080", "1[10[11]]"},
		{"/srv/*", "1[10[11]]"},
		{"192.0.2.1", ""},
	} {
		if got := pids(s.build(&Options{Addr: tt.addr}).Processes); got != tt.want {
			t.Errorf("Addr %q keeps %q, want %q", tt.addr, got, tt.want)
		}
	}
	if _, err := Build(s.source(), &Options{Addr: "nowhere"}); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("bad Addr: error %v", err)
	}
}

// refEntries reads the lines the network scenario (testdata/scenarios/net.c)
// printed of its own calls: "OP FAMILY ADDRESS PORT [ERRNO]", "OP unix
// [PATH] [ERRNO]", "OP netlink PORTID".
func refEntries(t *testing.T, text string) []NetEntry {
	t.Helper()
	var out []NetEntry
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Fatalf("reference line %q", line)
		}
		e := NetEntry{Op: f[0], Family: f[1]}
		rest := f[2:]
		if n := len(rest); n > 0 && strings.HasPrefix(rest[n-1], "E") {
			e.Error, rest = rest[n-1], rest[:n-1]
		}
		var err error
		switch {
		case e.Family == "unix" && len(rest) == 1:
			e.Path = rest[0]
		case e.Family == "netlink" && len(rest) == 1:
			e.Port, err = strconv.Atoi(rest[0])
		case len(rest) == 2:
			e.Addr = rest[0]
			e.Port, err = strconv.Atoi(rest[1])
		case len(rest) != 0:
			t.Fatalf("reference line %q", line)
		}
		if err != nil {
			t.Fatalf("reference line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// TestNetCaptureReference checks the network entries of the recorded
// scenario against what the program printed of its own calls: the same
// calls, in the same order, with the same addresses and errors (socket()
// it does not print; the send()s on its connected socket and its netlink
// request the recorder's rules leave out).
func TestNetCaptureReference(t *testing.T) {
	ref, err := os.ReadFile("../testdata/analyze/net/reference.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := refEntries(t, string(ref))
	m := buildCapture(t, []string{"../testdata/analyze/net/capture.zst"}, &Options{Cmd: true}, false)
	if len(m.Processes) != 1 {
		t.Fatalf("%d roots, want the command", len(m.Processes))
	}
	var got []NetEntry
	protos := map[string]int{}
	for _, e := range m.Processes[0].Net {
		protos[e.Proto]++
		if e.Op == "socket" {
			continue
		}
		got = append(got, NetEntry{Op: e.Op, Family: e.Family, Addr: e.Addr, Port: e.Port, Path: e.Path, Error: e.Error})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries against the program's own account (-want +got):\n%s", diff)
	}
	if protos[""] != 0 || protos["tcp"] == 0 || protos["udp"] == 0 || protos["stream"] == 0 || protos["route"] == 0 {
		t.Errorf("protocols: %v", protos)
	}
}
