package main

import (
	"fmt"
	"io"
	"strings"

	"proctrail/replay"
)

// verboseFlag names the flag of analyze, replay, info and import that lists
// the lines of auditd logs that were skipped.
const verboseFlag = "verbose"

// reportLogs tells, on w, what was skipped in the auditd logs read: a line
// per log with skipped or unknown lines, and with verbose one line per
// problem line (file:line: what), up to replay.MaxLogIssues per log.
func reportLogs(w io.Writer, logs []replay.LogStats, verbose bool) {
	for _, l := range logs {
		if l.NotRecords+l.Truncated+l.UnknownType == 0 {
			continue
		}
		var why []string
		add := func(n int64, what string) {
			if n > 0 {
				why = append(why, fmt.Sprintf("%d %s", n, what))
			}
		}
		add(l.NotRecords, "not audit records")
		add(l.Truncated, "truncated")
		add(l.UnknownType-l.UnknownKept, "of unknown record types")
		var parts []string
		if n := l.Skipped(); n > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d lines skipped (%s)", n, l.Lines, strings.Join(why, ", ")))
		}
		if l.UnknownKept > 0 {
			parts = append(parts, fmt.Sprintf("%d records of unknown types kept", l.UnknownKept))
		}
		if !verbose {
			parts = append(parts, "--verbose lists them")
		}
		fmt.Fprintf(w, "proctrail: %s: %s\n", quoteControl(l.File), strings.Join(parts, "; "))
		if !verbose {
			continue
		}
		for _, is := range l.Issues {
			fmt.Fprintf(w, "proctrail: %s:%d: %s\n", quoteControl(l.File), is.Line, quoteControl(is.Err.Error()))
		}
		if n := l.NotRecords + l.Truncated + l.UnknownType; n > int64(len(l.Issues)) {
			fmt.Fprintf(w, "proctrail: %s: %d more not listed\n", quoteControl(l.File), n-int64(len(l.Issues)))
		}
	}
}
