package replay

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// MaxAuditdLine is the longest line auditd writes, newline excluded: its
// raw formatter prints "type=NAME msg=TEXT" with snprintf into
// MAX_AUDIT_MESSAGE_LENGTH-32 bytes, NUL included (src/auditd-event.c
// format_raw), and cuts what does not fit. ausearch and aureport read a
// line into MAX_AUDIT_MESSAGE_LENGTH (8970) bytes: a longer one would come
// apart into two broken records.
const MaxAuditdLine = 8970 - 32 - 1

// AuditdLogs reports whether auditd writes records of type t to its log.
// Its netlink handler (src/auditd.c netlink_handler) drops the netlink
// control messages, AUDIT_GET, the watch and rule requests and replies
// (AUDIT_WATCH_INS to AUDIT_WATCH_LIST, AUDIT_ADD_RULE to
// AUDIT_GET_FEATURE), AUDIT_SIGNAL_INFO, the daemon range 1200-1299 (auditd
// writes its own DAEMON_* records, which never pass through the kernel)
// and AUDIT_REPLACE (the kernel's probe of a daemon being replaced). Every
// other type is logged, known or not. [DecodeAuditMessage] already refuses
// the control messages and the binary replies ([ErrControl]); AuditdLogs
// also drops the request numbers a capture could hold.
func AuditdLogs(t auparse.AuditMessageType) bool {
	switch {
	case t < 0x10: // NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE…
		return false
	case t == auparse.AUDIT_GET, t == auparse.AUDIT_SIGNAL_INFO, t == auparse.AUDIT_REPLACE:
		return false
	case t >= auparse.AUDIT_WATCH_INS && t <= auparse.AUDIT_WATCH_LIST:
		return false
	case t >= auparse.AUDIT_ADD_RULE && t <= auparse.AUDIT_GET_FEATURE:
		return false
	case t >= auparse.AUDIT_DAEMON_START && t <= auparse.AUDIT_LAST_DAEMON: // 1200-1299
		return false
	}
	return true
}

// auditdUnnamed are the numbers go-libaudit names and auditd's libaudit
// (lib/msg_typetab.h, checked against audit 3.0.9's
// audit_msg_type_to_name) does not: the bounds of the kernel's numbering
// ranges, which are no record, and two numbers auditd drops anyway. The
// request numbers below 1100 are handled in appendTypeName.
var auditdUnnamed = map[auparse.AuditMessageType]bool{
	auparse.AUDIT_LAST_USER_MSG:         true, // 1199
	auparse.AUDIT_DAEMON_RECONFIG:       true, // 1204
	auparse.AUDIT_LAST_DAEMON:           true, // 1299
	auparse.AUDIT_REPLACE:               true, // 1329
	auparse.AUDIT_LAST_EVENT:            true, // 1399
	auparse.AUDIT_LAST_SELINUX:          true, // 1499
	auparse.AUDIT_LAST_APPARMOR:         true, // 1599
	auparse.AUDIT_FIRST_KERN_CRYPTO_MSG: true, // 1600
	auparse.AUDIT_LAST_KERN_CRYPTO_MSG:  true, // 1699
	auparse.AUDIT_LAST_KERN_ANOM_MSG:    true, // 1799
	auparse.AUDIT_INTEGRITY_LAST_MSG:    true, // 1899
	auparse.AUDIT_LAST_ANOM_MSG:         true, // 2199
	auparse.AUDIT_LAST_ANOM_RESP:        true, // 2299
	auparse.AUDIT_LAST_USER_LSPP_MSG:    true, // 2399
	auparse.AUDIT_LAST_CRYPTO_MSG:       true, // 2499
	auparse.AUDIT_LAST_VIRT_MSG:         true, // 2599
	auparse.AUDIT_LAST_USER_MSG2:        true, // 2999
}

// AuditdTypeName returns what auditd writes after "type=" for a record of
// type t: the record type's name (SYSCALL, EXECVE, PATH, CWD, PROCTITLE,
// EOE, SOCKADDR, USER_CMD, CONFIG_CHANGE…), or UNKNOWN[N] for a number its
// table does not name, as auditd writes then. Names are go-libaudit's but
// for the numbers libaudit does not name, which give UNKNOWN[N]: the
// requests below 1100 other than USER and LOGIN, and the bounds of the
// numbering ranges (AUDIT_LAST_EVENT…), which no record has. For 0 to 2999
// that is audit 3.0.9's audit_msg_type_to_name, but for DM_CTRL and
// DM_EVENT (1338, 1339), which later versions name and 3.0.9 writes as
// UNKNOWN[1338] and UNKNOWN[1339]. Types newer than go-libaudit's table
// give UNKNOWN[N], as an auditd of the same age writes them.
func AuditdTypeName(t auparse.AuditMessageType) string {
	return string(appendTypeName(nil, t))
}

func appendTypeName(dst []byte, t auparse.AuditMessageType) []byte {
	request := t < auparse.AUDIT_USER_AUTH && t != auparse.AUDIT_USER && t != auparse.AUDIT_LOGIN
	if request || auditdUnnamed[t] {
		dst = append(dst, "UNKNOWN["...)
		dst = strconv.AppendUint(dst, uint64(t), 10)
		return append(dst, ']')
	}
	// String gives UNKNOWN[N] for the numbers it does not know.
	return append(dst, t.String()...)
}

// AppendLogLine appends to dst the line auditd writes to its log for r, in
// the raw format (log_format = RAW, name_format = NONE), and returns the
// extended slice:
//
//	type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 …\n
//
// NAME is [AuditdTypeName] of r.Type, and the text is r.Text as the kernel
// sent it, byte for byte: auditd neither escapes nor quotes it. Like
// auditd's format_raw, AppendLogLine ends the text at its first NUL, turns
// every newline into a space (so one record is always one line; the kernel
// escapes the values that could hold one, but the text of a user-space
// record, USER_* and the like, is the sender's), and cuts the line to
// MaxAuditdLine bytes. Trailing NULs and white space are left out, as the
// decoders leave them out of r.Text. Other bytes pass as they are: a 0x1d
// in a user-space record makes auditd's tools, and [ParseLogLine], take the
// rest of that line for the enriched part, in auditd's log as here.
//
// No node= prefix is written: a capture does not name the host the way
// auditd's name_format does, and records read from a log do not keep it.
// Only r.Type and r.Text are used; r.Serial and r.Time are read from the
// text by whoever parses the line. AppendLogLine does not check that the
// type is one auditd logs: see [AuditdLogs].
func AppendLogLine(dst []byte, r AuditRecord) []byte {
	text, _, _ := strings.Cut(r.Text, "\x00")
	text = strings.TrimRight(text, " \t\n\r\f\v")
	start := len(dst)
	dst = append(dst, "type="...)
	dst = appendTypeName(dst, r.Type)
	dst = append(dst, " msg="...)
	if room := MaxAuditdLine - (len(dst) - start); len(text) > room {
		text = text[:max(room, 0)]
	}
	i := len(dst)
	dst = append(dst, text...)
	for {
		j := bytes.IndexByte(dst[i:], '\n')
		if j < 0 {
			break
		}
		dst[i+j] = ' '
		i += j + 1
	}
	return append(dst, '\n')
}
