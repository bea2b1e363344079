package analyze

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"proctrail/analyze/internal/procstore"
)

// Network entries: socket, connect, bind, listen, accept and accept4, and
// sendto and sendmsg when they carry an address. The address is the
// event's SOCKADDR record (the kernel logs the sockaddr a call copies
// from the caller, or to it: an accept's peer); listen has none, and
// takes the address its socket was bound to from the fd table, where
// socket() and accept() put each socket with its family and protocol.
//
// Entries go to the spool as they are made, like file accesses, each a
// record that links to the next of its process:
//
//	next  int64   offset+1 of the process's next entry; 0: none yet
//	time  int64
//	port  uvarint
//	op, family, proto, addr, path, error: each a uvarint length and the bytes
//
// so that a process that sends a million datagrams costs the spool, not
// memory.
const (
	netNext  = 0  // where next is in an entry's record
	netFixed = 16 // the integers' bytes before port
)

// sockAddr is a SOCKADDR record's address.
type sockAddr struct {
	family string
	addr   string
	port   int
	path   string
}

// Linux's address families, protocols and flags (the generic ABI's).
const (
	afUnix      = 1
	afInet      = 2
	afInet6     = 10
	afNetlink   = 16
	afPacket    = 17
	sockCloexec = 0x80000
	// auditArchLE is the little-endian flag of an AUDIT_ARCH_* value: the
	// byte order of a sockaddr's host-order fields.
	auditArchLE = 0x40000000
	errEAGAIN   = "EAGAIN"
)

var familyNames = map[uint64]string{
	0: "unspec", afUnix: "unix", afInet: "inet", afInet6: "inet6", afNetlink: "netlink", afPacket: "packet",
	4: "ipx", 5: "appletalk", 9: "x25", 29: "can", 31: "bluetooth", 38: "alg", 40: "vsock", 44: "xdp",
}

// familyName names an address family: "inet", or "family N".
func familyName(f uint64) string {
	if s, ok := familyNames[f]; ok {
		return s
	}
	return "family " + strconv.FormatUint(f, 10)
}

var sockTypes = map[uint64]string{1: "stream", 2: "dgram", 3: "raw", 4: "rdm", 5: "seqpacket", 6: "dccp", 10: "packet"}

