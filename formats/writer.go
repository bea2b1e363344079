package formats

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Options configure a Writer. A nil *Options or a zero field means the
// default documented on the field.
type Options struct {
	// Header is written into the section header.
	Header Header
	// FrameSize closes a frame once this many uncompressed bytes are
	// buffered. Default 4 MiB; at most MaxFrameSize/2.
	FrameSize int
	// Level is the zstd level. Default zstd.SpeedDefault (about zstd -3).
	Level zstd.EncoderLevel
	// Background compresses and writes each closed frame on a goroutine of
	// its own, so that WritePacket and Flush return at once while the
	// previous frame is compressed (at most one frame in flight: a Flush
	// waits for it). Written, Frames and errors then lag by one frame; an
	// error surfaces on a later call, and Close waits for the last write.
	Background bool
	// ExactTimes writes every time as given. By default audit receipt
	// times are truncated to the millisecond (see TimeUnit); a cut, which
	// copies the times of the captures it cuts, sets it.
	ExactTimes bool
	// Sources are the interfaces to declare, in this order (their
	// interface ids). Nil means all three: connector, audit, procfs.
	// WritePacket and SetStats refuse a source not declared. A capture
	// imported from auditd logs declares audit alone.
	Sources []Source
	// NoElide writes every audit message as a packet of its own. By
	// default a message the reader restores exactly from the packet
	// before it is left out and named in that packet's elision marker
	// (see the package documentation).
	NoElide bool
}

// DefaultFrameSize is the uncompressed size at which a frame is closed.
const DefaultFrameSize = 4 << 20

// Writer writes a capture: pcapng blocks collected into zstd frames. The
// caller closes a frame by calling Flush (the recorder does every second);
// a frame is also closed when it reaches Options.FrameSize. Data reaches
// the underlying writer only when a frame closes, so a crash loses at most
// the open frame.
//
// A Writer is not safe for concurrent use. Its WritePacket does not
// allocate once the frame buffer has grown to its working size.
type Writer struct {
	w         io.Writer
	enc       *zstd.Encoder
	frameSize int
	buf       []byte // uncompressed blocks of the open frame
	out       []byte // the compressed frame with its index header
	stats     [numSources]Stats
	statsSet  [numSources]bool
	statsNew  bool
	written   atomic.Int64
	frames    atomic.Int64
	packets   [numSources]uint64
	ifid      [numSources]int32 // interface id of each source; -1: not declared
	cut       bool              // the header has Cut: statistics hold Accepted and Masked
	exact     bool              // Options.ExactTimes
	err       error

	// Elision (elide.go): the state of the open frame, and the last
	// packet written if it is an audit packet that can still take
	// elided messages (pOff < 0: none).
	elide   bool
	el      elideState
	pOff    int    // its block's offset in buf
	pMsg    int    // its message's offset
	pLen    int    // its message's length
	pOpt    int    // the offset of its options
	pPrefix int    // its header prefix's length
	pTS     int64  // its time
	pN      int    // messages elided after it
	pMark   []byte // its marker's text: elidedPrefix and their types
	pred    []byte
	elided  uint64

	// With Options.Background: the frame in flight and its result.
	background bool
	spare      []byte     // the buffer the next frame will fill
	pending    chan error // the result of the frame in flight; nil when none
}

