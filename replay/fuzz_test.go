package replay

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/google/go-cmp/cmp"
)

func FuzzDecodeProcEvent(f *testing.F) {
	f.Add(procMsg(procEventNone, neg(1), ts, 0))
	f.Add(procMsg(procEventFork, 3, ts, 100, 100, 200, 200))
	f.Add(procMsg(procEventExec, 1, ts, 200, 200))
	f.Add(procMsg(procEventUID, 0, ts, 200, 200, 1000, 0))
	f.Add(procMsg(procEventGID, 0, ts, 200, 200, 100, 27))
	f.Add(procMsg(procEventSID, 0, ts, 200, 200))
	f.Add(procMsg(procEventPtrace, 0, ts, 200, 200, 300, 300))
	f.Add(procMsgRaw(procEventComm, 0, ts, commUnion(201, 200, "worker")))
	f.Add(procMsg(procEventCoredump, 0, ts, 200, 200, 100, 100))
	f.Add(procMsg(procEventExit, 2, ts, 200, 200, 3<<8, 17, 100, 100))
	f.Add(procMsg(0x400, 5, ts, 1, 2, 3, 4))
	f.Add(append(procMsg(procEventExec, 1, ts, 200, 200), procMsg(procEventExit, 1, ts, 200, 200)...))
	f.Fuzz(func(t *testing.T, msg []byte) {
		ev, err := DecodeProcEvent(msg)
		if err != nil {
			if ev != (ProcEvent{}) {
				t.Fatalf("error %v with a non-zero event %+v", err, ev)
			}
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrControl) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if ev.Kind == "" {
			t.Fatalf("no error and no kind: %+v", ev)
		}
		if k, ok := procKinds[ev.What]; ok != (ev.Kind != ProcUnknown) || ok && k.kind != ev.Kind {
			t.Fatalf("what %#x decoded as %q", ev.What, ev.Kind)
		}
		if len(ev.Comm) > procCommLen || strings.IndexByte(ev.Comm, 0) >= 0 {
			t.Fatalf("comm %q", ev.Comm)
		}
		// wait(2)'s split: a status or a signal, never both, each in range.
		if code, sig := ev.ExitStatus(); code != 0 && sig != 0 || code < 0 || code > 0xff || sig < 0 || sig > 0x7f {
			t.Fatalf("exit status %#x split as code %d, signal %d", ev.ExitCode, code, sig)
		}
	})
}

func FuzzDecodeAuditMessage(f *testing.F) {
	for _, s := range []struct {
		typ  auparse.AuditMessageType
		text string
	}{
		{auparse.AUDIT_SYSCALL, textSyscall},
		{auparse.AUDIT_SYSCALL, textDenied},
		{auparse.AUDIT_EXECVE, textExecve},
		{auparse.AUDIT_EXECVE, `audit(1615150974.493:21028): argc=2 a0="/bin/echo" a1_len=8 a1[0]=41424344`},
		{auparse.AUDIT_CWD, textCwd},
		{auparse.AUDIT_PATH, textPath},
		{auparse.AUDIT_PATH, textPathNull},
		{auparse.AUDIT_PROCTITLE, textProctitle},
		{auparse.AUDIT_EOE, textEOE},
		{auparse.AUDIT_USER_ACCT, textUserAcct},
		{auparse.AUDIT_SOCKADDR, `audit(1700000000.123:4567): saddr=02000050C0A800010000000000000000`},
		{auparse.AUDIT_AVC, `audit(1700000000.123:4567): avc:  denied  { read } for  pid=5 comm="x" scontext=u:r:t:s0 tcontext=u:r:f:s0 tclass=file permissive=0`},
		{auparse.AUDIT_LOGIN, `audit(1700000000.123:4567): pid=1 uid=0 old-auid=4294967295 auid=1000 tty=(none) old-ses=4294967295 ses=3 res=1`},
	} {
		f.Add(auditMsg(uint16(s.typ), s.text, false))
		f.Add(auditMsg(uint16(s.typ), s.text, true))
	}
	f.Add(auditMsg(nlmsgError, "\xfe\xff\xff\xff", false))
	f.Fuzz(func(t *testing.T, msg []byte) {
		rec, err := DecodeAuditMessage(msg)
		if err != nil {
			if diff := cmp.Diff(AuditRecord{}, rec, ignoreBody); diff != "" || rec.body != nil {
				t.Fatalf("error %v with a non-zero record (-want +got):\n%s", err, diff)
			}
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrControl) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		checkRecord(t, rec)
	})
}

