package analyze_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"proctrail/analyze"
	"proctrail/formats"
	"proctrail/replay"
)

// hostileCapture streams size bytes of a hostile capture without storing
// it: a valid header frame, then a rotation of frames that lie (indexes
// claiming 64 MiB frames, frames that fail their checksum, garbage between
// frames) and frames that decode to hostile content (forks of a few pids
// over and over, audit events that never end, undecodable netlink
// messages, interfaces and statistics for interfaces that do not exist).
type hostileCapture struct {
	size, done int64
	buf        bytes.Buffer
	rng        *rand.Rand
	frames     [][]byte
	i          int
}

func newHostileCapture(t testing.TB, size int64) *hostileCapture {
	h := &hostileCapture{size: size, rng: rand.New(rand.NewPCG(1, 2))}
	// Valid frames with hostile content, made by the real writer.
	var w bytes.Buffer
	cw, err := formats.NewWriter(&w, &formats.Options{FrameSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	header := bytes.Clone(w.Bytes())
	w.Reset()
	serial := 0
	for f := 0; f < 8; f++ {
		for i := 0; i < 2000; i++ {
			ts := int64(1_700_000_000_000_000_000 + f*1_000_000_000 + i*1000)
			// An exec of one of 50 pids: the model stays small (every fork
			// would be a new process, and memory grows with processes).
			child := int32(1000 + h.rng.IntN(50))
			cw.WritePacket(formats.SourceConnector, ts, execMsg(child))
			// An audit record whose event never ends.
			serial++
			text := fmt.Sprintf("audit(1700000000.%03d:%d): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c items=1 ppid=1 pid=%d comm=\"x\" exe=\"/x\"", i%1000, serial, child)
			cw.WritePacket(formats.SourceAudit, ts, auditMsg(1300, text))
			// Undecodable junk on every source.
			junk := make([]byte, h.rng.IntN(200))
			for j := range junk {
				junk[j] = byte(h.rng.Uint32())
			}
			cw.WritePacket(formats.Source(i%3), ts, junk)
		}
		cw.SetStats(formats.SourceAudit, formats.Stats{Time: 1, Received: ^uint64(0), Dropped: ^uint64(0)})
		if err := cw.Flush(); err != nil {
			t.Fatal(err)
		}
		h.frames = append(h.frames, bytes.Clone(w.Bytes()))
		w.Reset()
	}
	// An index that claims a frame far larger than allowed, with a valid CRC.
	huge := bytes.Clone(h.frames[0][:24])
	binary.LittleEndian.PutUint32(huge[12:], 64<<20+1)
	binary.LittleEndian.PutUint32(huge[16:], 64<<20+1)
	binary.LittleEndian.PutUint32(huge[20:], crc32c(huge[8:20]))
	h.frames = append(h.frames, huge)
	// A frame whose body is corrupt.
	bad := bytes.Clone(h.frames[1])
	bad[len(bad)/2] ^= 0xff
	h.frames = append(h.frames, bad)
	h.buf.Write(header)
	return h
}

func (h *hostileCapture) Read(p []byte) (int, error) {
	for h.buf.Len() == 0 {
		if h.done >= h.size {
			return 0, io.EOF
		}
		f := h.frames[h.i%len(h.frames)]
		h.i++
		h.buf.Write(f)
		if h.i%7 == 0 { // garbage between frames
			g := make([]byte, 1+h.rng.IntN(4096))
			for j := range g {
				g[j] = byte(h.rng.Uint32())
			}
			h.buf.Write(g)
		}
	}
	n, _ := h.buf.Read(p)
	h.done += int64(n)
	return n, nil
}

func (h *hostileCapture) Close() error { return nil }

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

func execMsg(pid int32) []byte {
	b := make([]byte, 16+20+16+8)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint32(b[16:], 1) // cn idx
	binary.NativeEndian.PutUint32(b[20:], 1)
	binary.NativeEndian.PutUint16(b[32:], 24)
	ev := b[36:]
	binary.NativeEndian.PutUint32(ev[0:], 2) // PROC_EVENT_EXEC
	binary.NativeEndian.PutUint32(ev[16:], uint32(pid))
	binary.NativeEndian.PutUint32(ev[20:], uint32(pid))
	return b
}

func auditMsg(typ uint16, text string) []byte {
	b := make([]byte, 16, 16+len(text))
	binary.NativeEndian.PutUint32(b[0:], uint32(16+len(text)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	return append(b, text...)
}

// TestHostileCaptureMemoryBound analyzes a 1 GiB hostile capture (256 MiB
// with -short) and checks the Go heap never exceeds 256 MiB: the reader
// bounds frames (64 MiB compressed and decompressed), the reassembler
// bounds open events (1000), and the capture names only 50 processes
// (the model itself grows with the processes a capture describes).
func TestHostileCaptureMemoryBound(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 256 << 20
	}
	h := newHostileCapture(t, size)
	opens := 0
	s, err := replay.Open([]string{"hostile.zst"}, &replay.Options{Open: func(string) (io.ReadCloser, error) {
		// The stream opens the file twice: first for its header alone.
		opens++
		if opens > 1 {
			return h, nil
		}
		return io.NopCloser(bytes.NewReader(bytes.Clone(h.buf.Bytes()))), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	m, err := analyze.Build(s, nil)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := analyze.WriteJSON(&out, m); err != nil {
		t.Fatal(err)
	}
	info := s.Info()
	t.Logf("read %d MiB: %d messages, %d undecodable, %d unreadable bytes, %d processes; peak heap %d MiB",
		h.done>>20, info.Messages[0]+info.Messages[1]+info.Messages[2], info.Undecodable, info.UnreadableBytes, len(m.Processes), peak.Load()>>20)
	if h.done < size {
		t.Errorf("the analysis stopped after %d of %d bytes", h.done, size)
	}
	if info.UnreadableBytes == 0 || info.Undecodable == 0 {
		t.Errorf("hostile content not reported: %+v", info)
	}
	if p := peak.Load(); p > 256<<20 {
		t.Errorf("peak heap %d MiB exceeds the 256 MiB bound", p>>20)
	}
}
