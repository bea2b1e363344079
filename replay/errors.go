package replay

import "errors"

// Sentinel errors callers branch on. Decoders wrap them with a short phrase
// saying what was being decoded; test with errors.Is.
var (
	// ErrTruncated means a message is shorter than its own headers say, or
	// too short to hold the headers at all.
	ErrTruncated = errors.New("replay: truncated message")
	// ErrMalformed means bytes or text that do not decode as what the
	// source sends: inconsistent lengths, a foreign connector id, an audit
	// record without an audit(…) header.
	ErrMalformed = errors.New("replay: malformed message")
	// ErrControl means a netlink control message (NLMSG_NOOP, NLMSG_ERROR,
	// NLMSG_DONE on audit, NLMSG_OVERRUN) or the kernel's binary reply to a
	// request of the recorder: not an event. A stream skips these.
	ErrControl = errors.New("replay: netlink control message")
)