func FuzzParseLogLine(f *testing.F) {
	for _, s := range []string{
		"type=SYSCALL msg=" + textSyscall,
		"type=EXECVE msg=" + textExecve,
		"node=web01 type=PATH msg=" + textPath + "\n",
		"type=USER_ACCT msg=" + textUserAcct,
		"type=CWD msg=" + textCwd + "\x1dAUID=\"root\"",
		"type=UNKNOWN[1420] msg=audit(1700000000.123:4567): op=x",
		"type=EOE msg=audit(1700000000.123:4567):",
		"----",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		rec, err := ParseLogLine(line)
		if err != nil {
			if diff := cmp.Diff(AuditRecord{}, rec, ignoreBody); diff != "" || rec.body != nil {
				t.Fatalf("error %v with a non-zero record (-want +got):\n%s", err, diff)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if strings.ContainsRune(rec.Text, 0x1d) {
			t.Fatalf("enrichment kept in %q", rec.Text)
		}
		checkRecord(t, rec)
	})
}

// checkRecord checks a decoded record's invariants and exercises its
// lazy parts.
func checkRecord(t *testing.T, rec AuditRecord) {
	t.Helper()
	if rec.body == nil || rec.Text == "" {
		t.Fatalf("no error and an empty record: %+v", rec)
	}
	if rec.Serial > 1<<32-1 {
		t.Fatalf("serial %d beyond 32 bits", rec.Serial)
	}
	if strings.TrimRight(rec.Text, "\x00 \t\n\r") != rec.Text {
		t.Fatalf("text %q keeps trailing NULs or spaces", rec.Text)
	}
	f, err := rec.Fields()
	if (f == nil) != (err != nil) {
		t.Fatalf("Fields = %v, %v: nil map exactly when error", f, err)
	}
	f2, err2 := rec.Fields()
	if !cmp.Equal(f, f2) || (err == nil) != (err2 == nil) {
		t.Fatalf("second Fields call differs")
	}
	if rec.RawFields() == nil {
		t.Fatalf("RawFields is nil")
	}
	argv, err := AuditEvent{Records: []AuditRecord{rec}}.Argv()
	if err != nil && argv != nil {
		t.Fatalf("Argv = %q with error %v", argv, err)
	}
}

// FuzzReassembler reads up to 512 pushes from the fuzz bytes, 4 bytes each: a signed
// serial step, a record type, a capture time step (10 ms units, 0xff going
// back 1 s) and a node. It checks the bounds, that every record but EOE
// comes out exactly once and in order, that Lost stays within the serial
// distance travelled, and that a second run gives the same output.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 0xff, 2, 0, 0, 2, 5, 10, 1, 0, 4, 250, 0, 0, 6, 1, 0})
	f.Add([]byte{5, 7, 0, 0, 5, 8, 0, 0, 200, 0, 0, 1, 0x80, 0, 0xff, 0, 0x7f, 3, 0, 1})
	f.Fuzz(reassemblerCase)
}

var (
	fuzzKinds = []auparse.AuditMessageType{SYSCALL, EXECVE, CWD, PATH, PROCTITLE, EOE, AVC, USER_ACCT, LOGIN, ANOM_ABEND}
	fuzzOpts  = &ReassemblerOptions{MaxInFlight: 4, MaxAge: time.Second, MaxRecords: 5, MaxReorder: 50, MaxGap: 1000}
)

