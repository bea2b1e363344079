package analyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	"proctrail/formats"
	"proctrail/replay"
)

// fuzzScript turns bytes into an event stream: each 6-byte step picks an
// event kind and small pids, fds and names, so that the events collide
// (reuse, cycles, unknown fds, out-of-order sources) far more often than
// random input would.
func fuzzScript(t *testing.T, data []byte) *script {
	s := newScript(t)
	names := []string{"a", "../b", "/c/d", ".", "", "/proc/3/ns/mnt", "x\ny\"z", "/proc/4/ns/net", "\xff"}
	var ms float64
	for len(data) >= 6 {
		op, a, b, c, d, e := data[0], int32(data[1]%8+1), int32(data[2]%8+1), data[3], data[4], data[5]
		data = data[6:]
		ms += float64(e % 4)
		switch e % 16 {
		case 15:
			ms += 15000 // past the finalize grace
		case 14:
			ms += 2000 // past retireDelay, within the finalize grace
		}
		s.at(ms)
		name := names[int(c)%len(names)]
		fd := fmt.Sprintf("%x", d%8)
		// An address of a family the filter reads, its bytes from the
		// name and the step's.
		saddr := []string{"0100", "0200", "0A00", "1000"}[c%4] + fmt.Sprintf("%X%02X%02X%02X", name, a, b, d)
		switch op % 25 {
		case 0:
			s.fork(a, b)
		case 1:
			s.thread(a, b, int32(c%8)+10)
		case 2:
			s.exec(a)
		case 3:
			s.exit(a, a, int(c), int(d%3), b)
		case 4:
			s.exit(a, int32(c%8)+10, 0, 0, b)
		case 5:
			s.comm(a, name)
		case 6:
			s.procfs(formats.ProcRecord{Kind: formats.ProcReason(c%4 + 1), PID: a, PPID: b, Gone: d%5 == 0, StartTicks: uint64(d), TIDs: []int32{a, 10}, Cgroup: "0::/docker/" + cid, Exe: name, Cmdline: []string{name}})
		case 7:
			s.audit(a, b, "openat", "exit="+fmt.Sprint(d%8)+" a0="+fd+" a2="+fmt.Sprintf("%x", c), cwd("/w"), pathRec(0, name, "NORMAL"))
		case 8:
			s.audit(a, b, "openat", "exit=5 a0=ffffff9c a2=241", cwd(name), dirPath(0, "/w", "PARENT", int(c)), pathRec(1, name, "CREATE"))
		case 9:
			s.audit(a, b, "close", "a0="+fd)
		case 10:
			s.audit(a, b, "dup2", "exit="+fmt.Sprint(c%8)+" a0="+fd+" a1="+fmt.Sprintf("%x", c%8))
		case 11:
			s.audit(a, b, "unlinkat", "a0="+fd+" a2=200", cwd("/w"), dirPath(0, "/w", "PARENT", int(c)), pathRec(1, name, "DELETE"))
		case 12:
			s.audit(a, b, "renameat2", "a0="+fd+" a2=ffffff9c", cwd("/w"), pathRec(0, name, "DELETE"), pathRec(1, name, "CREATE"))
		case 13:
			s.audit(a, b, "execve", `exe="`+"/bin/x"+`"`, execve(name, "y"), cwd("/w"), pathRec(0, name, "NORMAL"))
		case 14:
			s.audit(a, b, "execveat", `exe="/" a0=`+fd, execve("z"), cwd("/"), "PATH item=0 name=\"\" inode=1000 dev=fe:00 mode=0100755 nametype=NORMAL")
		case 15:
			s.audit(a, b, []string{"clone", "clone3", "vfork", "fork"}[c%4], "exit="+fmt.Sprint(d%12)+" a0="+fmt.Sprintf("%x", uint32(c)<<8))
		case 16:
			s.audit(a, b, "setns", "a0="+fd)
		case 17:
			s.audit(a, b, "pivot_root", "", cwd("/"), pathRec(0, name, "NORMAL"))
		case 18:
			s.audit(a, b, "fchdir", "a0="+fd, cwd(name))
		case 19:
			s.audit(a, b, "exit_group", "a0="+fd)
		case 20:
			s.audit(a, b, "socket", fmt.Sprintf("a0=%x a1=%x a2=%x exit=%d", []int{1, 2, 10, 16, 17, 99}[c%6], d%6, e, d%8))
		case 21:
			s.audit(a, b, []string{"bind", "connect", "sendto", "sendmsg"}[c%4], "a0="+fd+fmt.Sprintf(" exit=%d", -int(d%3)), cwd(name), "SOCKADDR saddr="+saddr)
		case 22:
			s.audit(a, b, []string{"listen", "accept", "accept4", "sendto"}[c%4], "a0="+fd+fmt.Sprintf(" exit=%d", d%8-2))
		case 23:
			s.audit(a, b, "accept4", "a0="+fd+fmt.Sprintf(" a3=80000 exit=%d", d%8), "SOCKADDR saddr="+saddr)
		case 24:
			s.audit(a, b, "execve", "success=no exit=-2", cwd("/w"), pathRec(0, name, "UNKNOWN"))
		}
	}
	return s
}

