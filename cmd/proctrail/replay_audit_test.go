package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/google/go-cmp/cmp"

	"proctrail/formats"
	"proctrail/internal/testenv"
	"proctrail/replay"
)

func TestReplayFormatFlag(t *testing.T) {
	p := testCapture(t) // a procfs record, no audit record
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout
	}{
		{[]string{"--format", "audit"}, 0, ""},
		{[]string{"--format", "text"}, 0, "procfs"},
		{[]string{"--format", "json"}, 0, `"source":"procfs"`},
		{[]string{"--json"}, 0, `"source":"procfs"`},
		{[]string{"--json", "--format", "json"}, 0, `"source":"procfs"`},
		{[]string{"--json", "--format", "audit"}, 2, ""},
		{[]string{"--format", "xml"}, 2, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, stderr := runCLI(t, append(append([]string{"replay"}, tc.args...), p)...)
			if code != tc.code || !strings.Contains(out, tc.want) || tc.want == "" && out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q", code, out, stderr, tc.code, tc.want)
			}
		})
	}
}

// TestReplayAuditLogRoundTrip replays an auditd log as an auditd log: the
// same lines come back, less what a capture cannot hold (node= prefixes,
// the enriched part after 0x1d).
func TestReplayAuditLogRoundTrip(t *testing.T) {
	in := []string{
		`type=SYSCALL msg=audit(1700000000.123:4567): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c2e0b6a0 a1=55d0c2e0b5e0 a2=55d0c2e08e10 a3=8 items=2 ppid=1234 pid=5678 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="ls" exe="/usr/bin/ls" key="exec"`,
		`type=EXECVE msg=audit(1700000000.123:4567): argc=3 a0="ls" a1="-l" a2=2F746D702F6120622063`,
		`type=CWD msg=audit(1700000000.123:4567): cwd="/home/user"`,
		`type=PATH msg=audit(1700000000.123:4567): item=0 name="/usr/bin/ls" inode=1234 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
		`type=PROCTITLE msg=audit(1700000000.123:4567): proctitle=6C73002D6C002F746D702F6120622063`,
		`type=EOE msg=audit(1700000000.123:4567): `,
		`node=box type=USER_ACCT msg=audit(1700000001.000:4568): pid=999 uid=0 auid=1000 ses=3 msg='op=PAM:accounting grantors=pam_permit acct="root" exe="/usr/bin/sudo" hostname=? addr=? terminal=/dev/pts/0 res=success'` + "\x1dUID=\"root\" AUID=\"u\"",
		`type=UNKNOWN[1340] msg=audit(1700000002.000:4569): x=1`,
	}
	want := []string{
		in[0], in[1], in[2], in[3], in[4],
		`type=EOE msg=audit(1700000000.123:4567):`,
		`type=USER_ACCT msg=audit(1700000001.000:4568): pid=999 uid=0 auid=1000 ses=3 msg='op=PAM:accounting grantors=pam_permit acct="root" exe="/usr/bin/sudo" hostname=? addr=? terminal=/dev/pts/0 res=success'`,
		in[7],
	}
	p := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(p, []byte(strings.Join(in, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "replay", "--format", "audit", p)
	// The UNKNOWN[1340] record is kept, and reported as of an unknown type.
	if code != 0 || stderr != "proctrail: "+p+": 1 records of unknown types kept; --verbose lists them\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if diff := cmp.Diff(strings.Join(want, "\n")+"\n", out); diff != "" {
		t.Errorf("replay --format audit of a log (-want +got):\n%s", diff)
	}
}

// nlAudit builds a NETLINK_AUDIT message as the kernel multicasts it.
func nlAudit(typ uint16, text string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(16+len(text)))
	b = binary.LittleEndian.AppendUint16(b, typ)
	b = append(b, make([]byte, 10)...) // flags, seq, pid
	return append(b, text...)
}

// TestReplayAuditSkipsAndWarns checks what --format audit leaves out of
// the log: connector and procfs messages, netlink acknowledgements and the
// types auditd does not log, silently; undecodable audit messages with a
// warning on stderr. A newline in a record does not start a line. An EOE
// that ends no event in the log is left out.
func TestReplayAuditSkipsAndWarns(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.zst")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := formats.NewWriter(f, &formats.Options{Header: formats.Header{Hostname: "box", KernelRelease: "6.1", Version: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 7, PPID: 1, Comm: "a"}
	b, _ := rec.AppendBinary(nil)
	const t0 = 1_700_000_000_000_000_000
	for i, m := range []struct {
		src  formats.Source
		data []byte
	}{
		{formats.SourceProcfs, b},
		{formats.SourceAudit, nlAudit(2, "\x00\x00\x00\x00")},                             // NLMSG_ERROR: an ack
		{formats.SourceAudit, nlAudit(uint16(auparse.AUDIT_REPLACE), "\x01\x00\x00\x00")}, // the kernel probing a daemon
		{formats.SourceAudit, nlAudit(uint16(auparse.AUDIT_SYSCALL), "no header at all")}, // undecodable
		{formats.SourceAudit, nlAudit(uint16(auparse.AUDIT_USER_CMD), "audit(1700000000.000:9): pid=1 msg='a\nb'\x00")},
		{formats.SourceAudit, nlAudit(uint16(auparse.AUDIT_EOE), "audit(1700000000.000:9): \x00")},
	} {
		if err := w.WritePacket(m.src, t0+int64(i), m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "replay", "--format", "audit", p)
	// The EOE after a one-record event is left out, as ausearch drops it.
	want := "type=USER_CMD msg=audit(1700000000.000:9): pid=1 msg='a b'\n"
	if code != 0 || out != want {
		t.Errorf("exit %d, stdout %q; want %q", code, out, want)
	}
	if !strings.Contains(stderr, "warning: 1 audit messages could not be decoded") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q: want one warning about the undecodable message", stderr)
	}
}

// auditEvent is one audit event as lines of an auditd log, sorted (ausearch
// prints an event's records last first), without EOE (the reassembler
// does not keep it).
type auditEvent []string

func (e auditEvent) key() string { return strings.Join(e, "") }

// proctrailEvents reassembles the audit events of capture with replay's
// Stream, as analyze does, each record written as AppendLogLine writes it.
func proctrailEvents(t *testing.T, capture string) ([]auditEvent, []replay.AuditEvent, replay.CaptureInfo) {
	t.Helper()
	s, err := replay.Open([]string{capture}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var lines []auditEvent
	var events []replay.AuditEvent
	for {
		ev, err := s.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Audit == nil {
			continue
		}
		var e auditEvent
		for _, r := range ev.Audit.Records {
			if replay.AuditdLogs(r.Type) {
				e = append(e, string(replay.AppendLogLine(nil, r)))
			}
		}
		slices.Sort(e)
		lines = append(lines, e)
		events = append(events, *ev.Audit)
	}
	return lines, events, s.Info()
}

// runTool runs an audit tool with a fixed locale and time zone; it fails
// the test unless the tool exits 0.
func runTool(t *testing.T, path string, args ...string) string {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(path), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// ausearchEvents splits ausearch's default output ("----", "time->…", then
// the event's records) into events, EOE left out.
func ausearchEvents(out string) []auditEvent {
	var events []auditEvent
	for _, block := range strings.Split(out, "----\n")[1:] {
		var e auditEvent
		for _, l := range strings.SplitAfter(block, "\n") {
			if l == "" || strings.HasPrefix(l, "time->") || strings.HasPrefix(l, "type=EOE ") {
				continue
			}
			e = append(e, l)
		}
		slices.Sort(e)
		events = append(events, e)
	}
	return events
}

var summaryLine = regexp.MustCompile(`(?m)^Number of ([^:]+): (\d+)$`)

// aureportSummary reads the "Number of …: N" lines of aureport --summary.
func aureportSummary(t *testing.T, out string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, s := range summaryLine.FindAllStringSubmatch(out, -1) {
		m[s[1]], _ = strconv.Atoi(s[2])
	}
	if _, ok := m["events"]; !ok {
		t.Fatalf("aureport --summary printed no event count:\n%s", out)
	}
	return m
}

// summaryOf counts what aureport --summary counts (src/aureport-scan.c
// do_summary_total), from proctrail's own events. Per event, aureport
// takes the pid, exe, comm and success= of its SYSCALL record
// (ausearch-parse.c parse_syscall), the keys of its records, and counts one
// configuration change for each of CONFIG_CHANGE, DAEMON_CONFIG,
// USYS_CONFIG and the MAC_POLICY_LOAD…MAC_UNLBL_STCDEL range it holds. Two
// simplifications, which the test captures do not meet: a res= in a user
// record after the SYSCALL would override its success=, and a hex-encoded
// key= (several keys) would be split into its keys.
func summaryOf(events []replay.AuditEvent) map[string]int {
	pids, exes, comms, keys := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	var failed, changes int
	for _, ev := range events {
		kinds := map[auparse.AuditMessageType]bool{}
		for _, r := range ev.Records {
			f := r.RawFields()
			if k, ok := f["key"]; ok && k != "(null)" {
				keys[k] = true
			}
			switch t := r.Type; {
			case t == auparse.AUDIT_SYSCALL:
				pids[f["pid"]], exes[f["exe"]], comms[f["comm"]] = true, true, true
				if f["success"] == "no" {
					failed++
				}
			case t == auparse.AUDIT_CONFIG_CHANGE, t == auparse.AUDIT_DAEMON_CONFIG, t == auparse.AUDIT_USYS_CONFIG:
				kinds[t] = true
			case t >= auparse.AUDIT_MAC_POLICY_LOAD && t <= auparse.AUDIT_MAC_UNLBL_STCDEL:
				kinds[auparse.AUDIT_MAC_POLICY_LOAD] = true
			}
		}
		changes += len(kinds)
	}
	return map[string]int{
		"events":                   len(events),
		"process IDs":              len(pids),
		"executables":              len(exes),
		"commands":                 len(comms),
		"keys":                     len(keys),
		"failed syscalls":          failed,
		"changes in configuration": changes,
	}
}

// wroteLine is what replay --format audit --verbose says it wrote.
var wroteLine = regexp.MustCompile(`(?m)^proctrail: wrote (\d+) audit records in (\d+) events$`)

// TestReplayAuditWithAuditdTools writes each test capture, every file of
// a rotated set alone too, as an auditd log and has auditd's own tools
// read it: ausearch must give back every line and group them into
// proctrail's events, and aureport must count what proctrail counts,
// and what replay says it wrote (--verbose) is what they read.
//
// ausearch and aureport (src/ausearch-lol.c) group records into events by
// the audit(SEC.MS:SERIAL) header (and node=), where proctrail's
// reassembler groups them by serial: the same thing for one kernel's
// records, whose serial is unique within the event's millisecond. Both
// complete an event at a record that ends one (EOE, PROCTITLE, the types
// that stand alone), after 2 s (ausearch: end_of_event_timeout of header
// time; proctrail: MaxAge of capture time), or at the end of the input,
// and both leave out an EOE that comes after its event was completed. The
// bounds differ in what they measure, so an event spread over 2 s could be
// split differently; no test capture has one, and the groupings agree
// exactly. aureport counts only the events whose records it parses
// (ausearch-parse.c extract_search_items); every record a kernel wrote
// parses, so every event counts.
func TestReplayAuditWithAuditdTools(t *testing.T) {
	ausearch := testenv.NeedTool(t, "ausearch")
	aureport := testenv.NeedTool(t, "aureport")
	captures, err := filepath.Glob("../../testdata/analyze/*/capture*.zst")
	if err != nil || len(captures) == 0 {
		t.Fatalf("no captures in testdata/analyze: %v", err)
	}
	for _, capture := range captures {
		t.Run(filepath.Base(filepath.Dir(capture))+"/"+filepath.Base(capture), func(t *testing.T) {
			code, out, stderr := runCLI(t, "replay", "--format", "audit", capture)
			if code != 0 || stderr != "" {
				t.Fatalf("replay --format audit: exit %d, stderr %q", code, stderr)
			}
			code, verbose, stderr := runCLI(t, "replay", "--format", "audit", "--verbose", capture)
			said := wroteLine.FindStringSubmatch(stderr)
			if code != 0 || verbose != out || said == nil {
				t.Fatalf("replay --format audit --verbose: exit %d, stderr %q, same log %v", code, stderr, verbose == out)
			}
			saidRecords, _ := strconv.Atoi(said[1])
			saidEvents, _ := strconv.Atoi(said[2])
			log := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(log, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			lines := strings.SplitAfter(out, "\n")
			lines = lines[:len(lines)-1]
			wantEvents, events, info := proctrailEvents(t, capture)
			if uint64(len(events)) != info.AuditEvents || len(events) == 0 {
				t.Fatalf("%d events popped, Info says %d", len(events), info.AuditEvents)
			}

			// Every line back, and nothing else. ausearch prints each event
			// whole when it completes, so events that interleave in the
			// capture come out one after the other: the same lines, in
			// another order.
			raw := strings.SplitAfter(runTool(t, ausearch, "--input", log, "--raw"), "\n")
			raw = raw[:len(raw)-1]
			slices.Sort(raw)
			sorted := slices.Sorted(slices.Values(lines))
			if diff := cmp.Diff(sorted, raw); diff != "" {
				t.Errorf("ausearch --raw (-ours +ausearch's):\n%s", diff)
			}

			// The same events, record for record.
			got := ausearchEvents(runTool(t, ausearch, "--input", log))
			byKey := func(a, b auditEvent) int { return strings.Compare(a.key(), b.key()) }
			slices.SortFunc(got, byKey)
			slices.SortFunc(wantEvents, byKey)
			if diff := cmp.Diff(wantEvents, got); diff != "" {
				t.Errorf("ausearch's events (-proctrail's +ausearch's):\n%s", diff)
			}
			if saidRecords != len(lines) || saidRecords != len(raw) || saidEvents != len(got) {
				t.Errorf("replay says it wrote %d records in %d events; the log has %d lines, ausearch read %d records in %d events",
					saidRecords, saidEvents, len(lines), len(raw), len(got))
			}

			// The same counts.
			summary := aureportSummary(t, runTool(t, aureport, "--input", log, "--summary"))
			want := summaryOf(events)
			if summary["events"] != saidEvents {
				t.Errorf("aureport: Number of events: %d, replay says it wrote %d", summary["events"], saidEvents)
			}
			for k := range want {
				if summary[k] != want[k] {
					t.Errorf("aureport: Number of %s: %d, proctrail counts %d", k, summary[k], want[k])
				}
			}
			t.Logf("%d lines, %d events; aureport: %d events, %d process IDs, %d executables, %d commands, %d failed syscalls, %d configuration changes, %d keys",
				len(lines), len(events), summary["events"], summary["process IDs"], summary["executables"], summary["commands"],
				summary["failed syscalls"], summary["changes in configuration"], summary["keys"])
		})
	}
}

// TestReplayAuditGroupsAsAusearch checks replay.LogGrouper, which decides
// which EOE records --format audit leaves out and counts the events it
// says it wrote, against ausearch itself on logs made of the cases where
// grouping is subtle: replaying each log as a log, proctrail writes what
// `ausearch --raw` gives back of it, and ausearch reads in what was
// written every line and the events proctrail says it wrote.
func TestReplayAuditGroupsAsAusearch(t *testing.T) {
	ausearch := testenv.NeedTool(t, "ausearch")
	// sys is a SYSCALL record of serial s at 1700000000 s + ms.
	sys := func(ms, s int) string {
		return fmt.Sprintf(`type=SYSCALL msg=audit(%s:%d): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=8 items=0 ppid=1 pid=5 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="ls" exe="/usr/bin/ls" key="k"`, stamp(ms), s)
	}
	rec := func(typ string, ms, s int, body string) string {
		return strings.TrimSuffix(fmt.Sprintf("type=%s msg=audit(%s:%d): %s", typ, stamp(ms), s, body), " ")
	}
	eoe := func(ms, s int) string { return rec("EOE", ms, s, "") }
	cwd := func(ms, s int) string { return rec("CWD", ms, s, `cwd="/"`) }
	cases := map[string][]string{
		"an EOE alone":                   {eoe(0, 1), sys(0, 2), cwd(0, 2), eoe(0, 2)},
		"an event begun with PROCTITLE":  {rec("PROCTITLE", 0, 1, "proctitle=6C73"), eoe(0, 1), sys(0, 2)},
		"a record after PROCTITLE":       {sys(0, 1), rec("PROCTITLE", 0, 1, "proctitle=6C73"), cwd(0, 1), eoe(0, 1)},
		"LOGIN then its syscall":         {rec("LOGIN", 0, 1, "pid=5 uid=0 old-auid=4294967295 auid=1000 tty=(none) old-ses=4294967295 ses=3 res=1"), sys(0, 1), eoe(0, 1)},
		"an EOE after the timeout":       {sys(999, 1), sys(2000, 2), eoe(999, 1), eoe(2000, 2)},
		"an EOE within the timeout":      {sys(0, 1), sys(1999, 2), eoe(0, 1), eoe(1999, 2)},
		"a serial again at another time": {sys(0, 1), eoe(0, 1), sys(1, 1), eoe(1, 1)},
		// Written without node=, the two nodes' records are one event.
		"two nodes": {"node=a " + sys(0, 1), "node=b " + cwd(0, 1), "node=a " + eoe(0, 1), "node=b " + eoe(0, 1)},
	}
	// Each record type of the ranges endsEvent tells apart, followed by
	// a record of its serial and an EOE.
	for _, typ := range []string{"USER_CMD", "USER_AVC", "USER_LOGIN", "CONFIG_CHANGE", "MAC_STATUS", "MAC_UNLBL_ALLOW",
		"MAC_CALIPSO_DEL", "ANOM_PROMISCUOUS", "ANOM_ABEND", "INTEGRITY_DATA", "KERNEL", "ANOM_LOGIN_FAILURES", "VIRT_CONTROL"} {
		cases[typ+" then a record"] = []string{rec(typ, 0, 1, "pid=5 uid=0 auid=1000 ses=3 res=1"), cwd(0, 1), eoe(0, 1), sys(0, 2)}
	}
	for name, lines := range cases {
		t.Run(name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, stderr := runCLI(t, "replay", "--format", "audit", "--verbose", log)
			said := wroteLine.FindStringSubmatch(stderr)
			if code != 0 || said == nil {
				t.Fatalf("replay --format audit --verbose: exit %d, stderr %q", code, stderr)
			}
			sorted := func(s string) []string { return slices.Sorted(slices.Values(strings.SplitAfter(s, "\n"))) }
			if name != "two nodes" {
				raw := runTool(t, ausearch, "--input", log, "--raw")
				if !slices.Equal(sorted(out), sorted(raw)) {
					t.Errorf("written:\n%s\nausearch --raw of the log:\n%s", out, raw)
				}
			}
			written := filepath.Join(t.TempDir(), "written.log")
			if err := os.WriteFile(written, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			raw := runTool(t, ausearch, "--input", written, "--raw")
			events := strings.Count(runTool(t, ausearch, "--input", written), "----\n")
			if !slices.Equal(sorted(out), sorted(raw)) || said[1] != strconv.Itoa(strings.Count(raw, "\n")) || said[2] != strconv.Itoa(events) {
				t.Errorf("replay says it wrote %s records in %s events; ausearch reads %d in %d:\n%s", said[1], said[2], strings.Count(raw, "\n"), events, raw)
			}
		})
	}
}

// stamp is the header time 1700000000 s + ms.
func stamp(ms int) string { return fmt.Sprintf("%d.%03d", 1700000000+ms/1000, ms%1000) }
