package analyze

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// fileSpool holds the file accesses of every process, encoded, in the
// order they were made; each process chains its own. The accesses are the
// part of the model that grows with the events (a process that opens a
// file a million times has a million accesses), so once they pass
// spoolMem bytes they move to an unlinked temporary file: the analysis
// then keeps in memory only what is still open, and its memory follows
// the processes, not the events. The output is the same either way.
//
// A record at offset o is
//
//	len   uint32  the record's length, this field included
//	next  int64   offset+1 of the process's next record; 0: none yet
//	open  int64
//	close int64   patched when the access closes
//	path, op, mode, to, error: each a uvarint length and the bytes
//
// all integers little-endian.
type fileSpool struct {
	f       spoolFile // nil while in memory
	base    int64     // the offset of buf[0]; what is before it is in f
	buf     []byte
	sizes   spoolSizes
	noFile  bool
	err     error
	cache   [spoolSlots]readSlot // what was read of the file
	clock   uint64               // the cache's use count
	strs    map[string]string    // decoded strings, interned
	scratch File
}

// spoolFile is the temporary file of a fileSpool.
type spoolFile interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

// createSpoolFile makes a spool's temporary file, unlinked at once:
// nothing is left behind, even after a crash. Tests replace it.
var createSpoolFile = func() (spoolFile, error) {
	var f *os.File
	var err error
	for _, dir := range spoolDirs() {
		if f, err = os.CreateTemp(dir, "proctrail-analyze-*"); err == nil {
			os.Remove(f.Name())
			return f, nil
		}
	}
	return nil, err
}

// spoolDirs is where the spool's file may go, in order: $TMPDIR when set,
// else /var/tmp, then /tmp. /tmp is often a tmpfs (Debian from 13, Fedora,
// Arch), where a spool would take memory all the same; /var/tmp is on
// disk.
func spoolDirs() []string {
	if d := os.Getenv("TMPDIR"); d != "" {
		return []string{d}
	}
	return []string{"/var/tmp", os.TempDir()}
}

// spoolSizes are the sizes a fileSpool works with; tests make them small.
type spoolSizes struct {
	// mem is the buffer: the spool is in memory while it fits, then in a
	// temporary file written a buffer at a time.
	mem  int
	read int // read in pieces of at least this
}

var defaultSpoolSizes = spoolSizes{mem: 4 << 20, read: 64 << 10}

const (
	spoolHeader = 4 + 3*8
	spoolNext   = 4
	spoolClose  = 4 + 2*8
	spoolStrs   = 4096 // decoded strings kept interned
	// spoolSlots is how many pieces of the file the read cache holds.
	// The output phase reads a process's stub, its state, its parent's
	// stub and its file accesses, each from its own part of the file:
	// one piece made every read a miss (500,000 reads of 64 KiB at 32×
	// the issue-4 workload).
	spoolSlots = 8
)

// readSlot is a piece of the spool's file: bytes from off on; used is
// the cache's clock at its last use.
type readSlot struct {
	off  int64
	buf  []byte
	used uint64
}

func newFileSpool() *fileSpool { return &fileSpool{sizes: defaultSpoolSizes} }

// add appends f after the record at prev+1 (0: f is the first of its
// process) and returns f's offset.
func (s *fileSpool) add(prev int64, f *File) int64 {
	n := spoolHeader
	for _, str := range [...]string{f.Path, f.Op, f.Mode, f.To, f.Error} {
		n += binary.MaxVarintLen64 + len(str)
	}
	s.reserve(n)
	off := s.base + int64(len(s.buf))
	start := len(s.buf)
	s.buf = binary.LittleEndian.AppendUint32(s.buf, 0)
	s.buf = binary.LittleEndian.AppendUint64(s.buf, 0)
	s.buf = binary.LittleEndian.AppendUint64(s.buf, uint64(f.Open))
	s.buf = binary.LittleEndian.AppendUint64(s.buf, uint64(f.Close))
	for _, str := range [...]string{f.Path, f.Op, f.Mode, f.To, f.Error} {
		s.buf = binary.AppendUvarint(s.buf, uint64(len(str)))
		s.buf = append(s.buf, str...)
	}
	binary.LittleEndian.PutUint32(s.buf[start:], uint32(len(s.buf)-start))
	if prev != 0 {
		s.patch(prev-1+spoolNext, off+1)
	}
	return off
}

// addBlob appends a record of any bytes and returns its offset. It
// shares the file with the accesses: [len uint32][bytes].
func (s *fileSpool) addBlob(data []byte) int64 {
	n := 4 + len(data)
	s.reserve(n)
	off := s.base + int64(len(s.buf))
	s.buf = binary.LittleEndian.AppendUint32(s.buf, uint32(n))
	s.buf = append(s.buf, data...)
	return off
}

// blob returns the bytes of the record addBlob put at off, valid until
// the next read; nil when there is none.
func (s *fileSpool) blob(off int64) []byte {
	h := s.read(off, 4)
	if h == nil {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(h))
	if n < 4 {
		s.fail(off)
		return nil
	}
	r := s.read(off, n)
	if r == nil {
		return nil
	}
	return r[4:]
}

