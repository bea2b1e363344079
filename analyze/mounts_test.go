package analyze

import (
	"testing"

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
