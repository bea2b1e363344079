// Package formats reads and writes proctrail capture files.
//
// This comment is the capture file's specification: enough to write a
// reader in another language. All integers are little-endian unless said
// otherwise.
//
// # File
//
// A capture file is a sequence of frames. Each frame is a 24-byte index
// followed by one zstd frame (RFC 8878):
//
//	offset size  field
//	0      4     0x184D2A5C   zstd skippable-frame magic
//	4      4     16           skippable payload size
//	8      4     "PTF1"       marker
//	12     4     clen         length of the zstd frame that follows
//	16     4     ulen         length of that frame once decompressed
//	20     4     crc          CRC-32C (Castagnoli) of bytes 8..19
//
// Because the index is a skippable frame, the whole file is also a valid
// zstd stream: `zstd -dc FILE` yields a plain pcapng stream that Wireshark's
// tools read (`zstd -dc FILE | tshark -r -`). Each zstd frame carries a
// content checksum and decompresses on its own into a whole number of
// pcapng blocks (no block spans two frames). clen and ulen are at most
// 64 MiB. The recorder closes a frame every second and whenever 4 MiB of
// blocks are buffered, so a crash loses at most the open frame.
//
// A reader that meets bytes that are not a valid index scans forward for
// the next valid index (magic, size, marker and CRC all match) and reports
// the bytes skipped. A frame whose zstd data fails to decode or whose
// checksum fails is skipped whole. A file that ends inside an index or a
// frame has a truncated tail, reported with its length.
//
// # pcapng content
//
// The decompressed frames form one pcapng section (pcapng draft,
// draft-ietf-opsawg-pcapng), little-endian, version 1.0. The first frame
// holds exactly the Section Header Block and the Interface Description
// Blocks; later frames hold Enhanced Packet Blocks and
// Interface Statistics Blocks. Every file of a rotated set starts with its
// own section header and interfaces, so each is readable alone.
//
// Section Header Block options:
//
//	shb_hardware (2)    uname -m
//	shb_os (3)          "Linux " + uname -r
//	shb_userappl (4)    "proctrail " + version
//	opt_comment (1)     one per fact, "proctrail.KEY=VALUE":
//	  hostname          the host's name
//	  kernel            uname -r
//	  machine           uname -m
//	  boot_time         RFC 3339 wall time at which CLOCK_MONOTONIC was 0;
//	                    the connector's timestamps count from it
//	  version           the recorder's version
//	  cmdline           the recorder's argv as a JSON array of strings
//	  capture_id        random hex id shared by the files of a rotated set
//	  sequence          decimal number of this file in its set, from 0
//	  start             RFC 3339 wall time the file was started
//	  imported_from     for a capture made by `proctrail import`: the
//	                    auditd logs it was made from, a JSON array
//	  cut               for a capture made by `proctrail cut`: a JSON
//	                    object, "from" (the capture ids cut), "files"
//	                    (their base names), "selection" (analyze flags,
//	                    an array of strings), "redactions" (how many
//	                    patterns were masked) and "header_masked" (the
//	                    fields of this header they masked); the last two
//	                    absent when none
//
// Interfaces, each with if_name (2), if_description (3) and if_tsresol
// (9). A recording declares all three, in this order; a capture imported
// from auditd logs declares audit alone (id 0):
//
//	id  if_name     link type                 packet data
//	0   connector   253 LINKTYPE_NETLINK      SLL header + netlink message
//	1   audit       253 LINKTYPE_NETLINK      SLL header + netlink message
//	2   procfs      147 LINKTYPE_USER0        a procfs record (below)
//
// Every interface has if_tsresol 9 (nanoseconds); readers should honour
// if_tsresol whatever it is. Audit receipt times are truncated to whole
// milliseconds (older captures keep nanoseconds): the record's own header
// has milliseconds, and the sub-millisecond digits of receipt times, noise
// of kauditd's wake-ups, were 40% of a capture's compressed size.
//
// A reader should map interfaces by if_name; when the first frame is lost it
// may assume the recording's order.
//
// Enhanced Packet Blocks carry the time of receipt (nanoseconds since the
// Unix epoch), captured length = original length, and no options but an
// audit packet's elision marker (below). For the
// netlink interfaces the data is a 16-byte Linux cooked (SLL v1) header,
// big-endian: packet type 0, ARPHRD_NETLINK (824), address length 0, eight
// zero address bytes, protocol = the netlink family (11 NETLINK_CONNECTOR,
// 9 NETLINK_AUDIT); then the netlink datagram exactly as the kernel sent
// it, in host byte order (struct nlmsghdr first). Connector datagrams hold
// struct cn_msg and struct proc_event (linux/cn_proc.h); audit datagrams
// hold the record's text after the nlmsghdr, its type in nlmsg_type.
// One correction is made: the kernel's unicast to the audit daemon sets
// nlmsg_len to the text's length without the 16-byte header
// (kernel/audit.c audit_log_end), which makes the datagram an invalid
// netlink message (Wireshark reports it malformed); the recorder stores
// nlmsg_len = the datagram's length, as the kernel's multicast copy has it.
// Readers must still accept the uncorrected form (captures made before
// the correction, such as the analyzer's test captures, hold it): the
// text is every byte after the header.
// A packet's data is at most 1 MiB.
//
// # Elided audit records
//
// Most audit messages are predictable from the ones before them: an EOE
// record's text is its event's header alone, and the CWD, PATH and
// PROCTITLE records of a program's syscall are usually those of its
// previous one. Such a message is not written as a packet: the audit
// packet written just before it, P, carries an elision marker naming it,
// and a reader restores it, byte for byte, from P and the state below.
// A writer elides a message only when what a reader restores is exactly
// the message, so a capture's messages are the same, elided or not.
// Readers that do not restore (tshark) see fewer audit packets.
//
// The marker is an opt_comment (1) of P's Enhanced Packet Block, the
// packet's only option: "proctrail.elided=" then the record types of the
// messages elided after P, in order, as decimal numbers separated by
// commas ("proctrail.elided=1307,1302,1327,1320"). It names 1 to 64
// messages; type 1300 (SYSCALL) is never elided. The restored messages
// come right after P, before the block after P, with P's receipt time.
// A malformed marker (not such a list, on a packet that is not an audit
// message with a header, or two on one packet) makes the frame corrupt
// from P on; a marker naming a message the state does not predict, from
// that message on (P and the messages restored before it are read).
//
// An audit message's header is its text's first bytes, "audit(" through
// the first "): " within the text's first 64 bytes; a message without
// one neither predicts nor is predicted. The body is the text after the
// header. A restored message of type T is: P's nlmsghdr with nlmsg_type
// T and nlmsg_len = (the message's length) − (P's length − P's
// nlmsg_len), modulo 2^32 (P's length convention, see above); P's
// header; and a body: none for EOE (1320), and for any other type the
// body of the message's slot.
//
// Slots. A reader runs this state over each frame's audit messages in
// order, the restored ones included; it starts empty at each frame, so
// every frame restores alone.
//   - A SYSCALL message (1300) with a header starts an event: its header
//     and its key, the pair of the values of its first "syscall=" field
//     (at the body's start or after a space) and of its last "exe="
//     field after a space; a value runs to the next space or the end.
//     A SYSCALL without a header or without either field ends the
//     event, with no key.
//   - A message of another type than 1300 and 1320 whose header equals
//     the event's has the slot (key, type, n), n the number of the
//     event's earlier messages of that type; only the first 16 types of
//     an event get slots. After a message that is not restored, its
//     slot's body is the message's body.
//   - Any other message has no slot and changes nothing.
//
// Interface Statistics Blocks carry, per source, cumulative isb_ifrecv (4)
// = messages received and isb_ifdrop (5) = messages lost: for audit the
// kernel's lost counter (AUDIT_GET) plus receive-buffer overruns (ENOBUFS),
// for the connector its overruns, for procfs the reads abandoned. They are
// written at the end of a frame whenever a counter changed, so the latest
// one read holds the totals up to that point. A cut's also carry
// isb_filteraccept (6) = the messages of the source it kept (of
// isb_ifrecv, the messages of the captures cut; isb_ifdrop stays what
// their recording lost) and an opt_comment "proctrail.masked=N": the
// fields --redact masked in them.
//
// # procfs records
//
// A procfs record is an 8-byte header then fields:
//
//	offset size field
//	0      1    version, 1
//	1      1    kind: 1 snapshot (alive at start), 2 read after a fork event,
//	            3 read after an exec event, 4 the command given to
//	            `record --` as started, 5 selected: written by
//	            `proctrail cut` (pid alone, no fields) right after the
//	            first message of a process of its selection, 6 mounts:
//	            the mount table re-read after a mount, umount2,
//	            pivot_root, setns or unshare by the process (pid, the
//	            mnt namespace and, when the table changed, tag 13)
//	2      1    flags: bit 0 "gone" (the process had exited; no fields follow)
//	3      1    reserved, 0
//	4      4    pid (thread group id)
//
// Each field is a 2-byte tag, a 4-byte length n and n bytes of value; a
// reader skips tags it does not know. Fields are optional:
//
//	tag value
//	1   ppid, uint32
//	2   tids, uint32 each, ascending (/proc/PID/task)
//	3   start time, uint64 clock ticks since boot (/proc/PID/stat field 22)
//	4   uids, 4 × uint32: real, effective, saved, filesystem
//	5   gids, 4 × uint32: real, effective, saved, filesystem
//	6   comm, bytes
//	7   exe, bytes (readlink /proc/PID/exe)
//	8   cmdline, bytes: the arguments, each ended by a NUL
//	9   cwd, bytes (readlink /proc/PID/cwd)
//	10  root, bytes (readlink /proc/PID/root)
//	11  cgroup, bytes (/proc/PID/cgroup as read)
//	12  namespace, repeated: uint64 inode, then the name ("mnt", "pid", …)
//	13  mountinfo, bytes (/proc/PID/mountinfo as read): in the first
//	    record of a process that shows a mount namespace not seen
//	    before, and in a kind 6 record when the table changed or after a
//	    pivot_root
//	14  after, bytes: in a kind 6 record, the call after which it was
//	    read ("mount", "pivot_root", …)
//
// Values are at most 256 KiB and records at most 1 MiB. A fork record
// (kind 2) holds ppid, start time, uids, gids, comm and cgroup only: the
// child's other facts are its parent's until it execs, and an exec gets a
// record of its own.
package formats