// NewWriter writes the section header and interface descriptions of a new
// capture file to w as its first frame and returns the Writer.
func NewWriter(w io.Writer, opts *Options) (*Writer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.FrameSize <= 0 {
		o.FrameSize = DefaultFrameSize
	}
	o.FrameSize = min(o.FrameSize, MaxFrameSize/2)
	if o.Level == 0 {
		o.Level = zstd.SpeedDefault
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(o.Level),
		zstd.WithEncoderCRC(true),
		zstd.WithEncoderConcurrency(1),
		zstd.WithZeroFrames(true))
	if err != nil {
		return nil, fmt.Errorf("formats: zstd encoder: %w", err)
	}
	cw := &Writer{w: w, enc: enc, frameSize: o.FrameSize, buf: make([]byte, 0, 64<<10), background: o.Background, cut: o.Header.Cut != nil, exact: o.ExactTimes, elide: !o.NoElide, pOff: -1}
	cw.buf = appendSectionHeader(cw.buf, &o.Header)
	if o.Sources == nil {
		o.Sources = []Source{SourceConnector, SourceAudit, SourceProcfs}
	}
	cw.ifid = [numSources]int32{-1, -1, -1}
	for i, src := range o.Sources {
		if src >= numSources || cw.ifid[src] >= 0 {
			enc.Close()
			return nil, fmt.Errorf("formats: source %d declared twice or unknown", src)
		}
		cw.ifid[src] = int32(i)
		switch src {
		case SourceConnector:
			cw.buf = appendInterface(cw.buf, LinkTypeNetlink, "connector", "process connector (NETLINK_CONNECTOR, CN_IDX_PROC)")
		case SourceAudit:
			cw.buf = appendInterface(cw.buf, LinkTypeNetlink, "audit", "Linux audit (NETLINK_AUDIT)")
		case SourceProcfs:
			cw.buf = appendInterface(cw.buf, LinkTypeProcfs, "procfs", "proctrail procfs records")
		}
	}
	if err := cw.closeFrame(); err != nil {
		return nil, err
	}
	return cw, nil
}

// WritePacket appends one packet of source src received at ts (ns since the
// Unix epoch). data is copied; the caller may reuse it at once. A netlink
// source's data must be the netlink message as received; procfs data a
// ProcRecord encoding.
func (w *Writer) WritePacket(src Source, ts int64, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if src >= numSources || w.ifid[src] < 0 {
		return fmt.Errorf("formats: write packet: source %d not declared", src)
	}
	if len(data) > MaxPacket {
		return fmt.Errorf("formats: write packet: %d bytes exceeds %d: %w", len(data), MaxPacket, ErrTooLarge)
	}
	capLen := len(data)
	if src != SourceProcfs {
		capLen += sllLen
	}
	pad := (4 - capLen&3) & 3
	total := 28 + capLen + pad + 4
	start := len(w.buf)
	b := w.buf
	b = binary.LittleEndian.AppendUint32(b, blockEPB)
	b = binary.LittleEndian.AppendUint32(b, uint32(total))
	b = binary.LittleEndian.AppendUint32(b, uint32(w.ifid[src]))
	if !w.exact {
		ts -= ts % tsUnit[src]
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(uint64(ts)>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(capLen))
	b = binary.LittleEndian.AppendUint32(b, uint32(capLen))
	if src != SourceProcfs {
		b = appendSLL(b, src)
	}
	b = append(b, data...)
	b = append(b, zeros[:pad]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(total))
	w.buf = b
	w.packets[src]++
	if src != SourceAudit || !w.elide {
		w.pOff = -1
	} else {
		w.elideAudit(start, start+total-4-pad-len(data), len(data), ts)
	}
	if len(w.buf) >= w.frameSize {
		return w.Flush()
	}
	return nil
}

// elideAudit runs the elision state over the audit packet just appended
// at start, its message at msg, n bytes long: if the packet before it
// predicts it exactly, it is taken out again and named in that packet's
// marker; otherwise it becomes the packet that may predict the next.
func (w *Writer) elideAudit(start, msg, n int, ts int64) {
	data := w.buf[msg : msg+n]
	typ, prefix := auditText(data)
	k, slotted := w.el.advance(w.buf, msg, msg+n, typ, prefix)
	if w.pOff >= 0 && w.pN < MaxElided && ts == w.pTS && typ != auditSyscall {
		var ok bool
		w.pred, ok = w.el.predict(w.pred[:0], w.buf, w.buf[w.pMsg:w.pMsg+w.pLen], w.pPrefix, typ, k, slotted)
		if ok && bytes.Equal(w.pred, data) {
			if w.pN == 0 {
				w.pMark = append(w.pMark[:0], elidedPrefix...)
			} else {
				w.pMark = append(w.pMark, ',')
			}
			w.pMark = strconv.AppendUint(w.pMark, uint64(typ), 10)
			w.pN++
			w.elided++
			// The packet before is the frame's last block: rewrite its
			// options and lengths in place.
			b := appendOption(w.buf[:w.pOpt], optComment, w.pMark)
			b = appendOption(b, optEnd, nil)
			total := len(b) - w.pOff + 4
			binary.LittleEndian.PutUint32(b[w.pOff+4:], uint32(total))
			w.buf = binary.LittleEndian.AppendUint32(b, uint32(total))
			return
		}
	}
	if slotted {
		w.el.store(k, bodySpan(msg, msg+n, prefix))
	}
	w.pOff, w.pMsg, w.pLen, w.pOpt, w.pPrefix, w.pTS, w.pN = start, msg, n, len(w.buf)-4, prefix, ts, 0
}

// Elided returns how many audit messages were elided: written (they
// count in Packets) as part of the marker of the packet before them.
func (w *Writer) Elided() uint64 { return w.elided }

// SetStats records src's cumulative counters; they are written as an
// interface statistics block when the frame closes.
func (w *Writer) SetStats(src Source, s Stats) {
	if src >= numSources || w.ifid[src] < 0 {
		return
	}
	if !w.statsSet[src] || w.stats[src] != s {
		w.statsNew = true
	}
	w.stats[src] = s
	w.statsSet[src] = true
}

// Packets returns how many packets of src were written.
func (w *Writer) Packets(src Source) uint64 {
	if src >= numSources {
		return 0
	}
	return w.packets[src]
}

// Flush closes the open frame, preceded by interface statistics blocks for
// counters that changed, and writes it. It does nothing when the frame is
// empty and no counter changed.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.statsNew {
		for i := range w.stats {
			if w.statsSet[i] {
				w.buf = appendStats(w.buf, uint32(w.ifid[i]), w.stats[i], w.cut)
			}
		}
		w.statsNew = false
	}
	if len(w.buf) == 0 {
		return nil
	}
	return w.closeFrame()
}

