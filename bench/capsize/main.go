// Command capsize shows what a capture's size is made of: it re-encodes the
// capture's packets with formats.Writer in variants (one source alone,
// receipt timestamps rounded, other zstd levels, audit messages not
// elided) and prints each variant's size in bytes per audit event, as a
// markdown table.
//
//	capsize CAPTURE
//
// Events are the distinct audit serials of the capture. The re-encoding
// closes frames at the default 4 MiB only, where the recorder also closes
// one every second, so "as recorded" can differ slightly from "all".
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"proctrail/formats"
)

type variant struct {
	name  string
	level zstd.EncoderLevel
	keep  func(formats.Record) bool
	ts    func(int64) int64
	// noElide writes every audit message as a packet (Options.NoElide).
	noElide bool
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: capsize CAPTURE")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "capsize:", err)
		os.Exit(1)
	}
}

func run(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	r, err := formats.NewReader(bufio.NewReaderSize(f, 1<<20), &formats.ReaderOptions{Name: name})
	if err != nil {
		return err
	}
	defer r.Close()
	var recs []formats.Record
	serials := map[string]bool{}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rec.Data = bytes.Clone(rec.Data)
		recs = append(recs, rec)
		if rec.Source == formats.SourceAudit && len(rec.Data) > 16 {
			if i := bytes.IndexByte(rec.Data[16:], ')'); i > 0 {
				serials[string(rec.Data[16:16+i])] = true
			}
		}
	}
	events := float64(len(serials))
	if events == 0 {
		return fmt.Errorf("%s: no audit events", name)
	}

	all := func(formats.Record) bool { return true }
	only := func(s formats.Source) func(formats.Record) bool {
		return func(r formats.Record) bool { return r.Source == s }
	}
	id := func(t int64) int64 { return t }
	round := func(d int64) func(int64) int64 { return func(t int64) int64 { return t / d * d } }
	zero := func(int64) int64 { return 0 }
	vs := []variant{
		{"all (re-encoded as the recorder does)", 0, all, id, false},
		{"all, audit messages not elided", 0, all, id, true},
		{"audit only", 0, only(formats.SourceAudit), id, false},
		{"audit only, not elided", 0, only(formats.SourceAudit), id, true},
		{"connector only", 0, only(formats.SourceConnector), id, false},
		{"procfs only", 0, only(formats.SourceProcfs), id, false},
		{"all, receipt times rounded to 1 µs", 0, all, round(1e3), false},
		{"all, receipt times rounded to 1 ms", 0, all, round(1e6), false},
		{"all, receipt times zero", 0, all, zero, false},
		{"audit only, receipt times zero", 0, only(formats.SourceAudit), zero, false},
		{"all, zstd fastest", zstd.SpeedFastest, all, id, false},
		{"all, zstd better", zstd.SpeedBetterCompression, all, id, false},
		{"all, zstd best", zstd.SpeedBestCompression, all, id, false},
		{"all, times to 1 ms, zstd better", zstd.SpeedBetterCompression, all, round(1e6), false},
	}
	fmt.Printf("%s: %d bytes, %d packets, %.0f audit events: %.2f B/event as recorded\n\n",
		name, fi.Size(), len(recs), events, float64(fi.Size())/events)
	fmt.Println("| variant | messages | elided | uncompressed MB | bytes | B/audit event |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, v := range vs {
		var buf bytes.Buffer
		w, err := formats.NewWriter(&buf, &formats.Options{Level: v.level, NoElide: v.noElide})
		if err != nil {
			return err
		}
		n, raw := 0, 0
		for _, rec := range recs {
			if v.keep(rec) {
				if err := w.WritePacket(rec.Source, v.ts(rec.Time), rec.Data); err != nil {
					return err
				}
				n++
				raw += len(rec.Data)
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
		fmt.Printf("| %s | %d | %d | %.1f | %d | %.2f |\n", v.name, n, w.Elided(), float64(raw)/1e6, buf.Len(), float64(buf.Len())/events)
	}
	return nil
}
