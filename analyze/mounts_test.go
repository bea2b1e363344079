package analyze

import (
	"math/rand/v2"
	"testing"

	"proctrail/analyze/internal/procstore"
	"proctrail/formats"
)

// TestHostPath maps a container's paths through its mount table and the
// host's: a bind mount of a subdirectory, an overlay root, a file system
// with no host path, octal escapes, the longest mount point.
func TestHostPath(t *testing.T) {
	host := parseMountinfo(`22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 22 0:40 / /var/lib/ctr/merged rw - overlay overlay rw,lowerdir=/l
31 22 254:0 /srv/my\040data /mnt/data rw - ext4 /dev/vda rw
40 22 0:5 / /proc rw - proc proc rw
`)
	ctr := parseMountinfo(`72 49 0:40 / / rw - overlay overlay rw
73 72 254:0 /srv/my\040data/vol /data rw - ext4 /dev/vda rw
74 72 0:43 / /proc rw - proc proc rw
75 72 0:44 / /dev rw - tmpfs tmpfs rw
76 75 0:45 / /dev/pts rw - devpts devpts rw
`)
	for _, c := range []struct{ path, host, fs string }{
		{"/etc/passwd", "/var/lib/ctr/merged/etc/passwd", ""},
		{"/", "/var/lib/ctr/merged", ""},
		{"/data/a.txt", "/mnt/data/vol/a.txt", ""}, // the host mount of the same device with the longest root
		{"/data", "/mnt/data/vol", ""},
		{"/database", "/var/lib/ctr/merged/database", ""}, // not under /data
		{"/proc/self/status", "", "proc"},                 // another proc instance than the host's
		{"/dev/pts/0", "", "devpts"},
		{"/dev/null", "", "tmpfs"},
	} {
		h, fs := hostPath(ctr, host, c.path)
		if h != c.host || fs != c.fs {
			t.Errorf("%s: %q %q, want %q %q", c.path, h, fs, c.host, c.fs)
		}
	}
	if got := unescapeMount(`/a\040b\134c\011`); got != "/a b\\c\t" {
		t.Errorf("unescape: %q", got)
	}
	if got := unescapeMount(`/a\04`); got != `/a\04` {
		t.Errorf("a cut escape: %q", got)
	}
	if m := parseMountinfo("garbage\n1 2 3\n - \n"); len(m) != 0 {
		t.Errorf("garbage parsed: %+v", m)
	}
}

// TestMountBounds: a capture cannot make the tables kept grow without
// bound.
func TestMountBounds(t *testing.T) {
	var m mountState
	line := "1 0 0:1 / / rw - tmpfs tmpfs rw\n"
	table := ""
	for range maxMountLines {
		table += line
	}
	r := mountsRecord(1, table)
	for i := range 3 * maxMountEntries / maxMountLines {
		r.Namespaces[0].Inode = uint64(i + 1)
		m.record(r, int64(i))
	}
	if m.entries > maxMountEntries {
		t.Errorf("%d lines kept, bound %d", m.entries, maxMountEntries)
	}
	if m.host != 1 || len(m.tables) == 0 {
		t.Errorf("host %d, %d tables", m.host, len(m.tables))
	}
}

func mountsRecord(pid int32, table string) *formats.ProcRecord {
	return &formats.ProcRecord{Kind: formats.ReasonMounts, PID: pid, Mountinfo: table,
		Namespaces: []formats.Namespace{{Name: "mnt", Inode: 1}}}
}

// TestRootfsOfMemo checks rootfsOf's memo: asked of every process, in
// any order, it must answer as a walk that memoizes nothing. The capture
// has a pivot_root under a chain of descendants, runc exec's setns into
// that mount namespace, and two processes that join each other's.
func TestRootfsOfMemo(t *testing.T) {
	s := newScript(t)
	s.at(1).fork(1, 500)
	s.at(1).fork(500, 501)
	s.at(2).audit(501, 500, "openat", "exit=5 a0=ffffff9c a2=10000", cwd("/bundle"), dirPath(0, "/bundle/rootfs", "NORMAL", 40))
	s.at(3).audit(501, 500, "fchdir", "a0=5", cwd("/bundle"))
	s.at(4).audit(501, 500, "pivot_root", "", cwd("/"), dirPath(0, ".", "NORMAL", 40), dirPath(1, ".", "NORMAL", 40))
	for pid := int32(502); pid < 520; pid++ {
		s.at(5).fork(pid-1, pid)
	}
	s.at(10).fork(1, 600)
	s.at(11).audit(600, 1, "openat", "exit=7 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/proc/510/ns/mnt", "NORMAL"))
	s.at(12).audit(600, 1, "setns", "a0=7")
	s.at(13).fork(600, 601)
	s.at(14).fork(601, 602)
	s.at(20).fork(1, 900)
	s.at(20).fork(1, 901)
	s.at(21).audit(900, 1, "openat", "exit=3 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/proc/901/ns/mnt", "NORMAL"))
	s.at(21).audit(900, 1, "setns", "a0=3")
	s.at(22).audit(901, 1, "openat", "exit=3 a0=ffffff9c a2=0", cwd("/"), pathRec(0, "/proc/900/ns/mnt", "NORMAL"))
	s.at(22).audit(901, 1, "setns", "a0=3")
	s.at(23).fork(901, 902)
	b, _, err := runFilter(s.source(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.spool.Close()
	// walk is rootfsOf without its memo.
	walk := func(r ref) string {
		for n := 0; !r.None() && n < maxAncestors; n++ {
			p := b.procs.Get(r)
			if p.PivotRoot != "" {
				return p.PivotRoot
			}
			if !p.JoinedMountNS.None() {
				r = p.JoinedMountNS
				continue
			}
			r = p.Parent
		}
		return ""
	}
	n := b.procs.Len()
	orders := [][]int{make([]int, n), make([]int, n), rand.New(rand.NewPCG(5, 6)).Perm(n)}
	for i := range n {
		orders[0][i], orders[1][i] = i, n-1-i
	}
	var rooted, joined int
	b.procs.View(func() {
		want := make([]string, n)
		for i := range n {
			want[i] = walk(procstore.RefOf(i))
			if want[i] == "/bundle/rootfs" {
				rooted++
			}
			if !b.procs.Get(procstore.RefOf(i)).JoinedMountNS.None() {
				joined++
			}
		}
		for k, order := range orders {
			b.memos.rootfs = nil
			for _, i := range order {
				if got := b.rootfsOf(procstore.RefOf(i)); got != want[i] {
					t.Errorf("order %d: rootfsOf(process %d) = %q, want %q", k, i, got, want[i])
				}
			}
		}
	})
	if rooted < 20 || joined < 3 {
		t.Fatalf("%d processes under the pivot_root, %d that joined a mount namespace: the test tests too little", rooted, joined)
	}
}
