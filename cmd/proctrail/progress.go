package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress of analyze on a terminal: one line on stderr, rewritten with
// \r, saying how much of its input's compressed bytes analyze has read.
// It appears only when stderr is a terminal (never in a pipe or a file,
// so it changes no output and no log) and stdout is not, unless the output
// goes to a file (-o); and only after progressDelay, so
// that a short analysis prints nothing; it is rewritten at most every
// progressEvery and cleared before anything else is written to stderr.
const (
	progressDelay = 2 * time.Second
	progressEvery = 250 * time.Millisecond
)

// showProgress reports whether analyze shows its progress on stderr:
// when stderr is a terminal and the output, out (nil when it goes to a
// file of -o), is not one: output written to the terminal as it is made
// (a --tree) would be cut by the line.
func showProgress(stderr, out io.Writer) bool {
	return terminal(stderr) && (out == nil || !terminal(out))
}

func terminal(w io.Writer) bool {
	f, ok := rawWriter(w).(*os.File)
	return ok && isTerminal(f)
}

// readStatus is how far the input has been read.
type readStatus struct {
	Done, Total int64 // compressed bytes read, and of all files
	File, Files int   // the files begun, of all files
}

// formatProgress returns the progress line for st, without \r. With no
// total (the inputs are pipes), it says how much was read.
func formatProgress(st readStatus) string {
	if st.Total <= 0 {
		return fmt.Sprintf("proctrail: analyze: %.1f MB read", float64(st.Done)/1e6)
	}
	pct := int(min(st.Done, st.Total) * 100 / st.Total)
	mb := func(n int64) string {
		if st.Total < 100e6 {
			return fmt.Sprintf("%.1f", float64(n)/1e6)
		}
		return fmt.Sprintf("%.0f", float64(n)/1e6)
	}
	line := fmt.Sprintf("proctrail: analyze: %d%% (%s MB of %s MB compressed", pct, mb(min(st.Done, st.Total)), mb(st.Total))
	if st.Files > 1 {
		line += fmt.Sprintf(", file %d of %d", max(st.File, 1), st.Files)
	}
	return line + ")"
}

// progress writes the progress line to w. Its Write clears the line and
// ends the progress, so that warnings written through it start on a
// clean line. It is safe for concurrent use.
type progress struct {
	w     io.Writer
	now   func() time.Time
	start time.Time
	mu    sync.Mutex
	last  time.Time // when the line was last written
	width int       // of the line on the terminal; 0 when none
	ended bool
}

func newProgress(w io.Writer, now func() time.Time) *progress {
	return &progress{w: w, now: now, start: now()}
}

// show writes st's line if the analysis has run for progressDelay and the
// line was not written in the last progressEvery.
func (p *progress) show(st readStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	if p.ended || t.Sub(p.start) < progressDelay || (p.width > 0 && t.Sub(p.last) < progressEvery) {
		return
	}
	line := formatProgress(st)
	pad := max(p.width-len(line), 0) // a shorter line covers the longer one
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.last, p.width = t, len(line)
}

// end clears the line, if any, and stops the progress.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.ended = true
}

func (p *progress) clear() {
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

// Write ends the progress and writes b to w.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.ended = true
	return p.w.Write(b)
}

// readCounter counts the bytes read of a set of files through its open.
// A file's count is that of its latest open: replay reads each header
// first, then opens the file again to read it through, which replaces the
// header's count. Files counts the files opened more than once.
type readCounter struct {
	total int64
	index map[string]int
	read  []atomic.Int64
	opens []atomic.Int32
}

func newReadCounter(files []string) *readCounter {
	rc := &readCounter{index: map[string]int{}, read: make([]atomic.Int64, len(files)), opens: make([]atomic.Int32, len(files))}
	for i, name := range files {
		if _, dup := rc.index[name]; dup {
			continue
		}
		rc.index[name] = i
		if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() { // a pipe's size is unknown
			rc.total += fi.Size()
		}
	}
	return rc
}

// open is os.Open, counting what is read.
func (rc *readCounter) open(name string) (io.ReadCloser, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	i, ok := rc.index[name]
	if !ok {
		return f, nil
	}
	rc.opens[i].Add(1)
	rc.read[i].Store(0)
	return &countedFile{f, &rc.read[i]}, nil
}

// status returns how far the files have been read.
func (rc *readCounter) status() readStatus {
	st := readStatus{Total: rc.total, Files: len(rc.index)}
	for i := range rc.read {
		st.Done += rc.read[i].Load()
		if rc.opens[i].Load() > 1 {
			st.File++
		}
	}
	return st
}

// countedFile is a file that counts the bytes read from it; it has no
// other method, so no io.Copy reads around the count.
type countedFile struct {
	f *os.File
	n *atomic.Int64
}

func (c *countedFile) Read(b []byte) (int, error) {
	n, err := c.f.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *countedFile) Close() error { return c.f.Close() }

// startProgress shows the progress of reading files on stderr if
// showProgress(stderr, out). It returns the open function for replay (nil: replay's
// default), the writer to use for stderr from then on, and stop, which
// clears the line and must be called before returning.
func startProgress(stderr, out io.Writer, files []string) (open func(string) (io.ReadCloser, error), w io.Writer, stop func()) {
	if !showProgress(stderr, out) {
		return nil, stderr, func() {}
	}
	rc := newReadCounter(files)
	p := newProgress(stderr, time.Now)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				p.show(rc.status())
			}
		}
	})
	return rc.open, p, func() {
		close(done)
		wg.Wait()
		p.end()
	}
}
