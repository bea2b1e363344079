package formats

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ReaderOptions configure a Reader. A nil *ReaderOptions or a zero field
// means the default documented on the field.
type ReaderOptions struct {
	// Name is the file name used in errors and Damage. Default "".
	Name string
	// MaxFrameSize bounds a frame's compressed and uncompressed sizes, and
	// so the Reader's memory. Default and upper limit MaxFrameSize.
	MaxFrameSize int
}

// Damage describes bytes of a capture file the Reader could not read.
type Damage struct {
	Offset int64 // byte offset in the compressed file
	Length int64 // bytes lost
	Err    error // a *CorruptError
}

// maxDamage bounds the Damage list; later damage is only counted.
const maxDamage = 1000

// maxInterfaces bounds the interfaces of one section.
const maxInterfaces = 256

type iface struct {
	src   Source // numSources when the interface is not one of ours
	sll   bool   // packets start with a Linux cooked header
	scale int64  // nanoseconds per timestamp unit
}

// ts reads a block's 8-byte timestamp in nanoseconds.
func (ifc *iface) ts(b []byte) int64 {
	raw := uint64(binary.LittleEndian.Uint32(b))<<32 | uint64(binary.LittleEndian.Uint32(b[4:]))
	return int64(raw) * ifc.scale
}

// Reader streams the records of one capture file. Its memory is bounded by
// two frames, whatever the file's size. Damage does not stop it: a corrupt
// frame is skipped to the next one and a truncated tail ends the stream;
// both are reported by Damage, UnreadableBytes and TruncatedBytes.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	br       *bufio.Reader
	name     string
	maxFrame int
	dec      *zstd.Decoder

	off      int64 // file offset of the next unread byte
	frameOff int64 // file offset of the frame being parsed
	cbuf     []byte
	ubuf     []byte
	pos      int
	hb       [indexLen]byte

	hdr    Header
	ifaces []iface
	stats  [numSources]Stats
	seen   [numSources]bool

	damage     []Damage
	unreadable int64
	truncated  int64
	frames     int
	err        error

	// Elision (elide.go): the frame's state, the last audit packet read
	// (pMsg, pEnd, pPrefix, pTime; pPos its block) and the messages its
	// marker still has to restore, pend[pendI:pendN], built in rbuf.
	el           elideState
	elOn         bool // the frame has had a marker: el is kept
	pMsg, pEnd   int
	pPrefix      int
	pPos         int
	pTime        int64
	pend         [MaxElided]uint16
	pendI, pendN int
	rbuf         []byte
	restored     uint64
}

// NewReader checks that r begins with a capture frame, reads the section
// header and returns a Reader positioned at the first record.
func NewReader(r io.Reader, opts *ReaderOptions) (*Reader, error) {
	var o ReaderOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxFrameSize <= 0 || o.MaxFrameSize > MaxFrameSize {
		o.MaxFrameSize = MaxFrameSize
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(o.MaxFrameSize)),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("formats: zstd decoder: %w", err)
	}
	cr := &Reader{br: bufio.NewReaderSize(r, 64<<10), name: o.Name, maxFrame: o.MaxFrameSize, dec: dec}
	n, err := io.ReadFull(cr.br, cr.hb[:])
	cr.off += int64(n)
	if err != nil || !cr.validIndex() {
		dec.Close()
		if n == 0 && err == io.EOF {
			return nil, &CorruptError{File: o.Name, Offset: 0, Err: fmt.Errorf("empty file: %w", ErrTruncated)}
		}
		return nil, &CorruptError{File: o.Name, Offset: 0, Err: fmt.Errorf("not a proctrail capture (no frame index at the start): %w", ErrCorrupt)}
	}
	if err := cr.readFrameBody(); err != nil {
		if err == io.EOF {
			// A truncated first frame: the file holds nothing readable, but
			// it is still a capture; Next reports io.EOF.
			cr.err = io.EOF
			return cr, nil
		}
		if err == errSkipFrame {
			// The header frame is corrupt (reported as damage): read on,
			// with the recording's interfaces standing in (see ifaceFor).
			cr.ubuf, cr.pos = cr.ubuf[:0], 0
			return cr, nil
		}
		return nil, err
	}
	// Read the section header and interfaces eagerly, so Header is
	// meaningful before the first Next.
	var rec Record
	for cr.pos < len(cr.ubuf) {
		typ := binary.LittleEndian.Uint32(cr.ubuf[cr.pos:])
		if typ != blockSHB && typ != blockIDB {
			break
		}
		if cr.nextBlock(&rec) {
			break
		}
	}
	return cr, nil
}