// reserve makes room for a record of n bytes in the buffer: when it is
// full it goes to the file, so that the buffer never grows and is never
// copied, but for a record larger than the buffer, or with no file.
func (s *fileSpool) reserve(n int) {
	if len(s.buf)+n > cap(s.buf) {
		if s.buf == nil {
			s.buf = make([]byte, 0, max(s.sizes.mem, n))
		} else {
			s.spill()
		}
	}
}

// setClose patches the close time of the record at off.
func (s *fileSpool) setClose(off, t int64) { s.patch(off+spoolClose, t) }

// patch writes v at offset at, in memory or in the file.
func (s *fileSpool) patch(at, v int64) {
	if at >= s.base {
		binary.LittleEndian.PutUint64(s.buf[at-s.base:], uint64(v))
		return
	}
	for i := range s.cache {
		c := &s.cache[i]
		switch {
		case at >= c.off && at+8 <= c.off+int64(len(c.buf)):
			binary.LittleEndian.PutUint64(c.buf[at-c.off:], uint64(v))
		case at+8 > c.off && at < c.off+int64(len(c.buf)):
			c.buf = c.buf[:0] // a part of it: read it again
		}
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	if _, err := s.f.WriteAt(b[:], at); err != nil {
		if s.toMemory(err); s.f == nil {
			s.patch(at, v)
		}
	}
}

// spill moves the buffer to the file, made at the first spill.
func (s *fileSpool) spill() {
	if s.noFile || len(s.buf) == 0 {
		return
	}
	if s.f == nil {
		f, err := createSpoolFile()
		if err != nil {
			// No temporary file: the accesses stay in memory.
			s.noFile = true
			return
		}
		s.f = f
	}
	if _, err := s.f.WriteAt(s.buf, s.base); err != nil {
		s.toMemory(err)
		return
	}
	s.base += int64(len(s.buf))
	s.buf = s.buf[:0]
}

// toMemory brings the spool back into memory after a write to its file
// failed (a full disk, say): the analysis goes on in memory. Only when
// what the file holds cannot be read back is werr the spool's error.
func (s *fileSpool) toMemory(werr error) {
	all := make([]byte, s.base, s.base+int64(len(s.buf)))
	if _, err := s.f.ReadAt(all, 0); err != nil {
		if s.err == nil {
			s.err = werr
		}
		return
	}
	s.buf = append(all, s.buf...)
	s.base, s.cache = 0, [spoolSlots]readSlot{}
	s.f.Close()
	s.f, s.noFile = nil, true
}

// read returns n bytes at off, valid until the next read.
func (s *fileSpool) read(off int64, n int) []byte {
	if off >= s.base {
		if off-s.base+int64(n) > int64(len(s.buf)) {
			s.fail(off)
			return nil
		}
		return s.buf[off-s.base:][:n]
	}
	s.clock++
	c := &s.cache[0]
	for i := range s.cache {
		sl := &s.cache[i]
		if off >= sl.off && off+int64(n) <= sl.off+int64(len(sl.buf)) {
			sl.used = s.clock
			return sl.buf[off-sl.off:][:n]
		}
		if sl.used < c.used {
			c = sl // the least recently used
		}
	}
	size := int64(max(n, s.sizes.read))
	size = min(size, s.base-off)
	if size < int64(n) {
		// A record does not straddle base: records are whole in buf or
		// in the file.
		s.fail(off)
		return nil
	}
	if int64(cap(c.buf)) < size {
		c.buf = make([]byte, size)
	}
	c.buf = c.buf[:size]
	if _, err := s.f.ReadAt(c.buf, off); err != nil {
		c.buf = c.buf[:0]
		if s.err == nil {
			s.err = err
		}
		return nil
	}
	c.off, c.used = off, s.clock
	return c.buf[:n]
}

func (s *fileSpool) fail(off int64) {
	if s.err == nil {
		s.err = fmt.Errorf("no record at offset %d", off)
	}
}

// get decodes the record at off into a File valid until the next get, and
// returns the offset+1 of the next record of its process (0: none).
func (s *fileSpool) get(off int64) (*File, int64) {
	h := s.read(off, spoolHeader)
	if h == nil {
		return nil, 0
	}
	n := int(binary.LittleEndian.Uint32(h))
	next := int64(binary.LittleEndian.Uint64(h[spoolNext:]))
	f := &s.scratch
	f.Open = int64(binary.LittleEndian.Uint64(h[spoolNext+8:]))
	f.Close = int64(binary.LittleEndian.Uint64(h[spoolClose:]))
	if n < spoolHeader {
		s.fail(off)
		return nil, 0
	}
	r := s.read(off, n)
	if r == nil {
		return nil, 0
	}
	r = r[spoolHeader:]
	for _, dst := range [...]*string{&f.Path, &f.Op, &f.Mode, &f.To, &f.Error} {
		l, k := binary.Uvarint(r)
		if k <= 0 || l > uint64(len(r)-k) {
			s.fail(off)
			return nil, 0
		}
		*dst = s.str(r[k : k+int(l)])
		r = r[k+int(l):]
	}
	return f, next
}

// str returns b as a string, interned: paths and names repeat.
func (s *fileSpool) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if v, ok := s.strs[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(b) > maxInternLen {
		return v
	}
	if s.strs == nil || len(s.strs) >= spoolStrs {
		s.strs = make(map[string]string)
	}
	s.strs[v] = v
	return v
}

// close releases the temporary file.
func (s *fileSpool) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.buf, s.cache, s.strs = nil, [spoolSlots]readSlot{}, nil
}
