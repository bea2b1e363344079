package formats

import (
	"fmt"
	"io"
)

// Summary describes one capture file, as `proctrail info` shows it.
type Summary struct {
	Header Header
	// First and Last are the times of the first and last records, ns since
	// the Unix epoch; 0 when the file holds none.
	First, Last int64
	// Messages counts the records read per source; Stats holds the latest
	// counters the recorder wrote (Received, Dropped), when present.
	Messages [NumSources]uint64
	Stats    [NumSources]Stats
	HasStats [NumSources]bool
	Frames   int
	// Restored counts the audit messages restored from elision markers
	// (counted in Messages too): a pcapng reader such as tshark, which
	// does not restore them, sees that many fewer packets.
	Restored  uint64
	Bytes     int64 // compressed size read
	Truncated int64 // bytes of an incomplete last frame
	// Unreadable counts all bytes that could not be read, truncated tail
	// included; Damage lists where.
	Unreadable int64
	Damage     []Damage
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Summarize reads a whole capture file and summarizes it. name is used in
// errors.
func Summarize(r io.Reader, name string) (*Summary, error) {
	cr := &countingReader{r: r}
	rd, err := NewReader(cr, &ReaderOptions{Name: name})
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	s := &Summary{Header: rd.Header()}
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		s.Messages[rec.Source]++
		if s.First == 0 || rec.Time < s.First {
			s.First = rec.Time
		}
		s.Last = max(s.Last, rec.Time)
	}
	for src := range Source(NumSources) {
		s.Stats[src], s.HasStats[src] = rd.Stats(src)
	}
	s.Frames = rd.Frames()
	s.Restored = rd.Restored()
	s.Bytes = cr.n
	s.Truncated = rd.TruncatedBytes()
	s.Unreadable = rd.UnreadableBytes()
	s.Damage = rd.Damage()
	return s, nil
}
