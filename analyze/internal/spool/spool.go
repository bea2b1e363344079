// Package spool keeps the records of an analysis that grow with the
// capture — file accesses, and the state of processes that ended — out of
// memory: it appends them to a buffer, and once the buffer is full, to an
// unlinked temporary file, written a buffer at a time and read back
// through a small cache. An analysis then holds in memory only what is
// still changing, whatever the capture's length, and gives the same
// result either way.
//
// A record is bytes of the caller's: the spool knows their length and
// nothing else. A record at offset o is
//
//	len   uint32  little-endian: the record's length, this field included
//	data  len-4 bytes
//
// Records are whole in memory or whole in the file. [Spool.Patch] writes
// 8 bytes inside a record in place (a close time, a link to the next
// record). A Spool is not safe for concurrent use, but for its Readers'
// reads (see Reader).
package spool

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
)

// Sizes are the sizes a Spool works with. Zero fields mean the defaults.
type Sizes struct {
	// Mem is the buffer: the spool is in memory while it fits, then in a
	// temporary file written a buffer at a time. Default 4 MiB.
	Mem int
	// Read is the least the spool reads of its file at once. Default
	// 64 KiB.
	Read int
}

// DefaultSizes are what zero fields of Sizes mean.
var DefaultSizes = Sizes{Mem: 4 << 20, Read: 64 << 10}

// Overhead is what a record takes besides its data: a record of n bytes
// at offset o ends at o+Overhead+n, where the next record begins.
const Overhead = header

const (
	header = 4 // the record's length
	// slots is how many pieces of the file the read cache holds. An
	// analysis's output phase reads a process's stub, its state, its
	// parent's stub and its file accesses, each from its own part of the
	// file: one piece made every read a miss (500,000 reads of 64 KiB at
	// 32× the issue-4 workload, 6,100 with eight).
	slots = 8
	// maxInterned is how many decoded strings Intern keeps; maxInternLen
	// the longest it keeps.
	maxInterned  = 4096
	maxInternLen = 256
)

// Spool is a log of records, in memory then in a temporary file. The
// zero Spool is not usable; call New.
type Spool struct {
	f      file // nil while in memory
	base   int64
	buf    []byte // the records from base on
	sizes  Sizes
	noFile bool
	own    Reader // the Spool's own reads

	mu  sync.Mutex // guards err: a Reader may be on another goroutine
	err error
}

// file is a Spool's temporary file.
type file interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

// createFile makes a spool's temporary file, unlinked at once: nothing is
// left behind, even after a crash. Tests replace it.
var createFile = func() (file, error) {
	var f *os.File
	var err error
	for _, dir := range Dirs() {
		if f, err = os.CreateTemp(dir, "proctrail-analyze-*"); err == nil {
			os.Remove(f.Name())
			return f, nil
		}
	}
	return nil, err
}

// Dirs is where a spool's file may go, in order: $TMPDIR when set, else
// /var/tmp, then /tmp. /tmp is often a tmpfs (Debian from 13, Fedora,
// Arch), where a spool would take memory all the same; /var/tmp is on
// disk.
func Dirs() []string {
	if d := os.Getenv("TMPDIR"); d != "" {
		return []string{d}
	}
	return []string{"/var/tmp", os.TempDir()}
}

// slot is a piece of the spool's file: bytes from off on; used is the
// cache's clock at its last use.
type slot struct {
	off  int64
	buf  []byte
	used uint64
}

// Reader reads the records of a Spool through a cache and a string
// table of its own. Readers, and the Spool's own reads, may run on
// several goroutines at once while nothing is written to the Spool (no
// Append or Patch): the output phase reads the processes on one
// goroutine and their file accesses on another. A Reader is not safe
// for concurrent use.
type Reader struct {
	s     *Spool
	cache [slots]slot // what was read of the file
	clock uint64      // the cache's use count
	strs  map[string]string
}

// NewReader returns a Reader of s.
func (s *Spool) NewReader() *Reader { return &Reader{s: s} }

// New returns an empty Spool of the given sizes (nil: the defaults).
func New(sizes *Sizes) *Spool {
	s := &Spool{sizes: DefaultSizes}
	s.own.s = s
	if sizes != nil {
		if sizes.Mem > 0 {
			s.sizes.Mem = sizes.Mem
		}
		if sizes.Read > 0 {
			s.sizes.Read = sizes.Read
		}
	}
	return s
}

// Append adds a record holding data and returns its offset.
func (s *Spool) Append(data []byte) int64 {
	n := header + len(data)
	s.reserve(n)
	off := s.base + int64(len(s.buf))
	s.buf = binary.LittleEndian.AppendUint32(s.buf, uint32(n))
	s.buf = append(s.buf, data...)
	return off
}

// Record returns the data of the record at off, valid until the next call
// of a method of s; nil when there is none (s's error says why).
func (s *Spool) Record(off int64) []byte { return s.own.Record(off) }

// Record returns the data of the record at off, valid until the next call
// of a method of r or a write to its Spool; nil when there is none (the
// Spool's error says why).
func (r *Reader) Record(off int64) []byte {
	h := r.read(off, header)
	if h == nil {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(h))
	if n < header {
		r.s.Corrupt(off)
		return nil
	}
	b := r.read(off, n)
	if b == nil {
		return nil
	}
	return b[header:]
}

