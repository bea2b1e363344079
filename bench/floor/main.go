// Command floor is the benchmark's physical floor for recording (issue 4):
// the least a user-space reader must do to receive what proctrail record
// receives. It becomes the audit daemon with the same rules as the recorder
// (through [record.StartAudit], so the same never rule for itself, backlog
// limit and wait time, socket and 16 MiB receive buffer), joins the process
// connector like the recorder, and reads both sockets the recorder's way
// (the runtime poller; audit with one recvmmsg(2) of up to 16 datagrams a
// burst, the connector one datagram a call; one reused buffer; on one P
// unless GOMAXPROCS is set) and discards every message: no
// copying, no timestamps, no writing. The only work per message is a look
// at the type in its netlink header, to count EOE records (one ends every
// syscall event) and to timestamp USER records (type 1005, sent by
// `auditctl -m` as the benchmark's end-of-drain marker).
//
// With -batch it reads audit another way: poll(2) and recvmmsg(2), up to 64
// datagrams a call, on a locked thread outside the runtime poller. That
// variant shows what leaving the poller would save (nothing since the
// recorder's receives are raw system calls: it measured dearer than the
// floor that reads the recorder's way).
//
// SIGUSR1 marks the workload's start, SIGUSR2 the start of its open/close
// flood. SIGINT or SIGTERM stops it: it restores the audit state and prints
// one JSON line on stdout: messages and overruns per source, the EOE
// records from SIGUSR1 and from SIGUSR2 to the last USER record, and when
// that record arrived.
//
//	floor            run as above (needs root)
//	floor -rules     print the forensic preset as auditctl lines and exit
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"

	"proctrail/record"
)

func main() {
	printRules := flag.Bool("rules", false, "print the forensic preset's rules as auditctl lines and exit")
	stateDir := flag.String("state-dir", "/run/proctrail-floor", "where StartAudit saves the audit state while running")
	noConnector := flag.Bool("no-connector", false, "read audit only, not the process connector")
	batch := flag.Bool("batch", false, "read audit with poll and recvmmsg (64 a call) on a thread of its own, not the recorder's way")
	flag.Parse()
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1) // as proctrail record runs
	}
	rules, err := record.PresetRules("forensic")
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	if *printRules {
		fmt.Println(strings.Join(rules, "\n"))
		return
	}
	if err := run(rules, *stateDir, !*noConnector, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
