package main

import (
	"bufio"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"proctrail/analyze"
)

// resultWriter writes the result of a query as a table, JSON or CSV.
type resultWriter struct {
	w      *bufio.Writer
	format string
	cols   []string
	n      int
	// table: rows held to size the columns, up to tableHold; later rows
	// are written with those widths.
	held  [][]string
	width []int
	csv   *csv.Writer
	err   error
}

// tableHold is how many rows a table holds to size its columns.
const tableHold = 1000

func newResultWriter(w io.Writer, format string) *resultWriter {
	r := &resultWriter{w: bufio.NewWriter(w), format: format}
	if format == "csv" {
		r.csv = csv.NewWriter(r.w)
	}
	return r
}

func (r *resultWriter) columns(cols []string) error {
	r.cols = append([]string(nil), cols...)
	switch r.format {
	case "csv":
		return r.csv.Write(r.cols)
	case "json":
		_, err := r.w.WriteString("[")
		return err
	case "table":
		r.width = make([]int, len(cols))
		safeCols := make([]string, len(cols))
		for i, c := range cols {
			safeCols[i] = safeCell(c)
		}
		r.held = append(r.held, safeCols)
		r.widen(safeCols)
	}
	return nil
}

func (r *resultWriter) widen(cells []string) {
	for i, c := range cells {
		r.width[i] = max(r.width[i], utf8.RuneCountInString(c))
	}
}

func (r *resultWriter) row(vals []any) error {
	r.n++
	switch r.format {
	case "csv":
		rec := make([]string, len(vals))
		for i, v := range vals {
			rec[i] = cellText(v, false)
		}
		return r.csv.Write(rec)
	case "json":
		return r.jsonRow(vals)
	}
	cells := make([]string, len(vals))
	for i, v := range vals {
		cells[i] = cellText(v, true)
	}
	if r.held != nil {
		r.held = append(r.held, cells)
		r.widen(cells)
		if len(r.held) > tableHold {
			r.flushHeld()
		}
		return r.err
	}
	r.tableLine(cells)
	return r.err
}

func (r *resultWriter) flushHeld() {
	for i, cells := range r.held {
		r.tableLine(cells)
		if i == 0 {
			seps := make([]string, len(r.width))
			for j, w := range r.width {
				seps[j] = strings.Repeat("-", w)
			}
			r.tableLine(seps)
		}
	}
	r.held = nil
}

func (r *resultWriter) tableLine(cells []string) {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteString("  ")
		}
		b.WriteString(c)
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", max(0, r.width[i]-utf8.RuneCountInString(c))))
		}
	}
	b.WriteByte('\n')
	if _, err := r.w.WriteString(b.String()); err != nil && r.err == nil {
		r.err = err
	}
}

func (r *resultWriter) jsonRow(vals []any) error {
	var b []byte
	if r.n > 1 {
		b = append(b, ',')
	}
	b = append(b, "\n{"...)
	for i, v := range vals {
		if i > 0 {
			b = append(b, ", "...)
		}
		k, _ := json.Marshal(r.cols[i])
		b = append(b, k...)
		b = append(b, ": "...)
		b = appendJSONValue(b, v)
	}
	b = append(b, '}')
	_, err := r.w.Write(b)
	return err
}

func appendJSONValue(b []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...)
	case int64:
		return strconv.AppendInt(b, t, 10)
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, t, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, t)
	}
	s, _ := json.Marshal(cellText(v, false))
	return append(b, s...)
}

// end finishes the output.
func (r *resultWriter) end() error {
	switch r.format {
	case "csv":
		r.csv.Flush()
		if err := r.csv.Error(); err != nil {
			return err
		}
	case "json":
		if r.n > 0 {
			r.w.WriteString("\n")
		}
		r.w.WriteString("]\n")
	case "table":
		if r.held != nil {
			r.flushHeld()
		}
		fmt.Fprintf(r.w, "(%d rows)\n", r.n)
	}
	if r.err != nil {
		return r.err
	}
	return r.w.Flush()
}

// cellText formats a value; safe quotes strings that hold control
// characters or bytes that are not UTF-8, for a terminal.
func cellText(v any, safe bool) string {
	switch t := v.(type) {
	case nil:
		return ""
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	case time.Time:
		return t.UTC().Format(analyze.TimeLayout)
	case []byte:
		return `\x` + hex.EncodeToString(t)
	case string:
		if safe {
			return safeCell(t)
		}
		return t
	}
	return fmt.Sprint(v)
}

// safeCell quotes s when it holds control characters or invalid UTF-8,
// so that a name from a capture cannot move the cursor or forge a line.
func safeCell(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}