// Patch writes v, little-endian, at byte at of the data of the record at
// off; the caller knows its records' layout.
func (s *Spool) Patch(off int64, at int, v uint64) { s.patch(off+header+int64(at), v) }

// Size is how many bytes the records take.
func (s *Spool) Size() int64 { return s.base + int64(len(s.buf)) }

// InFile reports whether the spool has moved to its file.
func (s *Spool) InFile() bool { return s.f != nil }

// Err is the first error of the spool: its file could not be written
// and read back, or a record was not what its reader expected.
func (s *Spool) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Corrupt records that the record at off could not be read; it is the
// spool's error unless it has one.
func (s *Spool) Corrupt(off int64) { s.fail(fmt.Errorf("no record at offset %d", off)) }

// Corrupt is the Spool's Corrupt.
func (r *Reader) Corrupt(off int64) { r.s.Corrupt(off) }

// fail makes err the spool's error unless it has one.
func (s *Spool) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// reserve makes room for a record of n bytes in the buffer: when it is
// full it goes to the file, so that the buffer never grows and is never
// copied, but for a record larger than the buffer, or with no file.
func (s *Spool) reserve(n int) {
	if len(s.buf)+n > cap(s.buf) {
		if s.buf == nil {
			s.buf = make([]byte, 0, max(s.sizes.Mem, n))
		} else {
			s.spill()
		}
	}
}

// patch writes v at offset at, in memory or in the file.
func (s *Spool) patch(at int64, v uint64) {
	if at >= s.base {
		if at-s.base+8 > int64(len(s.buf)) {
			s.Corrupt(at)
			return
		}
		binary.LittleEndian.PutUint64(s.buf[at-s.base:], v)
		return
	}
	for i := range s.own.cache {
		c := &s.own.cache[i]
		switch {
		case at >= c.off && at+8 <= c.off+int64(len(c.buf)):
			binary.LittleEndian.PutUint64(c.buf[at-c.off:], v)
		case at+8 > c.off && at < c.off+int64(len(c.buf)):
			c.buf = c.buf[:0] // a part of it: read it again
		}
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	if _, err := s.f.WriteAt(b[:], at); err != nil {
		if s.toMemory(err); s.f == nil {
			s.patch(at, v)
		}
	}
}

// spill moves the buffer to the file, made at the first spill.
func (s *Spool) spill() {
	if s.noFile || len(s.buf) == 0 {
		return
	}
	if s.f == nil {
		f, err := createFile()
		if err != nil {
			// No temporary file: the records stay in memory.
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
func (s *Spool) toMemory(werr error) {
	all := make([]byte, s.base, s.base+int64(len(s.buf)))
	if _, err := s.f.ReadAt(all, 0); err != nil {
		s.fail(werr)
		return
	}
	s.buf = append(all, s.buf...)
	s.base, s.own.cache = 0, [slots]slot{}
	s.f.Close()
	s.f, s.noFile = nil, true
}

// read returns n bytes at off, valid until the next read.
func (r *Reader) read(off int64, n int) []byte {
	s := r.s
	if off < 0 {
		s.Corrupt(off)
		return nil
	}
	if off >= s.base {
		if off-s.base+int64(n) > int64(len(s.buf)) {
			s.Corrupt(off)
			return nil
		}
		return s.buf[off-s.base:][:n]
	}
	r.clock++
	c := &r.cache[0]
	for i := range r.cache {
		sl := &r.cache[i]
		if off >= sl.off && off+int64(n) <= sl.off+int64(len(sl.buf)) {
			sl.used = r.clock
			return sl.buf[off-sl.off:][:n]
		}
		if sl.used < c.used {
			c = sl // the least recently used
		}
	}
	size := int64(max(n, s.sizes.Read))
	size = min(size, s.base-off)
	if size < int64(n) {
		// A record does not straddle base: records are whole in buf or
		// in the file.
		s.Corrupt(off)
		return nil
	}
	if int64(cap(c.buf)) < size {
		c.buf = make([]byte, size)
	}
	c.buf = c.buf[:size]
	if _, err := s.f.ReadAt(c.buf, off); err != nil {
		c.buf = c.buf[:0]
		s.fail(err)
		return nil
	}
	c.off, c.used = off, r.clock
	return c.buf[:n]
}

// Intern returns b as a string, shared with an equal one Intern returned
// before when it can: the strings decoded from records (paths, names)
// repeat. It keeps a bounded number of strings.
func (s *Spool) Intern(b []byte) string { return s.own.Intern(b) }

// Intern is the Spool's Intern, with a table of r's own.
func (r *Reader) Intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if v, ok := r.strs[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(b) > maxInternLen {
		return v
	}
	if r.strs == nil || len(r.strs) >= maxInterned {
		r.strs = make(map[string]string)
	}
	r.strs[v] = v
	return v
}

// Close releases the temporary file and the memory. A closed Spool holds
// no records.
func (s *Spool) Close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.buf, s.own = nil, Reader{s: s}
}
