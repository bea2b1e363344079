package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	errRender := errors.New("render failed")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := writeOutput(out, nil, write("hello")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "hello" {
		t.Fatalf("output %q, want hello", b)
	}
	// Failing before the first write leaves the file as it was.
	if err := writeOutput(out, nil, func(io.Writer) error { return errRender }); !errors.Is(err, errRender) {
		t.Fatalf("error %v, want %v", err, errRender)
	}
	if b, _ := os.ReadFile(out); string(b) != "hello" {
		t.Fatalf("an analysis that failed first changed the file: %q", b)
	}
	// Failing after writing removes the truncated output.
	big := make([]byte, 200<<10)
	if err := writeOutput(out, nil, func(w io.Writer) error { w.Write(big); return errRender }); !errors.Is(err, errRender) {
		t.Fatalf("error %v, want %v", err, errRender)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("truncated output left behind: %v", err)
	}
	// An empty output is still a file.
	if err := writeOutput(out, nil, write("")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}
