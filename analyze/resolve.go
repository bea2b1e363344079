package analyze

import (
	"path"
	"strconv"
	"strings"
)

// Resolving a syscall's path. A relative name is joined to the directory
// of its dirfd or to the cwd; the name reported is always absolute, and
// never a stale one:
//
//   - A dirfd's entry in the fd table is believed only when it agrees
//     with the call's PARENT record: for a name of one component, the
//     directory the kernel looked it up in is the dirfd's, and its inode
//     and device must be those recorded when the directory was opened.
//   - A dirfd that is unknown, or whose entry is stale, is looked for by
//     the PARENT record's inode and device among the directories seen
//     before (b.dirs: opened, named as the parent of a path, renamed).
//   - A directory renamed after its fd was opened is named as it is now.
//   - An fd opened before its process moved its root (pivot_root, setns
//     into a mount namespace: runc's init) names its file from the old
//     root, which the output's mapping to host paths would get wrong:
//     it is not used.
//   - What is found nowhere is reported as the process could have named
//     it, /proc/PID/fd/N/NAME (or /proc/PID/cwd/NAME), and marked
//     unresolved (File.Unresolved).
//
// A name given as /proc/self/fd/N (or /proc/PID/fd/N of the caller, or
// /dev/fd/N), with more after it or not, is the fd's path when the table
// knows it (tar's chmod through /proc/self/fd/4).

// movedDir is a directory's rename: its new path, and when.
type movedDir struct {
	to string
	t  int64
}

// maxRenameChain bounds the renames followed for one path.
const maxRenameChain = 8

// resolve makes an item's name absolute (see above).
func (b *builder) resolve(p *proc, c *call, dirfd int32, it *pathItem) string {
	name := it.name
	var dir string
	known := true
	switch {
	case strings.HasPrefix(name, "/"):
	case dirfd == atFDCWD:
		dir = p.Cwd
		if c.hasCwd {
			dir = c.cwd
		}
		known = strings.HasPrefix(dir, "/")
	default:
		dir, name, known = b.dirOfFD(p, c, dirfd, it)
	}
	if !known {
		out := b.unresolvedName(p.PID, dirfd, name)
		b.unres = append(b.unres, out)
		return out
	}
	out := b.joinPath(dir, name)
	if own := b.viaFD(p, out); own != out {
		return own
	}
	if it.inode != "" && strings.HasPrefix(out, "/") {
		if it.dir {
			b.learnDir(it.dev, it.inode, out)
		}
		if par := c.parentOf(it); par != nil && par.inode != "" && it.nametype != "PARENT" {
			if base := path.Base(out); base != "/" && base != "." && base != ".." {
				b.learnDir(par.dev, par.inode, path.Dir(out))
			}
		}
	}
	return out
}

// dirOfFD returns the directory that name, relative to dirfd, is in, and
// the name relative to it; known is false when it is found nowhere.
func (b *builder) dirOfFD(p *proc, c *call, dirfd int32, it *pathItem) (dir, name string, known bool) {
	name = it.name
	one := !strings.Contains(strings.TrimRight(name, "/"), "/")
	par := c.parentOf(it)
	hasPar := par != nil && par.inode != ""
	e := b.lookupFD(p, dirfd)
	if e != nil && e.OtherRoot {
		// Named from another root: neither its path nor the
		// directories seen by inode (from that root too) are this
		// root's.
		return "", name, false
	}
	if e != nil && strings.HasPrefix(e.Path, "/") {
		stale := one && hasPar && e.Inode != "" && (e.Inode != par.inode || e.Dev != par.dev)
		if !stale {
			return b.renamedSince(e.Path, e.Time), name, true
		}
	}
	if hasPar {
		if d, ok := b.dirs[dirKey{par.dev, par.inode}]; ok {
			if one {
				return d, name, true
			}
			// The PARENT record is the directory of the last component.
			if base := path.Base(path.Clean(name)); base != "." && base != ".." && base != "/" {
				return d, base, true
			}
		}
	}
	return "", name, false
}

// unresolvedName is the name of a path whose directory is unknown, as
// the process could have named it through /proc.
func (b *builder) unresolvedName(pid, dirfd int32, name string) string {
	base := "/proc/" + strconv.Itoa(int(pid)) + "/cwd"
	if dirfd != atFDCWD {
		base = "/proc/" + strconv.Itoa(int(pid)) + "/fd/" + strconv.Itoa(int(dirfd))
	}
	return b.joinPath(base, name)
}

// viaFD returns the path of the fd that name designates when it is one of
// p's own (/proc/self/fd/N…, see procFD) and the fd table knows it;
// otherwise name.
func (b *builder) viaFD(p *proc, name string) string {
	fd, rest, ok := procFD(name, p.PID)
	if !ok {
		return name
	}
	if e := b.lookupFD(p, fd); e != nil && strings.HasPrefix(e.Path, "/") && !e.OtherRoot {
		return b.joinPath(b.renamedSince(e.Path, e.Time), rest)
	}
	return name
}

// learnDir remembers that the directory (dev, inode) is at dir.
func (b *builder) learnDir(dev, inode, dir string) {
	if b.dirs[dirKey{dev, inode}] == dir {
		return
	}
	if len(b.dirs) >= maxDirs {
		clear(b.dirs)
	}
	b.dirs[dirKey{strings.Clone(dev), strings.Clone(inode)}] = dir
}

// dirRenamed notes that the directory it, at from, is at to since t: its
// fds name it there from now on.
func (b *builder) dirRenamed(it *pathItem, from, to string, t int64) {
	if !strings.HasPrefix(from, "/") || !strings.HasPrefix(to, "/") || from == to {
		return
	}
	if len(b.moved) >= maxDirs {
		clear(b.moved)
	}
	b.moved[from] = movedDir{to, t}
	if it.inode != "" {
		b.learnDir(it.dev, it.inode, to)
	}
}

// dirRemoved forgets the directory it (rmdir): its inode can be reused.
func (b *builder) dirRemoved(it *pathItem) {
	if it.inode != "" {
		delete(b.dirs, dirKey{it.dev, it.inode})
	}
}

// renamedSince returns where the directory (or file) at p, named so at
// time since, is now: p with a rename of it or of a directory above it
// made after since applied, and so on.
func (b *builder) renamedSince(p string, since int64) string {
	if len(b.moved) == 0 {
		return p
	}
	for range maxRenameChain {
		changed := false
		for a := p; a != "/" && a != "." && a != ""; a = path.Dir(a) {
			if m, ok := b.moved[a]; ok && m.t > since {
				p, since, changed = b.strs.intern(m.to+p[len(a):]), m.t, true
				break
			}
		}
		if !changed {
			break
		}
	}
	return p
}

// joinPath joins name to dir and cleans it; with no dir, a relative name
// stays relative (only for names that are not a syscall's: resolve never
// returns one).
func (b *builder) joinPath(dir, name string) string {
	if strings.HasPrefix(name, "/") || dir == "" {
		if name == "" {
			return dir
		}
		return b.strs.intern(path.Clean(name))
	}
	return b.strs.intern(path.Join(dir, name))
}
