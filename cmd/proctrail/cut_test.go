package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/internal/testenv"
)

// cutAnalysis runs analyze with args and returns its processes and
// containers, as JSON.
func cutAnalysis(t *testing.T, args ...string) (procs, conts string) {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"analyze", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("analyze %v: exit %d: %s", args, code, errs)
	}
	var doc struct {
		Processes  json.RawMessage `json:"processes"`
		Containers json.RawMessage `json:"containers"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	return string(doc.Processes), string(doc.Containers)
}

// TestCutCommand cuts the container capture to its container, from the
// command line, and checks that analyze shows of the cut what it shows of
// the capture with the same flags, that info tells the provenance, and
// that tshark reads every packet.
func TestCutCommand(t *testing.T) {
	capture := "../../testdata/analyze/container/capture.zst"
	procs, conts := cutAnalysis(t, capture)
	var ids []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(conts), &ids); err != nil || len(ids) == 0 {
		t.Fatalf("the capture has no container: %s", conts)
	}
	prefix := ids[0].ID[:6]
	out := filepath.Join(t.TempDir(), "cut.zst")
	code, _, errs := runCLI(t, "cut", capture, "--container", prefix, "-o", out)
	if code != 0 {
		t.Fatalf("cut: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "proctrail: cut 6 processes to "+out) {
		t.Errorf("cut's summary: %q", errs)
	}
	wantP, wantC := cutAnalysis(t, capture, "--container", prefix)
	gotP, gotC := cutAnalysis(t, out)
	if diff := cmp.Diff(wantP, gotP); diff != "" {
		t.Errorf("processes (-capture with the selection +cut):\n%s", diff)
	}
	if wantC != gotC {
		t.Errorf("containers: %s, cut: %s", wantC, gotC)
	}
	if wantP == procs {
		t.Fatal("the selection kept everything: the test tests nothing")
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the cut's mode: %v %v", fi.Mode(), err)
	}

	code, info, _ := runCLI(t, "info", out)
	if code != 0 || !strings.Contains(info, "Cut:         from ") || !strings.Contains(info, "selection --container "+prefix) ||
		!strings.Contains(info, "records mark the selected processes") || strings.Contains(info, "Redacted:") {
		t.Errorf("info of the cut:\n%s", info)
	}
	var infos []struct {
		Sources map[string]struct {
			Messages uint64 `json:"messages"`
		} `json:"sources"`
		Cut *struct {
			Kept  map[string]uint64 `json:"kept"`
			Marks uint64            `json:"marks"`
		} `json:"cut"`
	}
	_, js, _ := runCLI(t, "info", "--json", out)
	if err := json.Unmarshal([]byte(js), &infos); err != nil || len(infos) != 1 || infos[0].Cut == nil {
		t.Fatalf("info --json: %v: %s", err, js)
	}
	packets := uint64(0)
	for src, s := range infos[0].Sources {
		packets += s.Messages
		if want := infos[0].Cut.Kept[src]; src != "procfs" && s.Messages != want {
			t.Errorf("%s: %d messages, kept %d", src, s.Messages, want)
		}
	}
	if infos[0].Cut.Marks != 6 {
		t.Errorf("%d marks, want 6", infos[0].Cut.Marks)
	}

	// zstd -dc | tshark -r - counts every packet.
	zstd, tshark := testenv.NeedTool(t, "zstd"), testenv.NeedTool(t, "tshark")
	cmd := exec.Command("sh", "-c", `"$1" -dc "$2" | "$3" -r - -T fields -e frame.number | wc -l`, "sh", zstd, out, tshark)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, b)
	}
	if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil || n != packets {
		t.Errorf("tshark counts %q frames, the cut holds %d packets", b, packets)
	}
}

// TestCutRedact masks a user name and a directory everywhere: analyze,
// replay (decoded and as an auditd log, read back by ausearch) and tshark
// find no match, and info counts the fields.
func TestCutRedact(t *testing.T) {
	capture := "../../testdata/analyze/pipeline/capture.zst"
	_, before, _ := runCLI(t, "analyze", "--json", capture)
	// The pipeline scenario's directory, and the text it wrote.
	secret := regexp.MustCompile(`proctrail-testdata\.[A-Za-z0-9]+|hello world`)
	if !secret.MatchString(before) {
		t.Fatal("the capture does not hold what the test masks")
	}
	out := filepath.Join(t.TempDir(), "cut.zst")
	code, _, errs := runCLI(t, "cut", capture, "--redact", `proctrail-testdata\.[A-Za-z0-9]+`, "--redact", "hello world", "-o", out)
	if code != 0 {
		t.Fatalf("cut: exit %d: %s", code, errs)
	}
	if !regexp.MustCompile(`proctrail: [1-9][0-9]* fields masked by 2 patterns`).MatchString(errs) {
		t.Errorf("cut's summary: %q", errs)
	}
	for _, args := range [][]string{{"analyze", "--json", out}, {"analyze", "--tree", "--files", out}, {"replay", "--json", out}, {"info", out}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if m := secret.FindString(stdout); m != "" {
			t.Errorf("%v shows %q", args, m)
		}
	}
	// The processes are the same, their strings masked.
	procsBefore, _ := cutAnalysis(t, capture)
	procsAfter, _ := cutAnalysis(t, out)
	if len(procsAfter) != len(procsBefore) || procsAfter == procsBefore {
		t.Errorf("the masked processes are %d bytes, the original %d: masks keep lengths, and change something", len(procsAfter), len(procsBefore))
	}
	code, info, _ := runCLI(t, "info", out)
	if code != 0 || !regexp.MustCompile(`Redacted:    [1-9][0-9]* fields masked by 2 patterns`).MatchString(info) {
		t.Errorf("info:\n%s", info)
	}

	// As an auditd log, read by ausearch, interpreted (hex decoded).
	ausearch := testenv.NeedTool(t, "ausearch")
	log := filepath.Join(t.TempDir(), "audit.log")
	code, logText, stderr := runCLI(t, "replay", "--format", "audit", out)
	if code != 0 {
		t.Fatalf("replay --format audit: %s", stderr)
	}
	if err := os.WriteFile(log, []byte(logText), 0o600); err != nil {
		t.Fatal(err)
	}
	interp := runTool(t, ausearch, "--input", log, "-i")
	if !strings.Contains(interp, "type=EXECVE") || !strings.Contains(interp, "*****") {
		t.Fatalf("ausearch -i read no masked EXECVE:\n%.2000s", interp)
	}
	if m := secret.FindString(interp); m != "" {
		t.Errorf("ausearch -i shows %q", m)
	}

	// tshark reads it, and finds no match in any packet.
	zstd, tshark := testenv.NeedTool(t, "zstd"), testenv.NeedTool(t, "tshark")
	b, err := exec.Command("sh", "-c", `"$1" -dc "$2" | "$3" -r - -x`, "sh", zstd, out, tshark).Output()
	if err != nil || len(b) == 0 {
		t.Fatalf("tshark: %v: %.500s", err, b)
	}
	if strings.Contains(string(b), "hello") {
		t.Error("tshark's hex dump holds the masked text")
	}
}

// TestCutRefuses: a cut never writes over a capture it cuts, and a bad
// pattern is a usage error.
func TestCutRefuses(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "c.zst")
	orig, err := os.ReadFile("../../testdata/analyze/threads/capture.zst")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(capture, orig, 0o600)
	if code, _, errs := runCLI(t, "cut", capture, "-o", capture); code != 2 || !strings.Contains(errs, "is one of the captures cut") {
		t.Errorf("cut onto its input: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(capture); string(b) != string(orig) {
		t.Error("the capture was modified")
	}
	if code, _, errs := runCLI(t, "cut", capture, "--redact", "(", "-o", filepath.Join(dir, "x.zst")); code != 2 || !strings.Contains(errs, "--redact") {
		t.Errorf("a bad pattern: exit %d: %s", code, errs)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 {
		t.Errorf("files left: %v", left)
	}
	// A selection of nothing is a cut of nothing, with a warning.
	if code, _, errs := runCLI(t, "cut", capture, "--comm", "no-such-name", "-o", filepath.Join(dir, "none.zst")); code != 0 ||
		!strings.Contains(errs, "the selection keeps no process") {
		t.Errorf("an empty selection: exit %d: %s", code, errs)
	}
}

// TestCutDamaged: a damaged capture is cut as far as it reads, with the
// damage reported.
func TestCutDamaged(t *testing.T) {
	dir := t.TempDir()
	orig, err := os.ReadFile("../../testdata/analyze/pipeline/capture.zst")
	if err != nil {
		t.Fatal(err)
	}
	capture := filepath.Join(dir, "c.zst")
	os.WriteFile(capture, orig[:len(orig)*3/4], 0o600)
	out := filepath.Join(dir, "cut.zst")
	code, _, errs := runCLI(t, "cut", capture, "--comm", "sh", "-o", out)
	if code != 0 || !strings.Contains(errs, "bytes of the captures unreadable; cut as far as they read") {
		t.Fatalf("cut of a truncated capture: exit %d: %s", code, errs)
	}
	wantP, _ := cutAnalysis(t, capture, "--comm", "sh")
	gotP, _ := cutAnalysis(t, out)
	if wantP != gotP {
		t.Errorf("the cut of a damaged capture differs from its analysis:\n%s", cmp.Diff(wantP, gotP))
	}
}

// TestCutAddr cuts the network capture to the processes that talked to
// ::1, and checks that analyze shows of the cut what it shows of the
// capture with --addr, network entries included, and that --tree --net
// lists them.
func TestCutAddr(t *testing.T) {
	capture := "../../testdata/analyze/net/capture.zst"
	all, _ := cutAnalysis(t, capture)
	out := filepath.Join(t.TempDir(), "cut.zst")
	if code, _, errs := runCLI(t, "cut", capture, "--addr", "::1", "-o", out); code != 0 {
		t.Fatalf("cut: exit %d: %s", code, errs)
	}
	wantP, _ := cutAnalysis(t, capture, "--addr", "::1")
	gotP, _ := cutAnalysis(t, out)
	if diff := cmp.Diff(wantP, gotP); diff != "" {
		t.Errorf("processes (-capture with --addr +cut):\n%s", diff)
	}
	if wantP == all || !strings.Contains(wantP, `"addr": "::1"`) {
		t.Fatal("--addr ::1 kept everything, or nothing that talked to ::1")
	}
	code, tree, errs := runCLI(t, "analyze", "--tree", "--net", out)
	if code != 0 || !strings.Contains(tree, "connect inet6 tcp [::1]:") || !strings.Contains(tree, "bind netlink route") {
		t.Errorf("analyze --tree --net of the cut: exit %d: %s\n%s", code, errs, tree)
	}
	if code, _, errs := runCLI(t, "analyze", "--addr", "example.com", capture); code == 0 || !strings.Contains(errs, "example.com") {
		t.Errorf("a bad --addr: exit %d: %s", code, errs)
	}
	if code, _, errs := runCLI(t, "analyze", "--net", "--dot", capture); code == 0 || !strings.Contains(errs, "--net goes with --tree") {
		t.Errorf("--net without --tree: exit %d: %s", code, errs)
	}
}
