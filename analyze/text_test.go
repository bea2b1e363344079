package analyze

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteText(t *testing.T) {
	child := &Process{PID: 11, Argv: []string{"evil\n12 forged", "\x1b[2J"}, Exited: true, Signal: 9, Start: 1e9, End: 2e9,
		Files: []File{{Path: "/tmp/a", Op: "rename", To: "/tmp/b"}}}
	m := &Model{
		Capture:   Capture{Host: "h", Kernel: "k", Start: 1e9, End: 3e9, AuditLost: 2},
		Processes: []*Process{{PID: 10, Argv: []string{"sh"}, Exited: true, Start: 1e9, End: 3e9, Children: []*Process{child, {PID: 12, Comm: "x"}}}},
	}
	var b bytes.Buffer
	if err := WriteText(&b, m, &TextOptions{Files: true}); err != nil {
		t.Fatal(err)
	}
	want := `h  k  1970-01-01T00:00:01.000000000Z to 1970-01-01T00:00:03.000000000Z
WARNING: 0 connector and 2 audit messages lost, 0 bytes unreadable
10 sh  [exit 0, 2s]
├─ 11 "evil\n12 forged \x1b[2J"  [signal 9, 1s]
│       rename /tmp/a → /tmp/b
└─ 12 x  [running]
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Error("an escape character reached the output")
	}
}