var ipProtos = map[uint64]string{1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp", 136: "udplite", 255: "raw", 262: "mptcp"}

var netlinkProtos = map[uint64]string{
	0: "route", 2: "usersock", 3: "firewall", 4: "sock_diag", 5: "nflog", 6: "xfrm", 7: "selinux",
	8: "iscsi", 9: "audit", 10: "fib_lookup", 11: "connector", 12: "netfilter", 13: "ip6_fw",
	14: "dnrtmsg", 15: "kobject_uevent", 16: "generic", 18: "scsitransport", 19: "ecryptfs",
	20: "rdma", 21: "crypto", 22: "smc",
}

// protoName names the protocol of socket(family, typ, proto).
func protoName(family, typ, proto uint64) string {
	st := typ & 0xf
	stName, ok := sockTypes[st]
	if !ok {
		stName = "type " + strconv.FormatUint(st, 10)
	}
	switch family {
	case afInet, afInet6:
		name := ipProtos[proto]
		if proto == 0 {
			switch st {
			case 1:
				name = "tcp"
			case 2:
				name = "udp"
			}
		}
		if name == "" {
			name = "proto " + strconv.FormatUint(proto, 10)
		}
		if st == 3 && name != "raw" {
			name = "raw " + name
		}
		return name
	case afNetlink:
		if s, ok := netlinkProtos[proto]; ok {
			return s
		}
		return "proto " + strconv.FormatUint(proto, 10)
	case afPacket:
		// The protocol is an ethertype in network byte order.
		et := uint16(proto)>>8 | uint16(proto)<<8
		if et == 3 {
			return stName + " all"
		}
		return fmt.Sprintf("%s 0x%04x", stName, et)
	}
	return stName
}

// parseSockaddr reads a SOCKADDR record: saddr= is the sockaddr's bytes
// in hex, whose host-order fields are in the byte order of arch (the
// SYSCALL record's, hex).
func parseSockaddr(text, arch string) (sockAddr, bool) {
	var raw string
	f := newFields(text)
	for f.next() {
		if f.key == "saddr" {
			raw = f.val
			break
		}
	}
	b, err := hex.DecodeString(raw)
	if err != nil || len(b) < 2 {
		return sockAddr{}, false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if a, err := parseHex(arch, 32); err == nil && a&auditArchLE == 0 {
		bo = binary.BigEndian
	}
	fam := uint64(bo.Uint16(b))
	sa := sockAddr{family: familyName(fam)}
	switch fam {
	case afInet:
		if len(b) < 8 {
			return sa, true
		}
		sa.port = int(binary.BigEndian.Uint16(b[2:]))
		sa.addr = netip.AddrFrom4([4]byte(b[4:8])).String()
	case afInet6:
		if len(b) < 24 {
			return sa, true
		}
		sa.port = int(binary.BigEndian.Uint16(b[2:]))
		a := netip.AddrFrom16([16]byte(b[8:24]))
		if len(b) >= 28 {
			if scope := bo.Uint32(b[24:]); scope != 0 {
				a = a.WithZone(strconv.FormatUint(uint64(scope), 10))
			}
		}
		sa.addr = a.String()
	case afUnix:
		p := b[2:]
		switch {
		case len(p) == 0:
			// Unnamed (a bind of the family alone autobinds an
			// abstract name the kernel picks).
		case p[0] == 0:
			// Abstract: every byte of the length given is the name.
			sa.path = "@" + string(p[1:])
		default:
			if i := strings.IndexByte(string(p), 0); i >= 0 {
				p = p[:i]
			}
			sa.path = string(p)
		}
	case afNetlink:
		if len(b) >= 8 {
			sa.port = int(bo.Uint32(b[4:]))
		}
	}
	return sa, true
}

// auditNet applies a network syscall.
func (b *builder) auditNet(p *proc, c *call) {
	e := NetEntry{Op: c.sc, Time: c.t}
	if !c.success {
		e.Error = c.errno
	}
	fd := fdArg(c.a[0])
	var sk *procstore.Socket
	if c.sc != "socket" {
		if ent := b.lookupEntry(p, fd); ent != nil {
			sk = ent.Sock
		}
	}
	if sk != nil {
		e.Family, e.Proto = sk.Family, sk.Proto
	}
	switch c.sc {
	case "socket":
		e.Family, e.Proto = familyName(c.a[0]), protoName(c.a[0], c.a[1], c.a[2])
		if c.success && c.exitNum && c.exit >= 0 {
			b.setFD(p, int32(c.exit), &procstore.FD{Sock: &procstore.Socket{Family: e.Family, Proto: e.Proto},
				Cloexec: c.a[1]&sockCloexec != 0, Time: c.t}, c.t)
		}
	case "listen":
		if sk != nil && sk.Bound {
			e.Addr, e.Port, e.Path = sk.Addr, sk.Port, sk.Path
		}
	case "accept", "accept4":
		e.Op = "accept"
		if e.Error == errEAGAIN {
			// A non-blocking server found its queue empty.
			return
		}
	case "sendto", "sendmsg":
		if c.sock == nil {
			// On a connected socket: its connect told the address.
			return
		}
	case "connect", "bind":
	default:
		return
	}
	if c.sock != nil {
		e.Family, e.Addr, e.Port, e.Path = c.sock.family, c.sock.addr, c.sock.port, c.sock.path
		if e.Path != "" && e.Path[0] != '/' && e.Path[0] != '@' {
			dir := p.Cwd
			if c.hasCwd {
				dir = c.cwd
			}
			e.Path = b.joinPath(dir, e.Path)
		}
		if sk != nil && sk.Family != e.Family {
			// Not the socket the table thought (or AF_UNSPEC to
			// disconnect): its protocol is not known either.
			e.Proto = ""
		}
	}
	if c.success {
		switch c.sc {
		case "bind":
			if sk == nil {
				// Created out of view: what bind tells is still worth
				// keeping for its listen.
				sk = &procstore.Socket{Family: e.Family}
				b.setFD(p, fd, &procstore.FD{Sock: sk, Time: c.t}, c.t)
			}
			sk.Bound, sk.Addr, sk.Port, sk.Path = true, e.Addr, e.Port, e.Path
		case "accept", "accept4":
			if c.exitNum && c.exit >= 0 {
				ns := &procstore.Socket{Family: e.Family, Proto: e.Proto}
				b.setFD(p, int32(c.exit), &procstore.FD{Sock: ns, Cloexec: c.sc == "accept4" && c.a[3]&sockCloexec != 0, Time: c.t}, c.t)
			}
		}
	}
	b.addNet(p, &e)
}

// addNet appends e to p's network entries in the spool.
func (b *builder) addNet(p *proc, e *NetEntry) {
	rec := b.fileBuf[:0]
	rec = binary.LittleEndian.AppendUint64(rec, 0)
	rec = binary.LittleEndian.AppendUint64(rec, uint64(e.Time))
	rec = binary.AppendUvarint(rec, uint64(uint32(e.Port)))
	for _, s := range [...]string{e.Op, e.Family, e.Proto, e.Addr, e.Path, e.Error} {
		rec = binary.AppendUvarint(rec, uint64(len(s)))
		rec = append(rec, s...)
	}
	b.fileBuf = rec
	b.chain(rec, &p.FirstNet, &p.LastNet)
}

// netReader reads network entries back from a spool.
type netReader struct {
	sp      spoolReader
	scratch NetEntry
}

// read decodes the entry at off into a NetEntry valid until the next
// read, and returns the offset+1 of the next entry of its process (0:
// none).
func (r *netReader) read(off int64) (*NetEntry, int64) {
	d := r.sp.Record(off)
	if len(d) < netFixed {
		r.sp.Corrupt(off)
		return nil, 0
	}
	e := &r.scratch
	next := int64(binary.LittleEndian.Uint64(d[netNext:]))
	e.Time = int64(binary.LittleEndian.Uint64(d[8:]))
	d = d[netFixed:]
	port, k := binary.Uvarint(d)
	if k <= 0 || port > 1<<32-1 {
		r.sp.Corrupt(off)
		return nil, 0
	}
	e.Port = int(port)
	if _, ok := readStrings(r.sp, d[k:], &e.Op, &e.Family, &e.Proto, &e.Addr, &e.Path, &e.Error); !ok {
		r.sp.Corrupt(off)
		return nil, 0
	}
	return e, next
}

// spooledNet yields the network entries whose chain begins at first (a
// process's FirstNet), in the order they were made, times not clamped.
// The NetEntry is valid until the next.
func (b *builder) spooledNet(first int64) func(yield func(*NetEntry) bool) {
	return spooledNets(b.spool, first)
}

// spooledNets is spooledNet, read with sp.
func spooledNets(sp spoolReader, first int64) func(yield func(*NetEntry) bool) {
	r := &netReader{sp: sp}
	return chained(first, r.read)
}

// outNets yields, read with sp, the network entries whose chain begins
// at first, of a process whose output form is out, their times clamped
// to its life.
func outNets(sp spoolReader, first int64, out *Process) func(yield func(*NetEntry) bool) {
	return func(yield func(*NetEntry) bool) {
		for e := range spooledNets(sp, first) {
			e.Time = clampTo(e.Time, out.Start, out.End)
			if !yield(e) {
				return
			}
		}
	}
}

// addrFilter is a parsed Options.Addr.
type addrFilter struct {
	prefix  netip.Prefix // valid: the address must be in it
	port    int          // nonzero: the port must be it
	pattern string       // a unix path pattern
}

// parseAddrFilter parses Options.Addr: a CIDR or an address, with or
// without a port ("10.0.0.1:53", "[::1]:8080"), ":PORT" alone, or a unix
// socket path pattern: "/…" as PathGlob matches a path, "@…" an abstract
// name (path.Match syntax).
func parseAddrFilter(s string) (*addrFilter, error) {
	bad := func(why string) error { return fmt.Errorf("analyze: address filter %q: %s", s, why) }
	switch {
	case s == "":
		return nil, bad("empty")
	case s[0] == '/' || s[0] == '@':
		if _, err := path.Match(s, "x"); err != nil {
			return nil, bad(err.Error())
		}
		return &addrFilter{pattern: s}, nil
	case s[0] == ':' && strings.Trim(s[1:], "0123456789") == "":
		// ":PORT" (an IPv6 address such as "::1" has more colons).
		port, err := strconv.ParseUint(s[1:], 10, 16)
		if err != nil || port == 0 {
			return nil, bad("want :PORT, a port from 1 to 65535")
		}
		return &addrFilter{port: int(port)}, nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return &addrFilter{prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.WithZone("")
		return &addrFilter{prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		a := ap.Addr().WithZone("")
		return &addrFilter{prefix: netip.PrefixFrom(a, a.BitLen()), port: int(ap.Port())}, nil
	}
	return nil, bad("want a CIDR, an address, ADDRESS:PORT, :PORT, or a unix socket path (/… or @…)")
}

// match reports whether e is to or from the filter's address.
func (f *addrFilter) match(e *NetEntry) bool {
	if f.pattern != "" {
		if e.Family != "unix" || e.Path == "" {
			return false
		}
		if f.pattern[0] == '@' {
			ok, _ := path.Match(f.pattern, e.Path)
			return ok
		}
		return e.Path[0] == '/' && globMatch(f.pattern, e.Path)
	}
	if e.Addr == "" || (e.Family != "inet" && e.Family != "inet6") {
		return false
	}
	if f.port != 0 && e.Port != f.port {
		return false
	}
	if !f.prefix.IsValid() {
		return true
	}
	a, err := netip.ParseAddr(e.Addr)
	if err != nil {
		return false
	}
	a = a.WithZone("")
	if f.prefix.Addr().Is4() {
		a = a.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	}
	return f.prefix.Contains(a)
}

// errnoName names a Linux errno (the generic ABI's numbers: x86, arm,
// arm64, riscv, s390, ppc share them; mips, sparc and alpha do not);
// others are "errno N".
func errnoName(n int64) string {
	if n > 0 && n < int64(len(errnoNames)) && errnoNames[n] != "" {
		return errnoNames[n]
	}
	return "errno " + strconv.FormatInt(n, 10)
}

var errnoNames = [...]string{
	1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC",
	9: "EBADF", 10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 15: "ENOTBLK",
	16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
	23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE",
	30: "EROFS", 31: "EMLINK", 32: "EPIPE", 33: "EDOM", 34: "ERANGE", 35: "EDEADLK", 36: "ENAMETOOLONG",
	37: "ENOLCK", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 42: "ENOMSG", 43: "EIDRM",
	61: "ENODATA", 62: "ETIME", 71: "EPROTO", 74: "EBADMSG", 75: "EOVERFLOW", 84: "EILSEQ",
	88: "ENOTSOCK", 89: "EDESTADDRREQ", 90: "EMSGSIZE", 91: "EPROTOTYPE", 92: "ENOPROTOOPT",
	93: "EPROTONOSUPPORT", 94: "ESOCKTNOSUPPORT", 95: "EOPNOTSUPP", 96: "EPFNOSUPPORT",
	97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 100: "ENETDOWN", 101: "ENETUNREACH",
	102: "ENETRESET", 103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS", 106: "EISCONN",
	107: "ENOTCONN", 108: "ESHUTDOWN", 109: "ETOOMANYREFS", 110: "ETIMEDOUT", 111: "ECONNREFUSED",
	112: "EHOSTDOWN", 113: "EHOSTUNREACH", 114: "EALREADY", 115: "EINPROGRESS", 116: "ESTALE",
	121: "EREMOTEIO", 122: "EDQUOT", 125: "ECANCELED", 126: "ENOKEY", 127: "EKEYEXPIRED",
	128: "EKEYREVOKED", 129: "EKEYREJECTED", 130: "EOWNERDEAD", 131: "ENOTRECOVERABLE",
	132: "ERFKILL", 133: "EHWPOISON",
}
