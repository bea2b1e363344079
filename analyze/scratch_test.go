package analyze

import (
	"os"
	"testing"
	"time"

	"proctrail/replay"
)

func TestScratchReal(t *testing.T) {
	f := os.Getenv("SCRATCH_CAPTURE")
	if f == "" {
		t.Skip()
	}
	s, err := replay.Open([]string{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(s, &Options{Cmd: os.Getenv("SCRATCH_CMD") != ""})
	if err != nil {
		t.Fatal(err)
	}
	WriteJSON(os.Stdout, m)
	if os.Getenv("SCRATCH_DOT") != "" {
		f, _ := os.Create(os.Getenv("SCRATCH_DOT"))
		WriteDOT(f, m, &DOTOptions{Files: os.Getenv("SCRATCH_FILES") != ""})
		f.Close()
	}
}

func TestScratchHostile(t *testing.T) {
	if os.Getenv("SCRATCH_HOSTILE") == "" {
		t.Skip()
	}
	s := newScript(t)
	for i, name := range hostile {
		pid := int32(100 + i)
		s.at(float64(i)).fork(1, pid)
		s.at(float64(i)).comm(pid, name)
	}
	m := s.build(nil)
	f, _ := os.Create(os.Getenv("SCRATCH_HOSTILE"))
	WriteDOT(f, m, nil)
	f.Close()
}

func TestScratchClock(t *testing.T) {
	f := os.Getenv("SCRATCH_CLOCK")
	if f == "" {
		t.Skip()
	}
	s, _ := replay.Open([]string{f}, nil)
	boot := s.Info().BootTime
	t.Logf("boot %s", boot.Format(time.RFC3339Nano))
	n := 0
	for {
		ev, err := s.NextEvent()
		if err != nil {
			break
		}
		if ev.Proc != nil && n < 400 {
			n++
			k := boot.Add(time.Duration(ev.Proc.Timestamp))
			if n%10 == 0 {
				t.Logf("%s cap=%s kern=%s d=%v", ev.Proc.Kind, time.Unix(0, ev.Time).UTC().Format("05.000000"), k.UTC().Format("05.000000"), time.Duration(ev.Time-k.UnixNano()))
			}
		}
		if ev.Audit != nil && n < 400 && n%10 == 5 {
			t.Logf("audit cap=%s hdr=%s", time.Unix(0, ev.Time).UTC().Format("05.000000"), ev.Audit.Time.UTC().Format("05.000000"))
		}
	}
}
