package cut

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/elastic/go-libaudit/v2/auparse"

	"proctrail/analyze"
	"proctrail/formats"
	"proctrail/replay"
)

// Options configure Write.
type Options struct {
	// Select is the selection, as for analyze.Build; the zero value
	// keeps every process.
	Select analyze.Options
	// Selection is the selection as `proctrail analyze` flags, recorded
	// in the cut's header.
	Selection []string
	// Redact masks, in the messages kept and the header, every match of
	// these patterns in names, paths, arguments, working directories,
	// hostnames and procfs records: each byte of a match becomes '*'.
	Redact []*regexp.Regexp
}

// Result is what Write did.
type Result struct {
	// Header is the cut's section header.
	Header formats.Header
	// Selected counts the processes of the selection.
	Selected int
	// Received, Kept and Masked count per source the messages of the
	// captures cut, those the cut holds, and the fields masked in them.
	Received, Kept, Masked [formats.NumSources]uint64
	// HeaderMasked counts the header's fields masked.
	HeaderMasked int
	// UnreadableBytes and Damage are the captures' damage: a damaged
	// capture is cut as far as it reads.
	UnreadableBytes int64
	Damage          []formats.Damage
}

// maxRecent bounds the audit events whose late EOE record the cut still
// recognizes: the EOE comes right after the event's PROCTITLE.
const maxRecent = 4096

