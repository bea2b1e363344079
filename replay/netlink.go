package replay

import (
	"encoding/binary"
	"fmt"
)

// Netlink framing shared by both kernel sources. Netlink carries integers in
// host byte order; every machine proctrail records on is little-endian
// (amd64, arm64), so messages are decoded as little-endian whatever the
// machine replaying them.

const nlmsgHdrLen = 16 // sizeof(struct nlmsghdr)

// Netlink control message types (include/uapi/linux/netlink.h).
const (
	nlmsgNoop    = 0x1
	nlmsgError   = 0x2
	nlmsgDone    = 0x3
	nlmsgOverrun = 0x4
	nlmsgMinType = 0x10 // types below are reserved for control messages
)

// nlHeader is struct nlmsghdr.
type nlHeader struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
}

// parseNLHeader decodes the nlmsghdr at the start of b. It checks only that
// the 16 bytes are there.
func parseNLHeader(b []byte) (nlHeader, error) {
	if len(b) < nlmsgHdrLen {
		return nlHeader{}, fmt.Errorf("%w: netlink header needs %d bytes, have %d", ErrTruncated, nlmsgHdrLen, len(b))
	}
	return nlHeader{
		Len:   binary.LittleEndian.Uint32(b[0:4]),
		Type:  binary.LittleEndian.Uint16(b[4:6]),
		Flags: binary.LittleEndian.Uint16(b[6:8]),
		Seq:   binary.LittleEndian.Uint32(b[8:12]),
		PID:   binary.LittleEndian.Uint32(b[12:16]),
	}, nil
}

// nlType is the nlmsg_type of the netlink header at the start of b, even
// when b is too short for the rest of the header; ok is false when b ends
// before the type.
func nlType(b []byte) (typ uint16, ok bool) {
	if len(b) < 6 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(b[4:6]), true
}

// nlAlign rounds n up to NLMSG_ALIGNTO (4), the padding between messages
// of one datagram.
func nlAlign(n int) int { return (n + 3) &^ 3 }

// nlErrno is the errno of an NLMSG_ERROR message (a negative int32 after
// the header), or 0 when the message is too short to hold one.
func nlErrno(b []byte) int32 {
	if len(b) < nlmsgHdrLen+4 {
		return 0
	}
	return -int32(binary.LittleEndian.Uint32(b[nlmsgHdrLen:]))
}

// controlError reports a netlink control message of type typ.
func controlError(typ uint16, b []byte) error {
	switch typ {
	case nlmsgError:
		if e := nlErrno(b); e != 0 {
			return fmt.Errorf("%w: NLMSG_ERROR errno %d", ErrControl, e)
		}
		return fmt.Errorf("%w: NLMSG_ERROR (ack)", ErrControl)
	case nlmsgNoop:
		return fmt.Errorf("%w: NLMSG_NOOP", ErrControl)
	case nlmsgDone:
		return fmt.Errorf("%w: NLMSG_DONE", ErrControl)
	case nlmsgOverrun:
		return fmt.Errorf("%w: NLMSG_OVERRUN", ErrControl)
	}
	return fmt.Errorf("%w: reserved netlink type %d", ErrControl, typ)
}