// Header returns the facts of the file's section header. It is the zero
// Header when the header frame was damaged.
func (r *Reader) Header() Header { return r.hdr }

// Stats returns src's counters from the latest interface statistics block
// read so far; ok is false if none was read.
func (r *Reader) Stats(src Source) (s Stats, ok bool) {
	if src >= numSources {
		return Stats{}, false
	}
	return r.stats[src], r.seen[src]
}

// Close releases the decoder. The underlying reader is not closed.
func (r *Reader) Close() error {
	r.dec.Close()
	if r.err == nil {
		r.err = errReaderClosed
	}
	return nil
}

var errReaderClosed = errors.New("formats: reader closed")

// Damage returns the damage found so far, at most 1000 entries; the
// returned slice is the caller's.
func (r *Reader) Damage() []Damage { return append([]Damage(nil), r.damage...) }

// UnreadableBytes returns how many bytes of the file could not be read so
// far: corrupt frames, garbage between frames and a truncated tail.
func (r *Reader) UnreadableBytes() int64 { return r.unreadable }

// TruncatedBytes returns the length of an incomplete frame at the end of
// the file, once Next has returned io.EOF.
func (r *Reader) TruncatedBytes() int64 { return r.truncated }

// Frames returns the number of frames decoded so far.
func (r *Reader) Frames() int { return r.frames }

// FrameOffset returns the file offset of the frame holding the record
// returned last.
func (r *Reader) FrameOffset() int64 { return r.frameOff }

// Restored returns how many audit messages were restored so far from
// elision markers (they are returned by Next like the others).
func (r *Reader) Restored() uint64 { return r.restored }

// Next returns the next packet record, elided audit messages restored in
// their place. Its Data aliases the Reader's buffer and is valid until the
// next call of Next. Next returns io.EOF at
// the end of the file, also after a truncated tail; any other error is
// returned again by every later call.
func (r *Reader) Next() (rec Record, err error) {
	err = r.ReadRecord(&rec)
	return rec, err
}

// ReadRecord is Next into *rec (the zero Record with an error). The
// record is written in place, down from the block it is read from: a
// Record returned by value at each level was stored field by field and
// loaded back whole at the next, which stalls on the stores.
func (r *Reader) ReadRecord(rec *Record) error {
	for {
		if r.err != nil {
			*rec = Record{}
			return r.err
		}
		if r.pendI < r.pendN {
			if r.restore(rec) {
				return nil
			}
			continue
		}
		if r.pos < len(r.ubuf) {
			if r.nextBlock(rec) {
				return nil
			}
			continue
		}
		if err := r.readFrame(); err != nil {
			r.err = err
		}
	}
}

func (r *Reader) addDamage(off, n int64, err error) {
	r.unreadable += n
	if len(r.damage) < maxDamage {
		r.damage = append(r.damage, Damage{Offset: off, Length: n, Err: &CorruptError{File: r.name, Offset: off, Err: err}})
	}
}

func (r *Reader) validIndex() bool {
	b := r.hb[:]
	return binary.LittleEndian.Uint32(b) == indexMagic &&
		binary.LittleEndian.Uint32(b[4:]) == indexLen-8 &&
		string(b[8:12]) == indexMarker &&
		binary.LittleEndian.Uint32(b[20:]) == crc32.Checksum(b[8:20], crcTable)
}

// readFrame reads the next frame index and frame, resynchronising on the
// next valid index after garbage. It returns io.EOF at the end of the file.
func (r *Reader) readFrame() error {
	for {
		start := r.off
		n, err := io.ReadFull(r.br, r.hb[:])
		r.off += int64(n)
		if n == 0 && err == io.EOF {
			return io.EOF
		}
		if err != nil {
			r.truncated = int64(n)
			r.addDamage(start, int64(n), fmt.Errorf("frame index cut after %d bytes: %w", n, ErrTruncated))
			return io.EOF
		}
		if !r.validIndex() {
			if err := r.resync(start); err != nil {
				return err
			}
		}
		if err := r.readFrameBody(); err != errSkipFrame {
			return err
		}
	}
}

var errSkipFrame = errors.New("skip frame")