func (w *Writer) closeFrame() error {
	w.el.reset()
	w.pOff = -1
	if !w.background {
		err := w.writeFrame(w.buf)
		w.buf = w.buf[:0]
		if err != nil {
			w.err = err
		}
		return err
	}
	if err := w.wait(); err != nil {
		return err
	}
	frame := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.pending = make(chan error, 1)
	go func() {
		err := w.writeFrame(frame)
		w.spare = frame[:0] // read only after pending is received
		w.pending <- err
	}()
	return nil
}

// wait waits for the frame in flight, if any, and returns its error.
func (w *Writer) wait() error {
	if w.pending == nil {
		return w.err
	}
	err := <-w.pending
	w.pending = nil
	if err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// writeFrame compresses buf into one indexed frame and writes it.
func (w *Writer) writeFrame(buf []byte) error {
	w.out = append(w.out[:0], zeros[:indexLen]...)
	w.out = w.enc.EncodeAll(buf, w.out)
	putIndex(w.out[:indexLen], len(w.out)-indexLen, len(buf))
	n, err := w.w.Write(w.out)
	w.written.Add(int64(n))
	if err != nil {
		return fmt.Errorf("formats: write frame: %w", err)
	}
	w.frames.Add(1)
	return nil
}

// Close writes the open frame. It does not close the underlying writer.
// Later calls return the first error or ErrClosed.
func (w *Writer) Close() error {
	if w.err != nil {
		if w.err == errWriterClosed {
			return nil
		}
		return w.err
	}
	err := w.Flush()
	if werr := w.wait(); err == nil {
		err = werr
	}
	w.enc.Close()
	if err == nil {
		w.err = errWriterClosed
	}
	return err
}

var errWriterClosed = fmt.Errorf("formats: writer closed")

// Written returns the number of compressed bytes written so far. It is
// safe to call from any goroutine.
func (w *Writer) Written() int64 { return w.written.Load() }

// Buffered returns the number of uncompressed bytes in the open frame.
func (w *Writer) Buffered() int { return len(w.buf) }

// Frames returns the number of frames written so far.
func (w *Writer) Frames() int { return int(w.frames.Load()) }

var zeros [indexLen]byte

// appendSLL appends a Linux cooked (SLL) header for a netlink source: all
// fields big-endian, hatype ARPHRD_NETLINK, protocol the netlink family.
func appendSLL(b []byte, src Source) []byte {
	family := uint16(NetlinkConnector)
	if src == SourceAudit {
		family = NetlinkAudit
	}
	b = binary.BigEndian.AppendUint16(b, 0)   // packet type: to us
	b = binary.BigEndian.AppendUint16(b, 824) // ARPHRD_NETLINK
	b = binary.BigEndian.AppendUint16(b, 0)   // address length
	b = append(b, zeros[:8]...)               // address
	return binary.BigEndian.AppendUint16(b, family)
}

func appendOption(b []byte, code uint16, v []byte) []byte {
	v = v[:min(len(v), 0xffff)]
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	return append(b, zeros[:(4-len(v)&3)&3]...)
}

// block appends a block of type typ whose body (after type and length) is
// produced by body, fixing up both length fields.
func block(b []byte, typ uint32, body func([]byte) []byte) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = body(b)
	total := len(b) - start + 4
	binary.LittleEndian.PutUint32(b[start+4:], uint32(total))
	return binary.LittleEndian.AppendUint32(b, uint32(total))
}

