package formats

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/zstd"

	"proctrail/internal/testenv"
)

var needTool = testenv.NeedTool

// TestPcapgoReadsCapture checks the decompressed stream against an
// independent pcapng reader: the whole file is one zstd stream (the index
// frames are skippable) holding standard pcapng.
func TestPcapgoReadsCapture(t *testing.T) {
	recs := testRecords(50)
	b := writeCapture(t, recs, 8)
	dec, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	ng, err := pcapgo.NewNgReader(dec, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		data, ci, err := ng.ReadPacketData()
		if err == io.EOF {
			if i != len(recs) {
				t.Errorf("pcapgo read %d packets, want %d", i, len(recs))
			}
			break
		}
		if i == 0 {
			for j, name := range []string{"connector", "audit", "procfs"} {
				ifc, err := ng.Interface(j)
				if err != nil || ifc.Name != name {
					t.Errorf("interface %d named %q (%v), want %q", j, ifc.Name, err, name)
				}
			}
		}
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		want := recs[i]
		if ci.InterfaceIndex != int(want.Source) || ci.Timestamp.UnixNano() != want.Time {
			t.Errorf("packet %d: interface %d time %d, want %d %d", i, ci.InterfaceIndex, ci.Timestamp.UnixNano(), want.Source, want.Time)
		}
		if want.Source != SourceProcfs {
			data = data[sllLen:]
		}
		if !bytes.Equal(data, want.Data) {
			t.Errorf("packet %d data %q, want %q", i, data, want.Data)
		}
	}
}

// TestTsharkReadsCapture pipes `zstd -dc` into tshark, as the README tells
// analysts to.
func TestTsharkReadsCapture(t *testing.T) {
	zstdBin := needTool(t, "zstd")
	tshark := needTool(t, "tshark")
	recs := testRecords(30)
	path := t.TempDir() + "/t.zst"
	if err := os.WriteFile(path, writeCapture(t, recs, 4), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `"$1" -dc "$2" | "$3" -r - -T fields -e frame.interface_name -e netlink.hatype -e netlink.family`, "sh", zstdBin, path, tshark)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var packets []string
	for _, l := range lines {
		if strings.HasPrefix(l, "connector") || strings.HasPrefix(l, "audit") || strings.HasPrefix(l, "procfs") {
			packets = append(packets, l)
		}
	}
	if len(packets) != len(recs) {
		t.Fatalf("tshark listed %d packets, want %d:\n%s", len(packets), len(recs), out)
	}
	for i, l := range packets {
		f := strings.Split(l, "\t")
		if f[0] != recs[i].Source.String() {
			t.Errorf("packet %d on interface %q, want %q", i, f[0], recs[i].Source)
		}
		family := map[Source]string{SourceConnector: "0x000b", SourceAudit: "0x0009"}[recs[i].Source]
		if family != "" && (len(f) < 3 || f[1] != "824" || f[2] != family) {
			t.Errorf("packet %d: cooked header %q, want hatype 824 (ARPHRD_NETLINK), family %s", i, l, family)
		}
	}
}

// TestTsharkReadsElidedCapture: tshark reads a capture with elided audit
// messages without complaint, one frame per packet written (the elided
// messages are none), and shows each elision marker as the comment of the
// packet before them.
func TestTsharkReadsElidedCapture(t *testing.T) {
	zstdBin := needTool(t, "zstd")
	tshark := needTool(t, "tshark")
	recs := append(openEvent(1, "/bin/cat", "/etc/a"), openEvent(2, "/bin/cat", "/etc/a")...)
	b, w := writeRecs(t, recs, nil, nil)
	path := t.TempDir() + "/t.zst"
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `"$1" -dc "$2" | "$3" -r - -T fields -E separator=/t -e frame.interface_name -e netlink.hdr_type -e frame.comment -e _ws.malformed -e _ws.expert.severity`, "sh", zstdBin, path, tshark)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	// SYSCALL, CWD, PATH, PROCTITLE (EOE elided), SYSCALL (the rest
	// elided). tshark reports each comment as expert information of
	// severity "comment" (0x00100000), and nothing worse.
	want := []string{
		"audit\t0x0514\t\t\t",
		"audit\t0x051b\t\t\t",
		"audit\t0x0516\t\t\t",
		"audit\t0x052f\tproctrail.elided=1320\t\t1048576",
		"audit\t0x0514\tproctrail.elided=1307,1302,1327,1320\t\t1048576",
	}
	if w.Packets(SourceAudit)-w.Elided() != uint64(len(want)) {
		t.Fatalf("wrote %d packets, %d elided; want %d frames", w.Packets(SourceAudit), w.Elided(), len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tshark (-want +got):\n%s", diff)
	}
}
