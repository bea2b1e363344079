//go:build linux

package record_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"proctrail/formats"
	"proctrail/record"
)

// TestIntegrationTsharkReadsRecording records the real kernel, then reads
// the decompressed capture with Wireshark's tools, as an analyst would:
// tshark sees one frame per message proctrail counts (but for the audit
// messages elided, which proctrail restores), dissects every
// netlink frame with the family of its interface and a netlink length
// that covers the whole message (no "Malformed Packet"), and capinfos
// shows the recording host from the section header.
func TestIntegrationTsharkReadsRecording(t *testing.T) {
	needRoot(t)
	zstdBin, tshark, capinfos := needTool(t, "zstd"), needTool(t, "tshark"), needTool(t, "capinfos")
	dir := t.TempDir()
	out := filepath.Join(dir, "trace.zst")
	res, err := record.Record(context.Background(), &record.Config{
		Output: out, Audit: true,
		Command: []string{"sh", "-c", "ls / > /dev/null; cat /etc/hostname > /dev/null"},
	})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("record: %v, exit %d", err, res.ExitCode)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := formats.Summarize(f, out)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pcap := filepath.Join(dir, "trace.pcapng")
	if b, err := exec.Command("sh", "-c", `"$1" -q -dc "$2" > "$3"`, "sh", zstdBin, out, pcap).CombinedOutput(); err != nil {
		t.Fatalf("zstd -dc: %v\n%s", err, b)
	}

	cmd := exec.Command(tshark, "-r", pcap, "-T", "fields", "-E", "separator=/t",
		"-e", "frame.interface_name", "-e", "frame.len", "-e", "netlink.hatype", "-e", "netlink.family", "-e", "netlink.hdr_len", "-e", "_ws.malformed")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	counts := map[string]uint64{}
	malformed := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) != 6 {
			t.Fatalf("tshark line %q", line)
		}
		iface := f[0]
		counts[iface]++
		if iface == "procfs" {
			continue // LINKTYPE_USER0: not netlink
		}
		family := map[string]string{"connector": "0x000b", "audit": "0x0009"}[iface]
		frameLen, _ := strconv.Atoi(f[1])
		nlLen, _ := strconv.Atoi(f[4])
		if f[2] != "824" || f[3] != family || nlLen != frameLen-16 {
			t.Errorf("%s frame: hatype %s family %s netlink length %d of a %d-byte frame; want 824, %s, frame-16", iface, f[2], f[3], nlLen, frameLen, family)
		}
		if f[5] != "" {
			malformed++
		}
	}
	if malformed > 0 {
		t.Errorf("tshark found %d malformed frames", malformed)
	}
	for src := range formats.Source(formats.NumSources) {
		want := sum.Messages[src]
		if src == formats.SourceAudit {
			// Elided audit messages are no packets of their own.
			want -= sum.Restored
		}
		if counts[src.String()] != want {
			t.Errorf("%s: tshark counts %d frames, proctrail %d messages of which %d restored", src, counts[src.String()], sum.Messages[src], sum.Restored)
		}
	}
	if sum.Restored == 0 {
		t.Error("no audit message was elided")
	}
	if sum.Messages[formats.SourceAudit] == 0 || sum.Messages[formats.SourceConnector] == 0 {
		t.Fatalf("recorded %v messages: want audit and connector", sum.Messages)
	}

	b, err = exec.Command(capinfos, pcap).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos: %v\n%s", err, b)
	}
	host, _ := os.Hostname()
	uname, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	for _, want := range []string{
		"Capture comment:     proctrail.hostname=" + host,
		"Capture oper-sys:    Linux " + strings.TrimSpace(string(uname)),
		"Capture application: proctrail",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("capinfos output lacks %q:\n%s", want, b)
		}
	}
}
