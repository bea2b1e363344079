package analyze

import "strings"

// Which container a process ran in: its cgroup's, the one whose mount
// namespace it joined, or the one its pivot_root started; else its
// parent's. The output phase works it out once per process (memos).

// containerOf is the container the process r names ran in: its own
// cgroup's, else that of the process whose mount namespace it joined with
// setns, else, when its cgroup is unknown and it called pivot_root, the
// one it started there, else none when a read of its cgroup after its
// fork names none, else its parent's.
func (b *builder) containerOf(r ref) string {
	m := b.memo(r)
	if m.contDone {
		return b.memos.conts[m.cont]
	}
	if m.contResolving {
		return ""
	}
	p := b.procs.Get(r)
	m.contResolving = true
	var id string
	switch {
	case p.CgroupContainer != "":
		id = p.CgroupContainer
	case !p.JoinedMountNS.None() && b.containerOf(p.JoinedMountNS) != "":
		id = b.containerOf(p.JoinedMountNS)
	case p.PivotRoot != "" && !p.CgroupNamesNone:
		// No cgroups (an auditd log): moving to a new root is what
		// starts a container, whose id the runtime's write of its
		// pid to its cgroup's cgroup.procs tells; else its rootfs.
		cid, rt := b.cgroupWritten(p)
		if cid == "" {
			cid, rt = ContainerFromRootfs(p.PivotRoot)
		}
		id = b.strs.intern(cid)
		if b.runtimes[id] == "" {
			b.runtimes[id] = rt
		}
	case p.CgroupNamesNone:
	case !p.Parent.None():
		id = b.containerOf(p.Parent)
	}
	m.contResolving = false
	m.contDone, m.cont = true, b.contMemo(id)
	return id
}

// maxCgroupWriteDepth bounds the ancestors cgroupWritten looks at: runc
// run, its init, the init's child that pivots.
const maxCgroupWriteDepth = 8

// maxCgWrites bounds the cgroup.procs writes remembered.
const maxCgWrites = 4096

// cgroupWrite notes that p opened path, a cgroup.procs file, for writing:
// a runtime putting a container's process in the container's cgroup.
func (b *builder) cgroupWrite(p *proc, path string) {
	dir, ok := strings.CutSuffix(path, "/cgroup.procs")
	if !ok || len(b.cgWrites) >= maxCgWrites {
		return
	}
	b.cgWrites[p.Ref()] = dir
}

// cgroupWritten returns the container that the nearest of p and its
// ancestors that wrote a cgroup.procs file put a process in.
func (b *builder) cgroupWritten(p *proc) (id, runtime string) {
	for q, depth := p, 0; q != nil && depth < maxCgroupWriteDepth; depth++ {
		if dir, ok := b.cgWrites[q.Ref()]; ok {
			// As a cgroup v2 line of /proc/PID/cgroup; a v1
			// controller's directory is one more component.
			if id, runtime = ContainerFromCgroup("0::" + strings.TrimPrefix(dir, "/sys/fs/cgroup")); id != "" {
				return id, runtime
			}
		}
		if q.Parent.None() {
			break
		}
		q = b.procs.Get(q.Parent)
	}
	return "", ""
}

// container returns the memo of the container of the process of index i.
func (b *builder) container(i int) string { return b.memos.conts[b.memos.procs[i].cont] }

// contMemo returns the index of container id in memos.conts, adding it.
func (b *builder) contMemo(id string) int32 {
	m := &b.memos
	k, ok := m.contIndex[id]
	if !ok {
		k = int32(len(m.conts))
		m.conts = append(m.conts, id)
		m.contIndex[id] = k
	}
	return k
}

// cgroupInfo is a result of ContainerFromCgroup.
type cgroupInfo struct{ id, runtime string }

// maxCgroups bounds the builder's cache of ContainerFromCgroup results.
const maxCgroups = 1024

// containerFromCgroup is ContainerFromCgroup, cached: most processes share
// their cgroup file with others.
func (b *builder) containerFromCgroup(cgroup string) (id, runtime string) {
	if r, ok := b.cgroups[cgroup]; ok {
		return r.id, r.runtime
	}
	id, runtime = ContainerFromCgroup(cgroup)
	if len(b.cgroups) >= maxCgroups || len(cgroup) > maxInternLen*16 {
		return id, runtime
	}
	b.cgroups[strings.Clone(cgroup)] = cgroupInfo{strings.Clone(id), runtime}
	return id, runtime
}

