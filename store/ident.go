package store

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"

	"proctrail/formats"
	"proctrail/replay"
)

// Sources of a capture set: what made its files.
const (
	SourceRecord = "record" // proctrail record
	SourceImport = "import" // proctrail import (auditd logs made into a capture)
	SourceAuditd = "auditd" // an auditd text log, plain or gzip
)

// fileID is what Load knows of a file before reading it through.
type fileID struct {
	name      string
	captureID string
	source    string
	seq       int
	sha256    string
	size      int64
}

// identify reads what names a file: its capture set's id, its sequence
// number and its content hash.
//
// A recording's files carry the set's id (formats.Header.CaptureID) and
// their sequence number. An auditd log, and a capture without an id
// (`proctrail import` writes none), get a derived id: the first 32 hex
// digits of SHA-256 over "proctrail capture id", the source, the host,
// the first message's capture time and its bytes, joined by NULs. It
// depends on the file's first record only, so a log that grows keeps its
// id (and a later load replaces the earlier one), and the same log plain
// or gzip-compressed has the same id. Such a set has one file, seq 0.
func identify(name string) (*fileID, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	id := &fileID{name: name}
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(f, h), replay.SniffLen)
	head, _ := br.Peek(replay.SniffLen)
	var host string
	switch replay.Sniff(head) {
	case replay.KindCapture:
		r, err := formats.NewReader(br, &formats.ReaderOptions{Name: name})
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		hdr := r.Header()
		r.Close()
		id.captureID, id.seq, host = hdr.CaptureID, hdr.Sequence, hdr.Hostname
		id.source = SourceRecord
		if hdr.ImportedFrom != nil {
			id.source = SourceImport
		}
	case replay.KindLog:
		id.source = SourceAuditd
	default:
		return nil, fmt.Errorf("store: %s is neither a capture nor an auditd log", name)
	}
	// The rest of the file, for its hash.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	id.sha256 = hex.EncodeToString(h.Sum(nil))
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	id.size = fi.Size()
	if id.captureID == "" {
		id.seq = 0
		if id.captureID, err = derivedID(name, id.source, host); err != nil {
			return nil, err
		}
	}
	if id.seq < 0 {
		return nil, fmt.Errorf("store: %s: negative sequence number %d", name, id.seq)
	}
	return id, nil
}

// derivedID is the id of a set that has none: see identify.
func derivedID(name, source, host string) (string, error) {
	s, err := replay.Open([]string{name}, nil)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	defer s.Close()
	h := sha256.New()
	io.WriteString(h, "proctrail capture id\x00"+source+"\x00"+host+"\x00")
	m, err := s.Next()
	switch {
	case err == io.EOF:
		io.WriteString(h, "empty")
	case err != nil:
		return "", fmt.Errorf("store: %w", err)
	default:
		io.WriteString(h, strconv.FormatInt(m.Time, 10)+"\x00")
		h.Write(m.Raw)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// recordingID reads the set id and sequence number of a recording's
// file from its header alone, and its size; ok is false for anything
// else (an auditd log, an import, a capture without an id).
func recordingID(name string) (captureID string, seq int, size int64, ok bool) {
	f, err := os.Open(name)
	if err != nil {
		return "", 0, 0, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, 0, false
	}
	r, err := formats.NewReader(f, &formats.ReaderOptions{Name: name})
	if err != nil {
		return "", 0, 0, false
	}
	defer r.Close()
	h := r.Header()
	if h.CaptureID == "" || h.ImportedFrom != nil {
		return "", 0, 0, false
	}
	return h.CaptureID, h.Sequence, fi.Size(), true
}