// frameSlack is the unit frame buffers are allocated in.
const frameSlack = 64 << 10

// resync slides a window over the file until it holds a valid index.
func (r *Reader) resync(start int64) error {
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			n := r.off - start
			r.addDamage(start, n, fmt.Errorf("%d bytes without a frame index: %w", n, ErrCorrupt))
			return io.EOF
		}
		r.off++
		copy(r.hb[:], r.hb[1:])
		r.hb[indexLen-1] = c
		if r.validIndex() {
			n := r.off - indexLen - start
			r.addDamage(start, n, fmt.Errorf("%d bytes without a frame index: %w", n, ErrCorrupt))
			return nil
		}
	}
}

// readFrameBody reads and decodes the frame whose index is in hb. It
// returns errSkipFrame after recording a corrupt frame.
func (r *Reader) readFrameBody() error {
	start := r.off - indexLen
	clen := int64(binary.LittleEndian.Uint32(r.hb[12:]))
	ulen := int64(binary.LittleEndian.Uint32(r.hb[16:]))
	if clen > int64(r.maxFrame) || ulen > int64(r.maxFrame) {
		// The index checksum held, so this is a frame we may not read;
		// skip it whole.
		r.addDamage(start, indexLen, fmt.Errorf("frame of %d compressed, %d uncompressed bytes exceeds %d: %w", clen, ulen, r.maxFrame, ErrTooLarge))
		if _, err := r.discard(clen); err != nil {
			r.truncated = r.off - start
			return io.EOF
		}
		r.unreadable += clen
		return errSkipFrame
	}
	if int64(cap(r.cbuf)) < clen {
		r.cbuf = make([]byte, min(clen+frameSlack-clen%frameSlack, int64(r.maxFrame)))
	}
	r.cbuf = r.cbuf[:clen]
	n, err := io.ReadFull(r.br, r.cbuf)
	r.off += int64(n)
	if err != nil {
		got := r.off - start
		r.truncated = got
		r.addDamage(start, got, fmt.Errorf("frame cut after %d of %d bytes: %w", got, clen+indexLen, ErrTruncated))
		return io.EOF
	}
	if int64(cap(r.ubuf)) < ulen {
		// Frames close on a block boundary past a size (the recorder's
		// 4 MiB), so their lengths differ by a few bytes: rounded up, one
		// buffer serves them all instead of each slightly larger one
		// allocating anew.
		r.ubuf = make([]byte, 0, min(ulen+frameSlack-ulen%frameSlack, int64(r.maxFrame)))
	}
	out, err := r.dec.DecodeAll(r.cbuf, r.ubuf[:0])
	if err == nil && int64(len(out)) != ulen {
		err = fmt.Errorf("frame decoded to %d bytes, index says %d", len(out), ulen)
	}
	if err != nil {
		r.addDamage(start, clen+indexLen, fmt.Errorf("%w: %v", ErrCorrupt, err))
		r.ubuf, r.pos = r.ubuf[:0], 0
		return errSkipFrame
	}
	r.ubuf, r.pos = out, 0
	r.el.reset()
	r.elOn = false
	r.frameOff = start
	r.frames++
	return nil
}