// Container runtimes as named in the JSON output.
const (
	RuntimeDocker     = "docker"
	RuntimeContainerd = "containerd"
	RuntimePodman     = "podman"
	RuntimeCrio       = "crio"
	RuntimeUnknown    = "unknown"
)

// scopePrefixes are the systemd scope names runtimes give a container's
// cgroup: <prefix><64 hex>.scope. The conmon scopes of podman and cri-o
// (libpod-conmon-…, crio-conmon-…) hold the monitor, not the container,
// and do not match because "conmon-" is not hex.
var scopePrefixes = []struct{ prefix, runtime string }{
	{"docker-", RuntimeDocker},
	{"cri-containerd-", RuntimeContainerd},
	{"libpod-", RuntimePodman},
	{"crio-", RuntimeCrio},
}

// ContainerFromCgroup returns the container id and runtime named by the
// contents of a /proc/PID/cgroup file (one "hierarchy:controllers:path"
// per line, cgroup v1 or v2), or empty strings when no line names one.
// The id is the 64 hex digits runtimes use. Recognised path components:
//
//	/docker/<id>                          docker, cgroupfs driver (and runc --cgroups-path)
//	docker-<id>.scope                     docker, systemd driver
//	cri-containerd-<id>.scope             containerd (CRI), systemd driver
//	libpod-<id>.scope, libpod-<id>        podman
//	crio-<id>.scope                       cri-o
//	/kubepods…/pod<uid>/<id>              kubernetes, cgroupfs driver: runtime unknown
//
// When paths nest (docker in docker), the deepest match wins.
func ContainerFromCgroup(cgroup string) (id, runtime string) {
	bestDepth := -1
	for line := range strings.SplitSeq(cgroup, "\n") {
		// The path is after the second colon; controllers hold no colon.
		_, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		_, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		parts := strings.Split(strings.TrimSpace(p), "/")
		for depth := len(parts) - 1; depth > bestDepth; depth-- {
			if cid, rt := componentID(parts, depth); cid != "" {
				id, runtime, bestDepth = cid, rt, depth
				break
			}
		}
	}
	return id, runtime
}

// componentID checks path component parts[i] for a container id.
func componentID(parts []string, i int) (id, runtime string) {
	c := parts[i]
	name := strings.TrimSuffix(c, ".scope")
	for _, sp := range scopePrefixes {
		if rest, ok := strings.CutPrefix(name, sp.prefix); ok && isContainerID(rest) {
			if sp.runtime != RuntimePodman && name == c {
				continue // docker-<id> without .scope is not a scope name
			}
			return rest, sp.runtime
		}
	}
	if !isContainerID(c) || i == 0 {
		return "", ""
	}
	parent := parts[i-1]
	switch {
	case parent == "docker":
		return c, RuntimeDocker
	case strings.HasPrefix(parent, "pod"):
		for _, a := range parts[:i] {
			if strings.HasPrefix(a, "kubepods") {
				return c, RuntimeUnknown
			}
		}
	}
	return "", ""
}

// isContainerID reports whether s is 64 lowercase hex digits.
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ContainerFromRootfs names the container whose root a process moved to
// with pivot_root, for captures without cgroups (auditd logs): the id in
// a runtime's bundle path when the path is one, else "rootfs:" and the
// path itself, which is all audit tells. Recognised bundle paths:
//
//	…/io.containerd.runtime.v2.task/moby/<id>/rootfs     docker
//	…/io.containerd.runtime.v1.linux/moby/<id>/rootfs    docker
//	…/io.containerd.runtime.v2.task/<namespace>/<id>/rootfs   containerd
//	…/overlay-containers/<id>/…                          podman or cri-o: runtime unknown
//
// A 64-hex component elsewhere (an overlay layer's directory) is not a
// container id, and is not taken for one.
func ContainerFromRootfs(rootfs string) (id, runtime string) {
	parts := strings.Split(rootfs, "/")
	for i := len(parts) - 1; i >= 2; i-- {
		if !isContainerID(parts[i]) {
			continue
		}
		switch parent, grand := parts[i-1], parts[i-2]; {
		case strings.HasPrefix(grand, "io.containerd.runtime.") && parent == "moby":
			return parts[i], RuntimeDocker
		case strings.HasPrefix(grand, "io.containerd.runtime."):
			return parts[i], RuntimeContainerd
		case parent == "overlay-containers":
			return parts[i], RuntimeUnknown
		}
	}
	return "rootfs:" + rootfs, RuntimeUnknown
}