func appendSectionHeader(b []byte, h *Header) []byte {
	return block(b, blockSHB, func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint32(b, byteOrderMagic)
		b = binary.LittleEndian.AppendUint16(b, 1)
		b = binary.LittleEndian.AppendUint16(b, 0)
		b = binary.LittleEndian.AppendUint64(b, ^uint64(0)) // section length unknown
		if h.Machine != "" {
			b = appendOption(b, optSHBHardware, []byte(h.Machine))
		}
		if h.KernelRelease != "" {
			b = appendOption(b, optSHBOS, []byte("Linux "+h.KernelRelease))
		}
		b = appendOption(b, optSHBUserAppl, []byte("proctrail "+h.Version))
		for _, kv := range headerComments(h) {
			b = appendOption(b, optComment, []byte(kv))
		}
		return appendOption(b, optEnd, nil)
	})
}

// headerComments lists the header facts as "proctrail.KEY=VALUE" comments.
func headerComments(h *Header) []string {
	var kv []string
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, commentPrefix+k+"="+v)
		}
	}
	add("hostname", h.Hostname)
	add("kernel", h.KernelRelease)
	add("machine", h.Machine)
	if !h.BootTime.IsZero() {
		add("boot_time", h.BootTime.UTC().Format(time.RFC3339Nano))
	}
	add("version", h.Version)
	// JSON without HTML escaping: "a > b", not "a \u003e b", in capinfos.
	list := func(k string, v []string) {
		if v != nil {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.Encode(v)
			add(k, strings.TrimSuffix(b.String(), "\n"))
		}
	}
	list("cmdline", h.CommandLine)
	add("capture_id", h.CaptureID)
	list("imported_from", h.ImportedFrom)
	if h.Cut != nil {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(h.Cut)
		add("cut", strings.TrimSuffix(b.String(), "\n"))
	}
	add("sequence", strconv.Itoa(h.Sequence))
	if !h.Start.IsZero() {
		add("start", h.Start.UTC().Format(time.RFC3339Nano))
	}
	return kv
}