func FuzzBuild(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x00\x00\x01\x07\x02\x01\x00\x03\x01\x09\x02\x01\x00\x03\x01"))
	f.Add(bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, 6))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzScript(t, data)
		for _, o := range []*Options{nil, {Pid: 3}, {Comm: "a", PathGlob: "/w/*"}, {Container: "3f"}, {Addr: "::/0"}, {Addr: "/w/*"}} {
			m, err := Build(s.source(), o)
			if err != nil {
				t.Fatal(err)
			}
			var js, dot bytes.Buffer
			if err := WriteJSON(&js, m); err != nil {
				t.Fatal(err)
			}
			if !json.Valid(js.Bytes()) {
				t.Fatal("invalid JSON")
			}
			if err := WriteDOT(&dot, m, &DOTOptions{Files: true}); err != nil {
				t.Fatal(err)
			}
			var txt, prov bytes.Buffer
			if err := WriteText(&txt, m, &TextOptions{Files: true, Net: true}); err != nil {
				t.Fatal(err)
			}
			if err := WritePROV(&prov, m); err != nil || !json.Valid(prov.Bytes()) {
				t.Fatalf("PROV: %v", err)
			}
			// Every kept process appears once.
			seen := map[*Process]bool{}
			walk(m.Processes, func(p *Process) {
				if seen[p] {
					t.Fatalf("process %d twice in the forest", p.PID)
				}
				seen[p] = true
				if len(p.Threads) == 0 || p.Threads[0].TID != p.PID {
					t.Fatalf("process %d: main thread not first: %v", p.PID, p.Threads)
				}
				if p.End != 0 && p.End < p.Start {
					t.Fatalf("process %d ends before it starts", p.PID)
				}
			})
		}
	})
}

// errSource fails after its events.
type errSource struct{ source }

func (s *errSource) NextEvent() (replay.Event, error) {
	ev, err := s.source.NextEvent()
	if err == io.EOF {
		return ev, errors.New("replay: disk on fire")
	}
	return ev, err
}

func TestBuildEdges(t *testing.T) {
	// An empty capture renders.
	m, err := Build(&source{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	js, dot := render(t, m, true)
	if !bytes.Contains(js, []byte(`"start": null`)) || !bytes.Contains(js, []byte(`"processes": []`)) {
		t.Errorf("empty capture JSON:\n%s", js)
	}
	renderDOT(t, dot, "svg")
	// A stream error is returned.
	s := newScript(t)
	s.at(0).fork(1, 2)
	if _, err := Build(&errSource{*s.source()}, nil); err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk on fire")) {
		t.Errorf("err = %v, want the stream's error", err)
	}
}
