package record

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// fillBatch puts datagrams into b as a recvmmsg would: each is its netlink
// header's length (the audit unicast's, the text alone, unless full is
// set) and text, from the port id given; a length past the slot stands
// for a datagram the kernel truncated.
func fillBatch(b *recvBatch, grams []testGram) {
	for i, g := range grams {
		slot := b.buf[i*b.slot : (i+1)*b.slot]
		hl := uint32(len(g.text))
		if g.full {
			hl += nlmsgHdrLen
		}
		binary.NativeEndian.PutUint32(slot, hl)
		binary.NativeEndian.PutUint16(slot[4:], 1300)
		copy(slot[nlmsgHdrLen:], g.text)
		b.hdrs[i].len = uint32(nlmsgHdrLen + len(g.text))
		if g.length != 0 {
			b.hdrs[i].len = uint32(g.length)
		}
		b.from[i].Pid = g.port
	}
	b.n, b.next = len(grams), 0
}

type testGram struct {
	text   string
	port   uint32
	full   bool // nlmsg_len already covers the header
	length int  // the length recvmmsg reports, if not the datagram's
}

// TestAuditBatchTake checks what Read hands out of a received batch: the
// kernel's datagrams in order, nlmsg_len made to cover the header, others'
// skipped, a truncated one reported, and what was received handed out
// after Interrupt before the session says it is closed.
func TestAuditBatchTake(t *testing.T) {
	s := &AuditSession{batch: newRecvBatch(auditBatchLen, MaxAuditMessage)}
	fillBatch(&s.batch, []testGram{
		{text: "audit(1.000:1): first"},
		{text: "audit(1.000:1): spoofed", port: 4242},
		{text: "audit(1.000:2): second", full: true},
		{text: "audit(1.000:3): long", length: MaxAuditMessage + 100},
		{text: "audit(1.000:4): after interrupt"},
	})
	buf := make([]byte, MaxAuditMessage)
	read := func(want string, wantErr error) {
		t.Helper()
		n, err := s.Read(buf)
		if !errors.Is(err, wantErr) {
			t.Fatalf("Read: %v, want %v", err, wantErr)
		}
		if wantErr != nil && !errors.Is(wantErr, io.ErrShortBuffer) {
			return
		}
		if l := binary.NativeEndian.Uint32(buf); wantErr == nil && int(l) != n {
			t.Errorf("nlmsg_len %d, datagram %d bytes", l, n)
		}
		if got := string(buf[nlmsgHdrLen : nlmsgHdrLen+len(want)]); got != want || wantErr == nil && n != nlmsgHdrLen+len(want) {
			t.Errorf("Read %d bytes %q, want %q", n, got, want)
		}
	}
	read("audit(1.000:1): first", nil)
	read("audit(1.000:2): second", nil)
	read("audit(1.000:3): long", io.ErrShortBuffer)
	s.interrupted.Store(true)
	read("audit(1.000:4): after interrupt", nil)
	read("", net.ErrClosed)
	if _, err := s.Read(buf[:nlmsgHdrLen-1]); !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("Read into %d bytes: %v", nlmsgHdrLen-1, err)
	}
}