func (r *Reader) discard(n int64) (int64, error) {
	var done int64
	for done < n {
		k, err := r.br.Discard(int(min(n-done, 1<<30)))
		done += int64(k)
		r.off += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// blockDamage records a malformed block and drops the rest of the frame,
// since block boundaries after it cannot be trusted.
func (r *Reader) blockDamage(err error) {
	r.blockDamageAt(r.pos, err)
}

// blockDamageAt is blockDamage for the block at pos, before r.pos.
func (r *Reader) blockDamageAt(pos int, err error) {
	rest := int64(len(r.ubuf) - r.pos)
	r.addDamage(r.frameOff, 0, fmt.Errorf("block at %d of the frame: %w (%d bytes of the frame dropped)", pos, err, rest))
	r.pos = len(r.ubuf)
	r.pendI, r.pendN = 0, 0
}

// restore returns the next message elided after the packet at pPos.
// A marker naming a message the state cannot predict is damage: the
// rest of the frame is dropped, as after any malformed block, since the
// state the later markers rely on is then unknown.
func (r *Reader) restore(rec *Record) bool {
	typ := r.pend[r.pendI]
	r.pendI++
	k, slotted := r.el.advance(r.ubuf, r.pMsg, r.pEnd, typ, r.pPrefix)
	var ok bool
	r.rbuf, ok = r.el.predict(r.rbuf[:0], r.ubuf, r.ubuf[r.pMsg:r.pEnd], r.pPrefix, typ, k, slotted)
	if !ok {
		r.blockDamageAt(r.pPos, fmt.Errorf("elision marker names a message of type %d that nothing predicts: %w", typ, ErrCorrupt))
		return false
	}
	r.restored++
	// Field by field, as in packet: a composite literal assigned through
	// a pointer is built on the stack and copied whole, which stalls.
	rec.Source, rec.Time, rec.Data = SourceAudit, r.pTime, r.rbuf
	return true
}

// nextBlock parses the block at pos. It reports whether it was a packet
// record of ours, which it then wrote in *rec (and only then).
func (r *Reader) nextBlock(rec *Record) bool {
	rem := r.ubuf[r.pos:]
	if len(rem) < 12 {
		r.blockDamage(fmt.Errorf("%d bytes left, less than a block: %w", len(rem), ErrCorrupt))
		return false
	}
	typ := binary.LittleEndian.Uint32(rem)
	blen := binary.LittleEndian.Uint32(rem[4:])
	if blen < 12 || blen%4 != 0 || uint64(blen) > uint64(len(rem)) || binary.LittleEndian.Uint32(rem[blen-4:]) != blen {
		r.blockDamage(fmt.Errorf("block type %#x with bad length %d: %w", typ, blen, ErrCorrupt))
		return false
	}
	body := rem[8 : blen-4]
	var err error
	ok := false
	switch typ {
	case blockSHB:
		err = r.sectionHeader(body)
	case blockIDB:
		err = r.interfaceDescription(body)
	case blockISB:
		err = r.interfaceStatistics(body)
	case blockEPB:
		ok, err = r.packet(rec, body)
	}
	if err != nil {
		r.blockDamage(err)
		return false
	}
	r.pos += int(blen)
	return ok
}

// forOptions calls fn for each option of an options list.
func forOptions(b []byte, fn func(code uint16, v []byte)) error {
	for len(b) >= 4 {
		code := binary.LittleEndian.Uint16(b)
		n := int(binary.LittleEndian.Uint16(b[2:]))
		if code == optEnd {
			return nil
		}
		padded := n + (4-n&3)&3
		if 4+padded > len(b) {
			return fmt.Errorf("option %d of %d bytes exceeds its block: %w", code, n, ErrCorrupt)
		}
		fn(code, b[4:4+n])
		b = b[4+padded:]
	}
	return nil
}

func (r *Reader) sectionHeader(body []byte) error {
	if len(body) < 16 {
		return fmt.Errorf("section header of %d bytes: %w", len(body), ErrCorrupt)
	}
	if m := binary.LittleEndian.Uint32(body); m != byteOrderMagic {
		return fmt.Errorf("section byte order magic %#x (only little-endian sections are read): %w", m, ErrCorrupt)
	}
	if major := binary.LittleEndian.Uint16(body[4:]); major != 1 {
		return fmt.Errorf("pcapng major version %d: %w", major, ErrCorrupt)
	}
	var h Header
	err := forOptions(body[16:], func(code uint16, v []byte) {
		switch code {
		case optComment:
			parseHeaderComment(&h, string(v))
		case optSHBHardware:
			if h.Machine == "" {
				h.Machine = string(v)
			}
		case optSHBOS:
			if h.KernelRelease == "" {
				h.KernelRelease = strings.TrimPrefix(string(v), "Linux ")
			}
		case optSHBUserAppl:
			if h.Version == "" {
				h.Version = strings.TrimPrefix(string(v), "proctrail ")
			}
		}
	})
	if err != nil {
		return err
	}
	r.hdr = h
	r.ifaces = r.ifaces[:0]
	return nil
}

func parseHeaderComment(h *Header, c string) {
	k, v, ok := strings.Cut(strings.TrimPrefix(c, commentPrefix), "=")
	if !ok || !strings.HasPrefix(c, commentPrefix) {
		return
	}
	switch k {
	case "hostname":
		h.Hostname = v
	case "kernel":
		h.KernelRelease = v
	case "machine":
		h.Machine = v
	case "boot_time":
		h.BootTime, _ = time.Parse(time.RFC3339Nano, v)
	case "version":
		h.Version = v
	case "cmdline":
		var argv []string
		if json.Unmarshal([]byte(v), &argv) == nil {
			h.CommandLine = argv
		}
	case "capture_id":
		h.CaptureID = v
	case "imported_from":
		var files []string
		if json.Unmarshal([]byte(v), &files) == nil {
			h.ImportedFrom = files
		}
	case "cut":
		var c CutInfo
		if json.Unmarshal([]byte(v), &c) == nil {
			h.Cut = &c
		}
	case "sequence":
		h.Sequence, _ = strconv.Atoi(v)
	case "start":
		h.Start, _ = time.Parse(time.RFC3339Nano, v)
	}
}

func (r *Reader) interfaceDescription(body []byte) error {
	if len(body) < 8 {
		return fmt.Errorf("interface description of %d bytes: %w", len(body), ErrCorrupt)
	}
	if len(r.ifaces) >= maxInterfaces {
		return fmt.Errorf("more than %d interfaces: %w", maxInterfaces, ErrTooLarge)
	}
	lt := binary.LittleEndian.Uint16(body)
	ifc := iface{src: numSources, scale: 1, sll: lt == LinkTypeNetlink}
	var name string
	resol := byte(6) // pcapng default: microseconds
	err := forOptions(body[8:], func(code uint16, v []byte) {
		switch code {
		case optIfName:
			name = string(v)
		case optIfTsresol:
			if len(v) > 0 {
				resol = v[0]
			}
		}
	})
	if err != nil {
		return err
	}
	if resol&0x80 != 0 || resol > 9 {
		return fmt.Errorf("interface %q timestamp resolution %#x not supported: %w", name, resol, ErrCorrupt)
	}
	for i := resol; i < 9; i++ {
		ifc.scale *= 10
	}
	for s := Source(0); s < numSources; s++ {
		if name == s.String() {
			ifc.src = s
		}
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

// ifaceFor maps an interface id to its description. When the header frame
// was lost, the fixed order of the format stands in for it.
func (r *Reader) ifaceFor(id uint32) (iface, error) {
	if int(id) < len(r.ifaces) {
		return r.ifaces[id], nil
	}
	if len(r.ifaces) == 0 && id < numSources {
		return iface{src: Source(id), sll: Source(id) != SourceProcfs, scale: 1}, nil
	}
	return iface{}, fmt.Errorf("interface %d not described: %w", id, ErrCorrupt)
}

func (r *Reader) interfaceStatistics(body []byte) error {
	if len(body) < 12 {
		return fmt.Errorf("interface statistics of %d bytes: %w", len(body), ErrCorrupt)
	}
	ifc, err := r.ifaceFor(binary.LittleEndian.Uint32(body))
	if err != nil || ifc.src >= numSources {
		return err
	}
	s := Stats{Time: ifc.ts(body[4:])}
	err = forOptions(body[12:], func(code uint16, v []byte) {
		if code == optComment {
			if n, ok := strings.CutPrefix(string(v), commentPrefix+"masked="); ok {
				s.Masked, _ = strconv.ParseUint(n, 10, 64)
			}
			return
		}
		if len(v) < 8 {
			return
		}
		switch code {
		case optISBIfRecv:
			s.Received = binary.LittleEndian.Uint64(v)
		case optISBIfDrop:
			s.Dropped = binary.LittleEndian.Uint64(v)
		case optISBFilterAccept:
			s.Accepted = binary.LittleEndian.Uint64(v)
		}
	})
	if err != nil {
		return err
	}
	r.stats[ifc.src] = s
	r.seen[ifc.src] = true
	return nil
}

// packet reads an enhanced packet block's body. It reports whether the
// block was a record of ours, which it then wrote in *rec.
func (r *Reader) packet(rec *Record, body []byte) (bool, error) {
	if len(body) < 20 {
		return false, fmt.Errorf("packet block of %d bytes: %w", len(body), ErrCorrupt)
	}
	ifc, err := r.ifaceFor(binary.LittleEndian.Uint32(body))
	if err != nil {
		return false, err
	}
	capLen := binary.LittleEndian.Uint32(body[12:])
	if uint64(capLen) > uint64(len(body)-20) {
		return false, fmt.Errorf("packet of %d bytes exceeds its block: %w", capLen, ErrCorrupt)
	}
	data := body[20 : 20+capLen]
	if ifc.src >= numSources {
		return false, nil // another tool's interface: skip
	}
	off := r.pos + 8 + 20 // data's offset in the frame
	if ifc.sll {
		if len(data) < sllLen {
			return false, fmt.Errorf("netlink packet of %d bytes has no cooked header: %w", len(data), ErrCorrupt)
		}
		data = data[sllLen:]
		off += sllLen
	}
	t := ifc.ts(body[4:])
	n := 0 // messages elided after this one
	if o := 20 + int(capLen+(4-capLen&3)&3); o+4 <= len(body) {
		if n, err = r.marker(body[o:]); err != nil {
			return false, err
		}
	}
	if ifc.src != SourceAudit {
		if n > 0 {
			return false, errMarkerPlace
		}
		rec.Source, rec.Time, rec.Data = ifc.src, t, data
		return true, nil
	}
	if n > 0 && !r.elOn {
		// The frame's first marker: the state is needed from here on,
		// and is built over the audit messages before this one. A
		// frame without markers (every capture written before them)
		// costs nothing.
		r.catchUp(r.pos)
		r.elOn = true
	}
	if !r.elOn {
		rec.Source, rec.Time, rec.Data = ifc.src, t, data
		return true, nil
	}
	typ, prefix := auditText(data)
	if n > 0 && prefix == 0 {
		return false, errMarkerPlace
	}
	r.advance(off, off+len(data), typ, prefix)
	if n > 0 {
		r.pMsg, r.pEnd, r.pPrefix, r.pPos, r.pTime = off, off+len(data), prefix, r.pos, t
		r.pendI, r.pendN = 0, n
	}
	rec.Source, rec.Time, rec.Data = ifc.src, t, data
	return true, nil
}

var errMarkerPlace = fmt.Errorf("elision marker on a packet that is no audit message with a header: %w", ErrCorrupt)

// advance runs the elision state over the audit message ubuf[off:end],
// read from the frame (not restored).
func (r *Reader) advance(off, end int, typ uint16, prefix int) {
	if k, ok := r.el.advance(r.ubuf, off, end, typ, prefix); ok {
		r.el.store(k, bodySpan(off, end, prefix))
	}
}

// catchUp runs the elision state over the audit messages of the frame's
// blocks before end, which hold no marker. nextBlock checked them.
func (r *Reader) catchUp(end int) {
	for pos := 0; pos+12 <= end; {
		blen := int(binary.LittleEndian.Uint32(r.ubuf[pos+4:]))
		if blen < 12 || pos+blen > end {
			return
		}
		if binary.LittleEndian.Uint32(r.ubuf[pos:]) == blockEPB && blen >= 32 {
			body := r.ubuf[pos+8 : pos+blen-4]
			ifc, err := r.ifaceFor(binary.LittleEndian.Uint32(body))
			off, n := pos+28, int(binary.LittleEndian.Uint32(body[12:]))
			if ifc.sll {
				off, n = off+sllLen, n-sllLen
			}
			if err == nil && ifc.src == SourceAudit && n >= 0 && off+n <= pos+blen-4 {
				typ, prefix := auditText(r.ubuf[off : off+n])
				r.advance(off, off+n, typ, prefix)
			}
		}
		pos += blen
	}
}

// marker reads a packet's options for an elision marker into pend and
// returns how many messages it names.
func (r *Reader) marker(opts []byte) (int, error) {
	n, found := 0, false
	var perr error
	err := forOptions(opts, func(code uint16, v []byte) {
		if code != optComment || !bytes.HasPrefix(v, []byte(elidedPrefix)) || perr != nil {
			return
		}
		if found {
			perr = fmt.Errorf("two elision markers on one packet: %w", ErrCorrupt)
			return
		}
		found = true
		n, perr = parseElided(v[len(elidedPrefix):], &r.pend)
	})
	if err != nil {
		return 0, err
	}
	return n, perr
}

// IsCapture reports whether b, the first bytes of a file, begin like a
// proctrail capture: with a frame index (at least its first 12 bytes).
// It says nothing of the rest; NewReader checks it.
func IsCapture(b []byte) bool {
	return len(b) >= 12 && binary.LittleEndian.Uint32(b) == indexMagic &&
		binary.LittleEndian.Uint32(b[4:]) == indexLen-8 && string(b[8:12]) == indexMarker
}
