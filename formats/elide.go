package formats

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// Elision of predictable audit records (see "Elided audit records" in the
// package documentation). The Writer and the Reader run the same
// elideState over a frame's audit messages in order, so what the Writer
// predicts for a record is exactly what the Reader restores; the Writer
// elides a record only when that prediction equals the record's bytes.

const (
	// MaxElided bounds the audit messages elided after one packet.
	MaxElided = 64

	auditSyscall = 1300 // AUDIT_SYSCALL: starts an event's slots
	auditEOE     = 1320 // AUDIT_EOE: its text is the event's header alone

	// maxEventTypes bounds the distinct record types of one event that
	// have slots; messages of further types have none.
	maxEventTypes = 16
	// maxPrefix bounds the search for the end of an audit header,
	// "audit(SECONDS.MS:SERIAL): ".
	maxPrefix = 64

	elidedPrefix = commentPrefix + "elided="
)

// span locates bytes in the frame buffer the state is run over.
type span struct{ off, n int32 }

func (s span) of(frame []byte) []byte { return frame[s.off : s.off+s.n] }

// bodySpan is the body of the audit message frame[off:end], whose header
// prefix is prefix bytes long: what follows its nlmsghdr and header.
func bodySpan(off, end, prefix int) span {
	return span{int32(off + 16 + prefix), int32(end - off - 16 - prefix)}
}

// slotKey names the body a message is predicted from: its event's key,
// its type and how many messages of that type the event had before it.
type slotKey struct {
	key int32
	typ uint16
	ord uint32
}

// elideState is the prediction state of one frame. Spans point into the
// frame's uncompressed bytes, which stay put until the frame ends: the
// Writer's buffer or the Reader's decoded frame. Its map and tables keep
// their room across frames, so it allocates only when a frame brings more
// slots or keys than any frame before.
type elideState struct {
	ev     span  // header prefix of the current event; n 0: none
	evKey  int32 // key id of the current event
	types  [maxEventTypes]uint16
	counts [maxEventTypes]uint32
	ntypes int
	keys   map[string]int32
	slots  []keySlots // by key id
	more   map[slotKey]span
	kbuf   []byte
	// memo holds the key ids of SYSCALL bodies of the frame, the last
	// one of each length modulo keyMemos: a flood repeats the same body
	// (call, arguments, result, process), whose key is then not looked
	// for again. A span of n 0 is empty.
	memo [keyMemos]keyMemo
}

// keyMemos is the number of SYSCALL bodies whose key id elideState
// keeps.
const keyMemos = 16

// keyMemo is a SYSCALL body of the frame and its key id.
type keyMemo struct {
	body span
	id   int32
}

// keySlots are the slots of one key: for each of its types (the first
// maxEventTypes stored; the slots of further ones are in
// elideState.more), the bodies by ordinal, a span of off -1 where none
// was stored. A lookup costs a scan of a few types and an index, not a
// hash of the slot.
type keySlots struct {
	types  []uint16
	bodies [][]span
}

// noSpan marks a slot with no body.
var noSpan = span{off: -1}

func (s *elideState) reset() {
	s.ev = span{}
	s.memo = [keyMemos]keyMemo{} // its spans are of the frame that ends
	// Emptied in place, to their length: store takes an entry past it
	// only as one emptied here.
	for i := range s.slots {
		ks := &s.slots[i]
		for t := range ks.bodies {
			ks.bodies[t] = ks.bodies[t][:0]
		}
		ks.types, ks.bodies = ks.types[:0], ks.bodies[:0]
	}
	clear(s.more)
	if len(s.keys) > 4096 {
		s.keys = nil // bound a long run's distinct keys
		s.slots = s.slots[:0]
	}
}

