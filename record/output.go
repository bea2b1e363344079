package record

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"proctrail/formats"
)

// output writes a capture to a file, or to a rotated set of files: when a
// file reaches rotateSize it is closed and the next one starts with its own
// section header; at most rotateCount files are kept, the oldest removed.
type output struct {
	base        string
	rotateSize  int64
	rotateCount int
	header      formats.Header
	opts        formats.Options
	owner       *owner // chown files to this user (sudo's invoker); nil: leave as created

	f       *os.File
	w       *formats.Writer
	files   []string // files of the set still on disk, oldest first
	written int64    // bytes of closed files
	stats   [formats.NumSources]formats.Stats

	// fileStart are the procfs records each file after the first begins
	// with (the mount tables; the recorder keeps them current), and
	// fileStartWritten is called for each written.
	fileStart        [][]byte
	fileStartWritten func()
}

type owner struct{ uid, gid int }

func newOutput(base string, rotateSize int64, rotateCount int, hdr formats.Header, own *owner) (*output, error) {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	hdr.CaptureID = hex.EncodeToString(id)
	o := &output{base: base, rotateSize: rotateSize, rotateCount: rotateCount, header: hdr, owner: own}
	// Frames are compressed and written on a goroutine of their own, so
	// the listeners (which append under the recorder's mutex) are not held
	// up while a frame is compressed.
	o.opts.Background = true
	if rotateSize > 0 {
		// Size is checked when a frame closes: frames of a quarter of the
		// size (uncompressed) keep a file's overshoot small.
		o.opts.FrameSize = int(min(max(rotateSize/4, 16<<10), formats.DefaultFrameSize))
	}
	if err := o.open(); err != nil {
		return nil, err
	}
	return o, nil
}

// fileName returns the name of the seq-th file of the set: base itself for
// the first, then "trace.1.zst", "trace.2.zst", … for base "trace.zst".
func fileName(base string, seq int) string {
	if seq == 0 {
		return base
	}
	ext := filepath.Ext(base)
	return strings.TrimSuffix(base, ext) + "." + strconv.Itoa(seq) + ext
}

func (o *output) open() error {
	name := fileName(o.base, o.header.Sequence)
	// O_NOFOLLOW: a root recorder must not be tricked into writing through
	// a symlink someone planted at the output path.
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("record: %w", err)
	}
	if o.owner != nil {
		if err := f.Chown(o.owner.uid, o.owner.gid); err != nil {
			f.Close()
			return fmt.Errorf("record: %w", err)
		}
	}
	opts := o.opts
	opts.Header = o.header
	w, err := formats.NewWriter(f, &opts)
	if err != nil {
		f.Close()
		return fmt.Errorf("record: %s: %w", name, err)
	}
	for i, s := range o.stats {
		if s.Time != 0 {
			w.SetStats(formats.Source(i), s)
		}
	}
	o.f, o.w = f, w
	o.files = append(o.files, name)
	for o.rotateCount > 0 && len(o.files) > o.rotateCount {
		if err := os.Remove(o.files[0]); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("record: rotate: %w", err)
		}
		o.files = o.files[1:]
	}
	return nil
}

// write appends a packet, rotating when the file has grown past its size.
func (o *output) write(src formats.Source, ts int64, data []byte) error {
	if err := o.w.WritePacket(src, ts, data); err != nil {
		return err
	}
	if o.rotateSize > 0 && o.w.Written() >= o.rotateSize {
		return o.rotate()
	}
	return nil
}

func (o *output) setStats(src formats.Source, s formats.Stats) {
	o.stats[src] = s
	o.w.SetStats(src, s)
}

// flush closes the open frame.
func (o *output) flush() error {
	if err := o.w.Flush(); err != nil {
		return err
	}
	if o.rotateSize > 0 && o.w.Written() >= o.rotateSize {
		return o.rotate()
	}
	return nil
}

func (o *output) rotate() error {
	if err := o.closeFile(); err != nil {
		return err
	}
	o.header.Sequence++
	if err := o.open(); err != nil {
		return err
	}
	// What each file of a set begins with (the mount tables), so that
	// it is analyzed alone as in its set: written at once, as a file
	// can fill with audit records before the next procfs record comes.
	for _, b := range o.fileStart {
		if err := o.w.WritePacket(formats.SourceProcfs, time.Now().UnixNano(), b); err != nil {
			return err
		}
		if o.fileStartWritten != nil {
			o.fileStartWritten()
		}
	}
	return nil
}

func (o *output) closeFile() error {
	err := o.w.Close()
	o.written += o.w.Written()
	if serr := o.f.Sync(); err == nil && serr != nil {
		err = fmt.Errorf("record: %w", serr)
	}
	if cerr := o.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("record: %w", cerr)
	}
	return err
}

// close writes the last frame and closes the file.
func (o *output) close() error {
	if o.f == nil {
		return nil
	}
	err := o.closeFile()
	o.f = nil
	return err
}

// bytesWritten returns the compressed bytes written to all files.
func (o *output) bytesWritten() int64 {
	if o.f == nil {
		return o.written
	}
	return o.written + o.w.Written()
}

// netlinkDrops returns the drop counter (sk_drops) of the netlink socket
// with the given inode from /proc/net/netlink: the kernel counts there
// every message it could not queue on the socket (netlink_overrun).
func netlinkDrops(inode uint64) (uint64, error) {
	f, err := os.Open("/proc/net/netlink")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	ino := strconv.FormatUint(inode, 10)
	for sc.Scan() {
		// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
		fields := strings.Fields(sc.Text())
		if len(fields) >= 10 && fields[len(fields)-1] == ino {
			return strconv.ParseUint(fields[8], 10, 64)
		}
	}
	return 0, fmt.Errorf("record: socket inode %d not in /proc/net/netlink", inode)
}
