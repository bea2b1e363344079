package analyze

import (
	"slices"
	"testing"

	"proctrail/analyze/internal/procstore"
)

// TestInternIdentity: equal identities share one memo, different ones
// (nil and empty argv too, and fields that differ only in where a string
// ends) do not, and an identity too long to intern still gets a memo.
func TestInternIdentity(t *testing.T) {
	b := newBuilder()
	a1 := b.internIdentity(procstore.Identity{Exe: "/bin/sh", Argv: []string{"sh", "-c", "x"}, Cwd: "/", Comm: "sh"})
	a2 := b.internIdentity(procstore.Identity{Exe: "/bin/sh", Argv: []string{"sh", "-c", "x"}, Cwd: "/", Comm: "sh"})
	if a1 != a2 {
		t.Error("equal identities got different memos")
	}
	distinct := []procstore.Identity{
		{Exe: "/bin/sh", Argv: []string{"sh", "-c", "x"}, Cwd: "/", Comm: "sh"},
		{Exe: "/bin/sh", Argv: []string{"sh", "-cx"}, Cwd: "/", Comm: "sh"},
		{Exe: "/bin/sh", Argv: []string{"sh", "-c", "x", ""}, Cwd: "/", Comm: "sh"},
		{Exe: "/bin/s", Argv: []string{"hsh", "-c", "x"}, Cwd: "/", Comm: "sh"},
		{Exe: "/bin/sh", Cwd: "/", Comm: "sh"},
		{Exe: "/bin/sh", Argv: []string{}, Cwd: "/", Comm: "sh"},
		{Exe: "/bin/sh", Argv: []string{""}, Cwd: "/", Comm: "sh"},
		{Exe: "/bin/sh/", Comm: "sh"},
		{Exe: "/bin/sh", Cwd: "/sh"},
	}
	seen := map[*procstore.Identity]int{}
	for i, id := range distinct {
		m := b.internIdentity(id)
		if j, ok := seen[m]; ok {
			t.Errorf("identities %d and %d share a memo: %+v, %+v", j, i, distinct[j], id)
		}
		seen[m] = i
		if m.Exe != id.Exe || m.Cwd != id.Cwd || m.Comm != id.Comm || !slices.Equal(m.Argv, id.Argv) || (m.Argv == nil) != (id.Argv == nil) {
			t.Errorf("memo %+v, want %+v", *m, id)
		}
	}
	long := procstore.Identity{Exe: "/bin/x", Argv: []string{string(make([]byte, maxIdentityKey))}}
	if m1, m2 := b.internIdentity(long), b.internIdentity(long); m1 == m2 || m1.Argv[0] != long.Argv[0] {
		t.Error("a long identity was interned, or its memo differs")
	}
}