// auditText splits an audit message (nlmsghdr then text) into its type,
// the length of its header prefix "audit(…): " after the nlmsghdr (0 when
// it has none).
func auditText(msg []byte) (typ uint16, prefix int) {
	if len(msg) < 16 {
		return 0, 0
	}
	typ = binary.LittleEndian.Uint16(msg[4:])
	text := msg[16:]
	if !bytes.HasPrefix(text, []byte("audit(")) {
		return typ, 0
	}
	// bytes.Index(head, "): "), by its rare first byte: bytes.Index
	// starts over at each ')' candidate no quicker, and was a tenth of
	// the recorder's time writing a message.
	head := text[:min(len(text), maxPrefix)]
	for i := 0; ; {
		j := bytes.IndexByte(head[i:], ')')
		if j < 0 {
			return typ, 0
		}
		i += j
		if i+2 < len(head) && head[i+1] == ':' && head[i+2] == ' ' {
			return typ, i + 3
		}
		i++
	}
}

// keySyscall is the key of a SYSCALL record's syscall number.
var keySyscall = []byte("syscall=")

// field returns the value of the first field name= of an audit record's
// body: at its start or after a space, up to the next space or the end.
//
// name is a []byte, not a string: in the binary built with the profile
// (cmd/proctrail/default.pgo), []byte(name) went to the heap at every
// call, 1.3% of an analysis's CPU.
func field(body, name []byte) ([]byte, bool) {
	for i := 0; i < len(body); {
		j := bytes.Index(body[i:], name)
		if j < 0 {
			return nil, false
		}
		j += i
		end := j + len(name)
		if j == 0 || body[j-1] == ' ' {
			v := body[end:]
			if k := bytes.IndexByte(v, ' '); k >= 0 {
				v = v[:k]
			}
			return v, true
		}
		i = end
	}
	return nil, false
}

// lastField returns the value of the last field name= of an audit
// record's body that follows a space (bytes.LastIndex(body, " name=")),
// up to the next space or the end. exe= is near the end of a SYSCALL
// record, after many fields beginning with an e: searching from the end
// for it took a fifth of the Reader's time.
func lastField(body []byte, name string) ([]byte, bool) {
	for i := len(body); ; {
		j := bytes.LastIndexByte(body[:i], '=')
		if j < 0 {
			return nil, false
		}
		if k := j - len(name); k >= 1 && body[k-1] == ' ' && string(body[k:j]) == name {
			v := body[j+1:]
			if e := bytes.IndexByte(v, ' '); e >= 0 {
				v = v[:e]
			}
			return v, true
		}
		i = j
	}
}

// advance steps the state over the audit message frame[off:end], of type
// typ and header prefix length prefix (see auditText), and returns the
// message's slot, if it has one. Every audit message of the frame,
// restored ones included, passes here once, in order.
func (s *elideState) advance(frame []byte, off, end int, typ uint16, prefix int) (slotKey, bool) {
	if typ == auditSyscall {
		s.ev = span{} // ends the event, whatever follows
	}
	if prefix == 0 || typ == auditEOE {
		return slotKey{}, false
	}
	text := off + 16
	if typ == auditSyscall {
		body := frame[text+prefix : end]
		m := &s.memo[len(body)%keyMemos]
		if m.body.n != 0 && int(m.body.off+m.body.n) <= len(frame) && bytes.Equal(m.body.of(frame), body) {
			s.ev, s.evKey, s.ntypes = span{int32(text), int32(prefix)}, m.id, 0
			return slotKey{}, false
		}
		sc, ok1 := field(body, keySyscall)
		exe, ok2 := lastField(body, "exe")
		if !ok1 || !ok2 {
			return slotKey{}, false
		}
		// The pair, unambiguously: sc's length, sc, exe.
		s.kbuf = append(append(binary.LittleEndian.AppendUint32(s.kbuf[:0], uint32(len(sc))), sc...), exe...)
		id, ok := s.keys[string(s.kbuf)]
		if !ok {
			if s.keys == nil {
				s.keys = make(map[string]int32)
			}
			id = int32(len(s.keys))
			s.keys[string(s.kbuf)] = id
		}
		m.body, m.id = span{int32(text + prefix), int32(len(body))}, id
		s.ev, s.evKey, s.ntypes = span{int32(text), int32(prefix)}, id, 0
		return slotKey{}, false
	}
	if s.ev.n == 0 || !bytes.Equal(frame[text:text+prefix], s.ev.of(frame)) {
		return slotKey{}, false
	}
	for i := range s.ntypes {
		if s.types[i] == typ {
			s.counts[i]++
			return slotKey{s.evKey, typ, s.counts[i]}, true
		}
	}
	if s.ntypes == maxEventTypes {
		return slotKey{}, false
	}
	s.types[s.ntypes], s.counts[s.ntypes] = typ, 0
	s.ntypes++
	return slotKey{s.evKey, typ, 0}, true
}

