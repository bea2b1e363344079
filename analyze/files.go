package analyze

import (
	"encoding/binary"

	"proctrail/analyze/internal/procstore"
)

// File accesses go to the spool as they are made, each a record that
// links to the next of its process:
//
//	next  int64   offset+1 of the process's next access; 0: none yet
//	open  int64
//	close int64   patched when the access closes
//	path, op, mode, to, error: each a uvarint length and the bytes
//	details: a uvarint count, then each a uvarint tag (fileDetails)
//	         and a string as above: only those that are set
//	serial: a uvarint
//	flags: a uvarint (fileUnresolved)
//
// all integers little-endian. They are the part of the analysis that
// grows with the events (a process that opens a file a million times has
// a million accesses); in memory stays only what is open.
const (
	fileNext  = 0  // where next is in a file access's record
	fileClose = 16 // where close is
	fileFixed = 24 // the integers' bytes

	fileUnresolved = 1 // flags: File.Unresolved
)

// addFile appends f to p's file accesses and returns its offset in the
// spool.
func (b *builder) addFile(p *proc, f File) int64 {
	if f.Serial == 0 {
		f.Serial = b.serial
	}
	for _, s := range b.unres {
		f.Unresolved = f.Unresolved || s == f.Path || s == f.To || s == f.Target
	}
	rec := b.fileBuf[:0]
	rec = binary.LittleEndian.AppendUint64(rec, 0)
	rec = binary.LittleEndian.AppendUint64(rec, uint64(f.Open))
	rec = binary.LittleEndian.AppendUint64(rec, uint64(f.Close))
	for _, s := range [...]string{f.Path, f.Op, f.Mode, f.To, f.Error} {
		rec = binary.AppendUvarint(rec, uint64(len(s)))
		rec = append(rec, s...)
	}
	details := f.details()
	n := 0
	for _, s := range details {
		if *s != "" {
			n++
		}
	}
	rec = binary.AppendUvarint(rec, uint64(n))
	for tag, s := range details {
		if *s != "" {
			rec = binary.AppendUvarint(rec, uint64(tag))
			rec = binary.AppendUvarint(rec, uint64(len(*s)))
			rec = append(rec, *s...)
		}
	}
	rec = binary.AppendUvarint(rec, f.Serial)
	var flags uint64
	if f.Unresolved {
		flags |= fileUnresolved
	}
	rec = binary.AppendUvarint(rec, flags)
	b.fileBuf = rec
	return b.chain(rec, &p.FirstFile, &p.LastFile)
}

// chain appends rec, a record whose first 8 bytes link to the next of its
// chain, to the chain whose first and last records are at *first-1 and
// *last-1 (0: none yet), and returns its offset.
func (b *builder) chain(rec []byte, first, last *int64) int64 {
	off := b.spool.Append(rec)
	if *last != 0 {
		b.spool.Patch(*last-1, 0, uint64(off+1))
	}
	if *first == 0 {
		*first = off + 1
	}
	*last = off + 1
	return off
}

// readStrings sets each of dsts from d, read as a uvarint length and
// the bytes, in turn, and returns what follows them; ok is false when d
// is too short.
func readStrings(sp spoolReader, d []byte, dsts ...*string) (rest []byte, ok bool) {
	for _, dst := range dsts {
		l, k := binary.Uvarint(d)
		if k <= 0 || l > uint64(len(d)-k) {
			return nil, false
		}
		*dst = sp.Intern(d[k : k+int(l)])
		d = d[k+int(l):]
	}
	return d, true
}

// chained yields the records of the chain that begins at first, each
// decoded by read, which returns nil for a bad record, and the
// offset+1 of the next.
func chained[T any](first int64, read func(off int64) (*T, int64)) func(yield func(*T) bool) {
	return func(yield func(*T) bool) {
		for next := first; next != 0; {
			var x *T
			if x, next = read(next - 1); x == nil || !yield(x) {
				return
			}
		}
	}
}

// openFile makes the access at off, just added to p, an open file.
func (b *builder) openFile(p *proc, off int64) *procstore.OpenFile {
	// From a slab: there is one an open.
	if len(b.opens) == 0 {
		b.opens = make([]procstore.OpenFile, openSlab)
	}
	f := &b.opens[0]
	b.opens = b.opens[1:]
	*f = procstore.OpenFile{Off: off, Owner: p.Ref()}
	return f
}

const openSlab = 256

// closeFile closes f at t.
func (b *builder) closeFile(f *procstore.OpenFile, t int64) {
	f.Close = t
	b.spool.Patch(f.Off, fileClose, uint64(t))
}

// spoolReader is what the records of a spool are read back with: the
// Spool itself, or a Reader of it for the output phase's second
// goroutine (see makeOutputs).
type spoolReader interface {
	Record(off int64) []byte
	Intern(b []byte) string
	Corrupt(off int64)
}

// fileReader reads file accesses back from a spool.
type fileReader struct {
	sp      spoolReader
	scratch File
}

// read decodes the access at off into a File valid until the next read,
// and returns the offset+1 of the next access of its process (0: none).
func (r *fileReader) read(off int64) (*File, int64) {
	d := r.sp.Record(off)
	if len(d) < fileFixed {
		r.sp.Corrupt(off)
		return nil, 0
	}
	f := &r.scratch
	next := int64(binary.LittleEndian.Uint64(d[fileNext:]))
	f.Open = int64(binary.LittleEndian.Uint64(d[8:]))
	f.Close = int64(binary.LittleEndian.Uint64(d[fileClose:]))
	d, ok := readStrings(r.sp, d[fileFixed:], &f.Path, &f.Op, &f.Mode, &f.To, &f.Error)
	if !ok {
		r.sp.Corrupt(off)
		return nil, 0
	}
	details := f.details()
	for _, s := range details {
		*s = ""
	}
	n, k := binary.Uvarint(d)
	if k <= 0 || n > uint64(len(details)) {
		r.sp.Corrupt(off)
		return nil, 0
	}
	d = d[k:]
	for range n {
		tag, k := binary.Uvarint(d)
		if k <= 0 || tag >= uint64(len(details)) {
			r.sp.Corrupt(off)
			return nil, 0
		}
		d = d[k:]
		l, k := binary.Uvarint(d)
		if k <= 0 || l > uint64(len(d)-k) {
			r.sp.Corrupt(off)
			return nil, 0
		}
		*details[tag] = r.sp.Intern(d[k : k+int(l)])
		d = d[k+int(l):]
	}
	if f.Serial, k = binary.Uvarint(d); k <= 0 {
		r.sp.Corrupt(off)
		return nil, 0
	}
	flags, k := binary.Uvarint(d[k:])
	if k <= 0 {
		r.sp.Corrupt(off)
		return nil, 0
	}
	f.Unresolved = flags&fileUnresolved != 0
	return f, next
}

// details are the fields of f that only some operations set, in the
// order of their tags in the spool's records.
func (f *File) details() [6]*string {
	return [...]*string{&f.Target, &f.Perm, &f.Owner, &f.Type, &f.Flags, &f.Size}
}

// spooled yields the file accesses whose chain begins at first (a
// process's FirstFile) as the spool holds them (times not clamped to the
// process's life), in the order they were made. The File is valid until
// the next.
func (b *builder) spooled(first int64) func(yield func(*File) bool) {
	return spooledFiles(b.spool, first)
}

// spooledFiles is spooled, read with sp.
func spooledFiles(sp spoolReader, first int64) func(yield func(*File) bool) {
	r := &fileReader{sp: sp}
	return chained(first, r.read)
}