// Write cuts files (captures or auditd logs, as replay.Open reads them) to
// w. It does not close w.
func Write(w io.Writer, files []string, o *Options) (*Result, error) {
	if o == nil {
		o = &Options{}
	}
	s1, err := replay.Open(files, nil)
	if err != nil {
		return nil, err
	}
	plan, err := analyze.PlanCut(s1, &o.Select)
	s1.Close()
	if err != nil {
		return nil, err
	}
	defer plan.Close()

	s, err := replay.Open(files, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rd := &redactor{res: o.Redact}
	res := &Result{Selected: plan.Selected()}
	info := s.Info()
	res.Header, res.HeaderMasked = header(s.Files(), info.AuditOnly, o, rd)
	sources := []formats.Source{formats.SourceConnector, formats.SourceAudit, formats.SourceProcfs}
	if info.AuditOnly {
		// Audit alone, and the procfs interface for the marks.
		sources = []formats.Source{formats.SourceAudit, formats.SourceProcfs}
	}
	fw, err := formats.NewWriter(w, &formats.Options{Header: res.Header, Sources: sources, Background: true, ExactTimes: true})
	if err != nil {
		return nil, err
	}
	c := &copier{fw: fw, rd: rd, res: res, plan: plan, reasm: replay.NewReassembler(nil),
		open: map[eventKey]*event{}, recent: map[eventKey]bool{}}
	if err := c.copy(s); err != nil {
		fw.Close()
		return nil, err
	}
	if err := plan.Err(); err != nil {
		fw.Close()
		return nil, fmt.Errorf("cut: plan: %w", err)
	}
	info = s.Info()
	for _, src := range sources {
		res.Received[src] = info.Messages[src]
		fw.SetStats(src, formats.Stats{Time: info.End, Received: info.Messages[src], Dropped: info.Lost[src],
			Accepted: res.Kept[src], Masked: res.Masked[src]})
	}
	res.UnreadableBytes, res.Damage = info.UnreadableBytes, info.Damage
	if err := fw.Close(); err != nil {
		return nil, err
	}
	return res, nil
}

// copier is the second pass: it reads the messages in capture order and
// groups audit records into events as the replay's NextEvent does (the
// same reassembler, the same order of pops and takes), so that its events
// come in the plan's order; and it writes the messages of the events kept
// in capture order. The records of an audit event wait, with what comes
// after them, until the event is complete and the plan has decided: a
// few messages, as events complete within the reassembler's bounds.
type copier struct {
	fw     *formats.Writer
	rd     *redactor
	res    *Result
	plan   *analyze.CutPlan
	reasm  *replay.Reassembler
	open   map[eventKey]*event // the audit events open in reasm
	recent map[eventKey]bool   // the latest audit events kept, for their late EOE
	order  []eventKey
	queue  []*item // messages in capture order, waiting for their event's decision
	buf    []byte
}

type eventKey struct {
	node   string
	serial uint64
}

// event is the plan's decision on one event, once made.
type event struct {
	decided, keep bool
	first         *item // an audit event's first record
}

// item is a message waiting to be written, or a mark (raw nil).
type item struct {
	src  formats.Source
	t    int64
	raw  []byte
	ev   *event
	mark int32
}

// copy reads s to its end.
func (c *copier) copy(s *replay.Stream) error {
	for {
		m, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if m.Err != nil {
			continue // no event: the replay skips it
		}
		if m.Source == formats.SourceAudit {
			c.audit(m)
		} else {
			ev := &event{}
			it := &item{src: m.Source, t: m.Time, raw: m.Raw, ev: ev}
			c.queue = append(c.queue, it)
			c.decide(ev, m.Time)
			if m.ProcFS != nil && m.ProcFS.Kind == formats.ReasonSelected {
				ev.keep = false // the marks of a cut cut again are written anew
			}
			if r := m.ProcFS; r != nil && !ev.keep && r.Mountinfo != "" {
				// A mount table maps the paths of every process of its
				// namespace to the host's, and the first is the host's:
				// it is kept, alone, for a process that is not.
				mounts := formats.ProcRecord{Kind: formats.ReasonMounts, PID: r.PID, Mountinfo: r.Mountinfo, After: r.After,
					Namespaces: []formats.Namespace{{Name: "mnt", Inode: r.MountNS()}}}
				raw, err := mounts.AppendBinary(nil)
				if err != nil {
					return err
				}
				it.raw, ev.keep = raw, true
			}
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
	c.reasm.Flush()
	c.pop()
	return c.flush()
}

// audit queues an audit record, pushes it and decides the events it
// completed.
func (c *copier) audit(m *replay.Message) {
	r := m.Audit
	key := eventKey{r.Node, r.Serial}
	ev := c.open[key]
	switch {
	case ev != nil:
	case r.Type == auparse.AUDIT_EOE:
		// The EOE of an event complete already (at its PROCTITLE): it
		// goes with it.
		ev = &event{decided: true, keep: c.recent[key]}
	default:
		ev = &event{}
		c.open[key] = ev
	}
	it := &item{src: formats.SourceAudit, t: m.Time, raw: m.Raw, ev: ev}
	c.queue = append(c.queue, it)
	if ev.first == nil {
		ev.first = it
	}
	c.reasm.Push(m.Time, *r)
	c.pop()
}

// pop decides the audit events the reassembler completed, in order. The
// first record of each takes the event's time as the replay gave it (the
// latest capture time then, never less than its own), so that the cut's
// replay gives it too.
func (c *copier) pop() {
	for {
		ae, ok := c.reasm.Pop()
		if !ok {
			return
		}
		key := eventKey{ae.Node, ae.Serial}
		ev := c.open[key]
		delete(c.open, key)
		if ev == nil {
			ev = &event{} // cannot be: every record opened an event or joined one
		}
		c.decide(ev, ae.Received)
		if ev.first != nil && ae.Received > ev.first.t {
			ev.first.t = ae.Received
		}
		if ev.keep {
			c.remember(key)
		}
	}
}

// decide takes the plan's decision on the next event, and queues the
// marks of the processes it selects first: they follow the event's last
// message, where the replay applies the event.
func (c *copier) decide(ev *event, t int64) {
	keep, marks := c.plan.Next()
	ev.keep, ev.decided = keep, true
	for _, pid := range marks {
		c.queue = append(c.queue, &item{src: formats.SourceProcfs, t: t, mark: pid, ev: &event{decided: true, keep: true}})
	}
}

// flush writes the messages at the head of the queue whose event is
// decided.
func (c *copier) flush() error {
	n := 0
	for ; n < len(c.queue) && c.queue[n].ev.decided; n++ {
		it := c.queue[n]
		c.queue[n] = nil
		switch {
		case !it.ev.keep:
		case it.raw == nil:
			rec := formats.ProcRecord{Kind: formats.ReasonSelected, PID: it.mark}
			b, err := rec.AppendBinary(c.buf[:0])
			if err != nil {
				return err
			}
			c.buf = b
			if err := c.fw.WritePacket(formats.SourceProcfs, it.t, b); err != nil {
				return err
			}
		default:
			if err := c.write(it.src, it.t, it.raw); err != nil {
				return err
			}
		}
	}
	if n == len(c.queue) {
		c.queue = c.queue[:0]
	} else if n > 0 {
		c.queue = append(c.queue[:0], c.queue[n:]...)
	}
	return nil
}

// remember notes an audit event kept, forgetting the oldest past
// maxRecent.
func (c *copier) remember(k eventKey) {
	if c.recent[k] {
		return
	}
	c.recent[k] = true
	c.order = append(c.order, k)
	if len(c.order) > maxRecent {
		delete(c.recent, c.order[0])
		c.order = c.order[1:]
	}
}

// write writes one message of src, masked.
func (c *copier) write(src formats.Source, t int64, raw []byte) error {
	if len(c.rd.res) > 0 {
		c.buf = append(c.buf[:0], raw...)
		raw = c.buf
		switch src {
		case formats.SourceConnector:
			c.res.Masked[src] += c.rd.procEvent(raw)
		case formats.SourceAudit:
			c.res.Masked[src] += c.rd.auditRecord(raw)
		case formats.SourceProcfs:
			b, n, err := c.rd.procRecord(raw)
			if err != nil {
				return fmt.Errorf("cut: procfs record: %w", err)
			}
			raw = b
			c.res.Masked[src] += n
		}
	}
	c.res.Kept[src]++
	return c.fw.WritePacket(src, t, raw)
}

// header is the cut's section header: the first capture's host facts,
// masked, and the cut's provenance; a capture id of its own, from what
// was cut and how. A cut of auditd logs or imports is an import of its
// own (ImportedFrom), so that it replays as audit alone, like them.
func header(files []replay.FileHeader, auditOnly bool, o *Options, rd *redactor) (formats.Header, int) {
	first := files[0].Header
	h := formats.Header{
		Hostname: first.Hostname, KernelRelease: first.KernelRelease, Machine: first.Machine,
		BootTime: first.BootTime, Version: first.Version, CommandLine: slices.Clone(first.CommandLine),
		Start: first.Start,
	}
	var masked uint64
	rd.maskString(&h.Hostname, &masked)
	for i := range h.CommandLine {
		rd.maskString(&h.CommandLine[i], &masked)
	}
	ci := &formats.CutInfo{Selection: slices.Clone(o.Selection), Redactions: len(o.Redact)}
	if ci.Selection == nil {
		ci.Selection = []string{}
	}
	id := sha256.New()
	for _, f := range files {
		from := f.Header.CaptureID
		if from == "" {
			from = "file:" + filepath.Base(f.Name)
		}
		if !slices.Contains(ci.From, from) {
			ci.From = append(ci.From, from)
		}
		ci.Files = append(ci.Files, filepath.Base(f.Name))
		if auditOnly {
			if f.Log {
				h.ImportedFrom = append(h.ImportedFrom, filepath.Base(f.Name))
			} else {
				h.ImportedFrom = append(h.ImportedFrom, f.Header.ImportedFrom...)
			}
		}
		fmt.Fprintf(id, "%q %q\n", from, filepath.Base(f.Name))
	}
	if auditOnly && h.ImportedFrom == nil {
		h.ImportedFrom = []string{}
	}
	fmt.Fprintf(id, "%q\n", ci.Selection)
	for _, re := range o.Redact {
		fmt.Fprintf(id, "%q\n", re.String())
	}
	h.CaptureID = hex.EncodeToString(id.Sum(nil)[:16])
	ci.HeaderMasked = int(masked)
	h.Cut = ci
	return h, int(masked)
}
