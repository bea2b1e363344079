package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// openForWriting returns the files of names that some process holds
// open for writing (a recorder still writing its current file), as far
// as /proc shows: all processes for root, one's own otherwise.
func openForWriting(names []string) map[string]bool {
	type fileKey struct{ dev, ino uint64 }
	want := map[fileKey][]string{}
	for _, n := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(n, &st); err == nil {
			k := fileKey{st.Dev, st.Ino}
			want[k] = append(want[k], n)
		}
	}
	out := map[string]bool{}
	if len(want) == 0 {
		return out
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/[0-9]*")
	for _, fd := range fds {
		var st syscall.Stat_t
		if syscall.Stat(fd, &st) != nil {
			continue
		}
		ns := want[fileKey{st.Dev, st.Ino}]
		if ns == nil || !writeMode(strings.Replace(fd, "/fd/", "/fdinfo/", 1)) {
			continue
		}
		for _, n := range ns {
			out[n] = true
		}
	}
	return out
}

// writeMode reports whether the fdinfo file says the fd was opened for
// writing (O_WRONLY or O_RDWR in its octal flags).
func writeMode(fdinfo string) bool {
	f, err := os.Open(fdinfo)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0
		}
	}
	return false
}