// store makes body (a span of the frame) the slot's prediction.
func (s *elideState) store(k slotKey, body span) {
	for int(k.key) >= len(s.slots) {
		if len(s.slots) < cap(s.slots) {
			s.slots = s.slots[:len(s.slots)+1]
		} else {
			s.slots = append(s.slots, keySlots{})
		}
	}
	ks := &s.slots[k.key]
	t := slices.Index(ks.types, k.typ)
	if t < 0 {
		if len(ks.types) == maxEventTypes {
			if s.more == nil {
				s.more = make(map[slotKey]span)
			}
			s.more[k] = body
			return
		}
		t = len(ks.types)
		ks.types = append(ks.types, k.typ)
		if len(ks.bodies) < cap(ks.bodies) {
			ks.bodies = ks.bodies[:t+1]
		} else {
			ks.bodies = append(ks.bodies, nil)
		}
	}
	b := ks.bodies[t]
	for uint32(len(b)) <= k.ord {
		b = append(b, noSpan)
	}
	b[k.ord] = body
	ks.bodies[t] = b
}

// lookup returns the slot's body, if one was stored.
func (s *elideState) lookup(k slotKey) (span, bool) {
	if int(k.key) >= len(s.slots) {
		return span{}, false
	}
	ks := &s.slots[k.key]
	t := slices.Index(ks.types, k.typ)
	if t < 0 {
		b, ok := s.more[k]
		return b, ok
	}
	if k.ord >= uint32(len(ks.bodies[t])) {
		return span{}, false
	}
	b := ks.bodies[t][k.ord]
	return b, b.off >= 0
}

// predict appends to dst the message of type typ that the state restores
// after the audit message p, whose header prefix is prefix bytes long:
// p's nlmsghdr with the type and length set, p's header prefix, then the
// slot's body (none for EOE). ok is false when there is no prediction.
func (s *elideState) predict(dst, frame, p []byte, prefix int, typ uint16, k slotKey, slotted bool) (_ []byte, ok bool) {
	var body []byte
	switch {
	case typ == auditEOE:
	case slotted:
		b, found := s.lookup(k)
		if !found {
			return dst, false
		}
		body = b.of(frame)
	default:
		return dst, false
	}
	if prefix == 0 {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, p[:16+prefix]...)
	dst = append(dst, body...)
	n := len(dst) - start
	// The same length convention as p: the kernel's unicast gives
	// nlmsg_len without the 16-byte header, the multicast with it.
	delta := uint32(len(p)) - binary.LittleEndian.Uint32(p)
	binary.LittleEndian.PutUint32(dst[start:], uint32(n)-delta)
	binary.LittleEndian.PutUint16(dst[start+4:], typ)
	return dst, true
}

// parseType parses a record type: 1 to 5 decimal digits, at most 65535.
func parseType(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 {
		return 0, false
	}
	t := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		t = t*10 + int(c-'0')
	}
	return uint16(t), t <= 0xffff
}

// parseElided parses the value of a marker after its prefix into types.
func parseElided(v []byte, types *[MaxElided]uint16) (int, error) {
	n := 0
	for len(v) > 0 || n == 0 {
		i := bytes.IndexByte(v, ',')
		if i < 0 {
			i = len(v)
		}
		t, ok := parseType(v[:i])
		if !ok || t == 0 || t == auditSyscall {
			return 0, fmt.Errorf("elision marker %q: bad record type %q: %w", v, v[:i], ErrCorrupt)
		}
		if n == MaxElided {
			return 0, fmt.Errorf("elision marker of more than %d records: %w", MaxElided, ErrCorrupt)
		}
		types[n] = uint16(t)
		n++
		if i == len(v) {
			break
		}
		v = v[i+1:]
		if len(v) == 0 {
			return 0, fmt.Errorf("elision marker ends with a comma: %w", ErrCorrupt)
		}
	}
	return n, nil
}
