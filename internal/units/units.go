// Package units formats quantities for people to read: the command line's
// summaries and the recorder's status line.
package units

import "fmt"

// Bytes formats a byte count in binary units with one decimal: "512 B",
// "1.5 KiB", "3.2 MiB", "1.0 GiB". Counts of a GiB and more stay in GiB.
// A negative count is written in bytes.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