// tsUnit is the unit, in nanoseconds, to which each source's receipt
// times are truncated. Audit receipt times are kept to the millisecond:
// the record's own header has ms, and the sub-ms digits of a receipt time,
// which only tell how kauditd's wake-ups fell, were 40% of a capture's
// compressed size. They are still written in nanoseconds (if_tsresol 9):
// whole milliseconds in ns compressed 15% better than a count of
// milliseconds (if_tsresol 3), measured with bench/capsize. The connector
// and procfs keep nanoseconds (few packets; the connector's own kernel
// timestamp is ns).
var tsUnit = [numSources]int64{1, 1e6, 1}

func appendInterface(b []byte, linkType uint16, name, desc string) []byte {
	return block(b, blockIDB, func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint16(b, linkType)
		b = binary.LittleEndian.AppendUint16(b, 0)
		b = binary.LittleEndian.AppendUint32(b, 0) // no snap length
		b = appendOption(b, optIfName, []byte(name))
		b = appendOption(b, optIfDescription, []byte(desc))
		b = appendOption(b, optIfTsresol, []byte{9})
		return appendOption(b, optEnd, nil)
	})
}

// appendStats appends an ISB for interface id; a cut's (cut set) has its
// accepted and masked counts too.
func appendStats(b []byte, id uint32, s Stats, cut bool) []byte {
	return block(b, blockISB, func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint32(b, id)
		b = binary.LittleEndian.AppendUint32(b, uint32(uint64(s.Time)>>32))
		b = binary.LittleEndian.AppendUint32(b, uint32(s.Time))
		b = appendOption(b, optISBIfRecv, binary.LittleEndian.AppendUint64(nil, s.Received))
		b = appendOption(b, optISBIfDrop, binary.LittleEndian.AppendUint64(nil, s.Dropped))
		if cut {
			b = appendOption(b, optISBFilterAccept, binary.LittleEndian.AppendUint64(nil, s.Accepted))
			b = appendOption(b, optComment, []byte(commentPrefix+"masked="+strconv.FormatUint(s.Masked, 10)))
		}
		return appendOption(b, optEnd, nil)
	})
}

// putIndex fills the 24-byte skippable frame that precedes every zstd
// frame: magic, payload size 16, "PTF1", compressed and uncompressed
// lengths, and a CRC-32C of the 12 bytes before it.
func putIndex(b []byte, clen, ulen int) {
	binary.LittleEndian.PutUint32(b[0:], indexMagic)
	binary.LittleEndian.PutUint32(b[4:], indexLen-8)
	copy(b[8:12], indexMarker)
	binary.LittleEndian.PutUint32(b[12:], uint32(clen))
	binary.LittleEndian.PutUint32(b[16:], uint32(ulen))
	binary.LittleEndian.PutUint32(b[20:], crc32.Checksum(b[8:20], crcTable))
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Block types, option codes and constants of the format.
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 1
	blockISB = 5
	blockEPB = 6

	byteOrderMagic = 0x1A2B3C4D

	optEnd           = 0
	optComment       = 1
	optSHBHardware   = 2
	optSHBOS         = 3
	optSHBUserAppl   = 4
	optIfName        = 2
	optIfDescription = 3
	optIfTsresol     = 9
	optISBIfRecv     = 4
	optISBIfDrop     = 5
	// optISBFilterAccept is isb_filteraccept: the packets a filter
	// accepted, here the messages a cut kept.
	optISBFilterAccept = 6

	sllLen = 16

	indexMagic  = 0x184D2A5C // a zstd skippable frame
	indexLen    = 24
	indexMarker = "PTF1"

	commentPrefix = "proctrail."

	// MaxPacket bounds one packet's data.
	MaxPacket = 1 << 20
	// MaxFrameSize bounds a frame's compressed and uncompressed sizes.
	MaxFrameSize = 64 << 20
)

// TimeUnit returns the unit, in nanoseconds, in which a capture keeps the
// receipt times of src: a time written is truncated to a multiple of it.
func TimeUnit(src Source) int64 {
	if src >= numSources {
		return 1
	}
	return tsUnit[src]
}