func reassemblerCase(t *testing.T, data []byte) {
	kinds, opts := fuzzKinds, fuzzOpts
	type in struct {
		now int64
		rec AuditRecord
	}
	var pushes []in
	var now int64
	serial := uint32(binary.LittleEndian.Uint32(append(data[:min(len(data), 4):min(len(data), 4)], 0, 0, 0, 0)))
	var travelled uint64
	for i := 0; i+4 <= len(data) && len(pushes) < 512; i += 4 {
		step := int8(data[i])
		serial += uint32(int32(step))
		travelled += uint64(max(int(step), -int(step)))
		if data[i+2] == 0xff {
			now -= int64(time.Second)
		} else {
			now += int64(data[i+2]) * 10 * ms
		}
		rec := arec(kinds[int(data[i+1])%len(kinds)], uint64(serial))
		if data[i+3]&1 == 1 {
			rec.Node = "b"
		}
		rec.Text += " #" + strconv.Itoa(len(pushes)) // identifies the push
		pushes = append(pushes, in{now, rec})
	}
	run := func() ([]AuditEvent, uint64) {
		r := NewReassembler(opts)
		var out []AuditEvent
		for _, p := range pushes {
			r.Push(p.now, p.rec)
			if r.InFlight() > opts.MaxInFlight {
				t.Fatalf("InFlight() = %d > %d", r.InFlight(), opts.MaxInFlight)
			}
			for ev, ok := r.Pop(); ok; ev, ok = r.Pop() {
				out = append(out, ev)
			}
		}
		r.Flush()
		for ev, ok := r.Pop(); ok; ev, ok = r.Pop() {
			out = append(out, ev)
		}
		if r.InFlight() != 0 {
			t.Fatalf("InFlight() after Flush = %d", r.InFlight())
		}
		return out, r.Lost()
	}
	out, lost := run()
	seen := map[string]int{}
	for _, ev := range out {
		if len(ev.Records) == 0 || len(ev.Records) > opts.MaxRecords {
			t.Fatalf("event of %d records", len(ev.Records))
		}
		if ev.Complete != (ev.End == EndEOE || ev.End == EndProctitle || ev.End == EndStandalone) {
			t.Fatalf("Complete %v with End %v", ev.Complete, ev.End)
		}
		last := -1
		for _, r := range ev.Records {
			if r.Serial != ev.Serial || r.Node != ev.Node || r.Type == EOE {
				t.Fatalf("record %q in event %d/%q", r.Text, ev.Serial, ev.Node)
			}
			seen[r.Text]++
			n, _ := strconv.Atoi(r.Text[strings.LastIndexByte(r.Text, '#')+1:])
			if n <= last {
				t.Fatalf("records out of order in event %d", ev.Serial)
			}
			last = n
		}
	}
	for _, p := range pushes {
		want := 1
		if p.rec.Type == EOE {
			want = 0
		}
		if seen[p.rec.Text] != want {
			t.Fatalf("record %q came out %d times", p.rec.Text, seen[p.rec.Text])
		}
	}
	if lost > travelled*2 {
		t.Fatalf("Lost() = %d after travelling %d serials", lost, travelled)
	}
	again, lost2 := run()
	same := len(out) == len(again) && lost == lost2
	for i := 0; same && i < len(out); i++ {
		a, b := out[i], again[i]
		same = a.Serial == b.Serial && a.Node == b.Node && a.Received == b.Received &&
			a.End == b.End && len(a.Records) == len(b.Records)
		for j := 0; same && j < len(a.Records); j++ {
			same = a.Records[j].Text == b.Records[j].Text
		}
	}
	if !same {
		t.Fatalf("second run differs: %d events lost %d, then %d events lost %d", len(out), lost, len(again), lost2)
	}
}
