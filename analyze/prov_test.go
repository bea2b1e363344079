package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"proctrail/internal/testenv"
)

// provCase is a model to write as PROV, with the JSON output it is
// checked against.
type provCase struct {
	name string
	m    *Model
	js   []byte
}

// provCaptures builds every capture of ../testdata/analyze/<case>/ (a
// rotated set as one) with its golden options, as TestGolden does, and
// fails when there is none.
func provCaptures(t *testing.T) []provCase {
	t.Helper()
	dirs, _ := filepath.Glob("../testdata/analyze/*")
	var cases []provCase
	for _, dir := range dirs { // Glob sorts
		files, _ := filepath.Glob(filepath.Join(dir, "capture*.zst"))
		if len(files) == 0 {
			continue
		}
		o, _ := loadGoldenOptions(t, dir)
		_, statErr := os.Stat(filepath.Join(dir, "options.json"))
		m := buildCapture(t, files, o, statErr != nil)
		var js bytes.Buffer
		if err := WriteJSON(&js, m); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, provCase{filepath.Base(dir), m, js.Bytes()})
	}
	if len(cases) == 0 {
		t.Fatal("no captures in ../testdata/analyze/*/")
	}
	return cases
}

// provHostileModel names everything with what a capture may hold: control
// characters, quotes, invalid UTF-8, line separators, percent signs and
// paths that differ only in bytes PROV ids must encode.
func provHostileModel() *Model {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	paths := []string{"/tmp/a b", "/tmp/a%20b", "/tmp/x.", "/tmp/x%2E", "rel/é", "/rel/é", "/tmp/\n\"\\}", "/tmp/\xff", "/tmp/\u2028:\x00"}
	var files []File
	for i, p := range paths {
		files = append(files, File{Path: p, Op: []string{"open", "create", "unlink", "chdir", "mkdir"}[i%5], Mode: "r", Open: t0 + int64(i)})
	}
	files = append(files,
		File{Path: "/tmp/\x1b[31m", Op: "rename", Open: t0, Close: t0, To: "/tmp/\"new\xfe"},
		File{Path: "/etc/shadow", Op: "open", Mode: "r", Open: t0, Close: t0, Error: "EACCES"},
		File{Path: "/bin/\xff\"", Op: "exec", Open: t0, Close: t0},
		File{Path: "", Op: "open", Mode: "w", Open: t0})
	child := &Process{PID: 2, PPID: 1, Start: t0 + 1, UID: -1, Comm: "\x1b]0;pwned\x07", Container: "\"},{\"x\":\xff"}
	twin := &Process{PID: 2, PPID: 1, Start: t0 + 1, UID: 4294967294, Comm: "twin"}
	return &Model{Processes: []*Process{{
		PID: 1, Start: t0, End: t0 + 1000, Exited: true, Signal: 9, CoreDumped: true, UID: 0,
		Comm: "\"}\n\x00", Exe: "/bin/\xff\"", Argv: []string{"a\x00b", "\xff\xfe", "\u2028", `","`, "a", "a"}, Cwd: "\xc3",
		Execs:    []Exec{{Time: t0, Exe: "/bin/\xff\"", Argv: []string{"\x7f\"]"}, Cwd: "/\t"}},
		Files:    files,
		Children: []*Process{child, twin},
	}}}
}

// provSections are the top-level members of a PROV-JSON document that
// WritePROV writes, in order.
var provSections = []string{"prefix", "activity", "entity", "agent", "used", "wasGeneratedBy",
	"wasInvalidatedBy", "wasDerivedFrom", "wasInformedBy", "wasAssociatedWith"}

// provWant is what a PROV document of the model whose JSON output is js
// must hold, worked out from the JSON output by the mapping WritePROV
// documents: record counts per section, per section and prov:type for
// nodes ("entity proctrail:File"), and the paths of the entities.
func provWant(t *testing.T, js []byte) (counts map[string]int, paths []string) {
	t.Helper()
	type file struct {
		Path, Op, Mode, To, Error string
	}
	type net struct {
		Op, Family, Addr, Path, Error string
		Port                          *int
	}
	type proc struct {
		PID   int32  `json:"pid"`
		Start string `json:"start"`
		UID   *int64 `json:"uid"`
		Execs []struct {
			Exe string `json:"exe"`
		} `json:"execs"`
		Files   []file `json:"files"`
		Net     []net  `json:"net"`
		Signals []struct {
			Op     string `json:"op"`
			Target *struct {
				PID   int32  `json:"pid"`
				Start string `json:"start"`
			} `json:"target"`
		} `json:"signals"`
		Children []*proc `json:"children"`
	}
	endpoints := map[string]bool{}
	var doc struct{ Processes []*proc }
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	counts = map[string]int{}
	exe := map[string]bool{} // the entities, true when executed
	uids := map[int64]bool{}
	generating := map[string]bool{"create": true, "mkdir": true, "mknod": true, "symlink": true, "link": true, "chmod": true, "chown": true,
		"utime": true, "truncate": true, "setxattr": true, "removexattr": true, "mount": true}
	// The processes, by pid and start, for the targets of signals.
	inDoc := map[string]bool{}
	var index func([]*proc)
	index = func(ps []*proc) {
		for _, p := range ps {
			inDoc[fmt.Sprint(p.PID, p.Start)] = true
			index(p.Children)
		}
	}
	index(doc.Processes)
	var walk func([]*proc)
	walk = func(ps []*proc) {
		for _, p := range ps {
			counts["activity"]++
			counts["activity proctrail:Process"]++
			if p.UID != nil {
				uids[*p.UID] = true
				counts["wasAssociatedWith"]++
			}
			counts["wasInformedBy"] += len(p.Children)
			// Each signal an entity the sender generated and its target,
			// when in the document, used.
			for _, sg := range p.Signals {
				counts["entity"]++
				counts["wasGeneratedBy"]++
				if sg.Op == "ptrace" {
					counts["entity proctrail:Ptrace"]++
				} else {
					counts["entity proctrail:Signal"]++
				}
				if sg.Target != nil {
					start := sg.Target.Start
					if start == "" { // a start of 0 is left out
						start = "1970-01-01T00:00:00.000000000Z"
					}
					if inDoc[fmt.Sprint(sg.Target.PID, start)] {
						counts["used"]++
					}
				}
			}
			var exes []string
			for _, x := range p.Execs {
				if x.Exe != "" {
					counts["used"]++
					exe[x.Exe] = true
					exes = append(exes, x.Exe)
				}
			}
			for _, f := range p.Files {
				if f.Error != "" || f.Path == "" || f.Op == "exec" && slices.Contains(exes, f.Path) {
					continue
				}
				exe[f.Path] = exe[f.Path] || f.Op == "exec"
				switch {
				case f.Op == "open":
					if f.Mode != "w" {
						counts["used"]++
					}
					if f.Mode == "w" || f.Mode == "rw" {
						counts["wasGeneratedBy"]++
					}
				case generating[f.Op]:
					counts["wasGeneratedBy"]++
				case f.Op == "rename":
					counts["wasInvalidatedBy"]++
					if f.To != "" {
						if _, ok := exe[f.To]; !ok {
							exe[f.To] = false
						}
						counts["wasGeneratedBy"]++
						counts["wasDerivedFrom"]++
					}
				case f.Op == "unlink" || f.Op == "rmdir" || f.Op == "umount":
					counts["wasInvalidatedBy"]++
				default:
					counts["used"]++
				}
			}
			for _, n := range p.Net {
				// An endpoint: an address and port, or a path, or a
				// (netlink) port alone; failed calls and socket() left out.
				if n.Error != "" || n.Op == "socket" || n.Addr == "" && n.Path == "" && n.Port == nil {
					continue
				}
				port := -1
				if n.Port != nil {
					port = *n.Port
				}
				endpoints[fmt.Sprint(n.Family, "|", n.Addr, "|", port, "|", n.Path)] = true
				if n.Op == "bind" {
					counts["wasGeneratedBy"]++
				} else {
					counts["used"]++
				}
			}
			walk(p.Children)
		}
	}
	walk(doc.Processes)
	counts["entity"] += len(endpoints)
	if len(endpoints) > 0 {
		counts["entity proctrail:Endpoint"] = len(endpoints)
	}
	for p, x := range exe {
		paths = append(paths, p)
		counts["entity"]++
		if x {
			counts["entity proctrail:Executable"]++
		} else {
			counts["entity proctrail:File"]++
		}
	}
	slices.Sort(paths)
	counts["agent"] = len(uids)
	if len(uids) > 0 {
		counts["agent proctrail:User"] = len(uids)
	}
	for k, v := range counts {
		if v == 0 {
			delete(counts, k)
		}
	}
	return counts, paths
}

// provDoc is a PROV-JSON document: section, record id, attributes.
type provDoc map[string]map[string]map[string]any

func parseProv(t *testing.T, b []byte) provDoc {
	t.Helper()
	if !json.Valid(b) || !utf8.Valid(b) {
		t.Fatalf("invalid JSON or UTF-8:\n%s", b)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(provSections)), slices.Sorted(func(yield func(string) bool) {
		for k := range raw {
			if !yield(k) {
				return
			}
		}
	})); diff != "" {
		t.Errorf("sections (-want +got):\n%s", diff)
	}
	prev := -1
	for _, s := range provSections {
		i := bytes.Index(b, []byte("\n  \""+s+"\": "))
		if i <= prev {
			t.Errorf("section %s is not in its place", s)
		}
		prev = i
	}
	var prefix map[string]string
	if err := json.Unmarshal(raw["prefix"], &prefix); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"proctrail": PROVNamespace}, prefix); diff != "" {
		t.Errorf("prefix (-want +got):\n%s", diff)
	}
	d := provDoc{}
	for _, s := range provSections[1:] {
		var recs map[string]map[string]any
		if err := json.Unmarshal(raw[s], &recs); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		d[s] = recs
	}
	return d
}

// counts counts d's records as provWant does.
func (d provDoc) counts() map[string]int {
	c := map[string]int{}
	for s, recs := range d {
		for _, r := range recs {
			c[s]++
			if typ, ok := r["prov:type"].(map[string]any); ok {
				c[s+" "+typ["$"].(string)]++
			}
		}
	}
	return c
}

var (
	provIDRE   = regexp.MustCompile(`^proctrail:(process/-?\d+--?\d+(~\d+)?|file/([A-Za-z0-9_.~/%-]*[A-Za-z0-9_~/%-])?|relfile/[A-Za-z0-9_.~/%-]*[A-Za-z0-9_~/%-]|endpoint/[a-z0-9%]+/[A-Za-z0-9_.~/%-]*[A-Za-z0-9_~/%-]|signal/-?\d+--?\d+(~\d+)?-\d+|user/\d+)$`)
	provTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)
)

// checkProvRefs checks that every id is a valid qualified name of its
// kind, that every relation names records of the document, with the
// blank ids of its kind, and that times are xsd:dateTime in UTC.
func checkProvRefs(t *testing.T, d provDoc) {
	t.Helper()
	for _, s := range []string{"activity", "entity", "agent"} {
		for id, r := range d[s] {
			if !provIDRE.MatchString(id) {
				t.Errorf("%s id %q is not a qualified name of proctrail's", s, id)
			}
			for _, k := range []string{"prov:startTime", "prov:endTime"} {
				if v, ok := r[k]; ok && !provTimeRE.MatchString(v.(string)) {
					t.Errorf("%s %s %s = %q", s, id, k, v)
				}
			}
		}
	}
	refs := map[string]string{
		"prov:activity": "activity", "prov:informed": "activity", "prov:informant": "activity",
		"prov:entity": "entity", "prov:generatedEntity": "entity", "prov:usedEntity": "entity",
		"prov:agent": "agent",
	}
	blank := map[string]string{"used": "u", "wasGeneratedBy": "g", "wasInvalidatedBy": "x", "wasDerivedFrom": "d", "wasInformedBy": "i", "wasAssociatedWith": "a"}
	for s, letter := range blank {
		for n := 1; n <= len(d[s]); n++ {
			if _, ok := d[s][fmt.Sprintf("_:%s%d", letter, n)]; !ok {
				t.Errorf("%s has no _:%s%d: ids are not numbered 1…%d", s, letter, n, len(d[s]))
			}
		}
		for id, r := range d[s] {
			for k, v := range r {
				if kind, ok := refs[k]; ok {
					if _, found := d[kind][v.(string)]; !found {
						t.Errorf("%s %s: %s %q is not a declared %s", s, id, k, v, kind)
					}
				}
			}
			if v, ok := r["prov:time"]; ok && !provTimeRE.MatchString(v.(string)) {
				t.Errorf("%s %s prov:time = %q", s, id, v)
			}
		}
	}
}

// entityPaths returns the proctrail:path of d's file entities (not
// endpoints' nor signals'), sorted.
func (d provDoc) entityPaths() []string {
	var out []string
	for _, r := range d["entity"] {
		if r["prov:type"].(map[string]any)["$"] == "proctrail:Endpoint" {
			continue
		}
		if p, ok := r["proctrail:path"].(string); ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func writeProv(t *testing.T, m *Model) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WritePROV(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPROVCaptures writes each real capture of ../testdata/analyze as
// PROV-JSON and checks it against the capture's JSON output: as many
// activities as processes, an entity per distinct executed or accessed
// path, an agent per uid, a wasInformedBy per child and the relations of
// the documented mapping; every reference resolves; the same capture
// built twice gives the same bytes.
func TestPROVCaptures(t *testing.T) {
	seen := map[string]int{}
	for _, c := range provCaptures(t) {
		t.Run(c.name, func(t *testing.T) {
			got := writeProv(t, c.m)
			if again := writeProv(t, c.m); !bytes.Equal(got, again) {
				t.Fatal("two writes of one model differ")
			}
			d := parseProv(t, got)
			want, paths := provWant(t, c.js)
			if diff := cmp.Diff(want, d.counts()); diff != "" {
				t.Errorf("record counts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(paths, d.entityPaths()); diff != "" {
				t.Errorf("entity paths (-want +got):\n%s", diff)
			}
			checkProvRefs(t, d)
			for k, v := range want {
				seen[k] += v
			}
		})
	}
	for _, s := range provSections[1:] {
		if seen[s] == 0 {
			t.Errorf("no capture makes a %s record: nothing checks it", s)
		}
	}
	t.Run("rebuilt", func(t *testing.T) {
		a, b := provCaptures(t), provCaptures(t)
		for i := range a {
			if !bytes.Equal(writeProv(t, a[i].m), writeProv(t, b[i].m)) {
				t.Errorf("%s: two builds of the capture give different PROV", a[i].name)
			}
		}
	})
}

// checkProvModel checks the PROV of m against its JSON output and
// returns it parsed: counts, entity paths, references, an entity id per
// distinct path that decodes to the path's bytes, and the same bytes
// twice.
func checkProvModel(t *testing.T, m *Model) provDoc {
	t.Helper()
	var js bytes.Buffer
	if err := WriteJSON(&js, m); err != nil {
		t.Fatal(err)
	}
	got := writeProv(t, m)
	if again := writeProv(t, m); !bytes.Equal(got, again) {
		t.Error("two writes of one model differ")
	}
	d := parseProv(t, got)
	want, paths := provWant(t, js.Bytes())
	if diff := cmp.Diff(want, d.counts()); diff != "" {
		t.Errorf("record counts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(paths, d.entityPaths()); diff != "" {
		t.Errorf("entity paths (-want +got):\n%s", diff)
	}
	checkProvRefs(t, d)

	raw := map[string]bool{}
	for _, p := range preorder(m.Processes) {
		for _, x := range p.Execs {
			if x.Exe != "" {
				raw[x.Exe] = true
			}
		}
		for _, f := range p.Files {
			if f.Error == "" && f.Path != "" {
				raw[f.Path] = true
				if f.To != "" {
					raw[f.To] = true
				}
			}
		}
	}
	for id := range d["entity"] {
		rest, ok := strings.CutPrefix(id, "proctrail:file")
		if !ok {
			rest, _ = strings.CutPrefix(id, "proctrail:relfile/")
		}
		if strings.HasPrefix(id, "proctrail:signal/") {
			continue // checked by the counts
		}
		p, err := url.PathUnescape(rest)
		if err != nil || !raw[p] {
			t.Errorf("entity %q decodes to %q (%v), not a path of the model", id, p, err)
		}
	}
	signals := 0
	for _, p := range preorder(m.Processes) {
		signals += len(p.Signals)
	}
	if len(d["entity"]) != len(raw)+signals {
		t.Errorf("%d entities for %d distinct paths and %d signals", len(d["entity"]), len(raw), signals)
	}
	return d
}

// TestPROVHostile checks that hostile names (and the hostile model of
// the JSON tests: negative pids and times, empty names) give valid JSON,
// ids that are qualified names, an entity per distinct path however alike
// they print, and attributes that say what the model held (U+FFFD for
// bytes that are not UTF-8).
func TestPROVHostile(t *testing.T) {
	t.Run("json", func(t *testing.T) { checkProvModel(t, hostileModel()) })
	t.Run("alike", func(t *testing.T) {
		// Two paths that print the same, but are not the same bytes: two
		// entities (the JSON output shows both as "/tmp/\ufffd").
		m := &Model{Processes: []*Process{{PID: 1, UID: -1, Files: []File{
			{Path: "/tmp/\xff", Op: "open", Mode: "r", Open: 1},
			{Path: "/tmp/\ufffd", Op: "open", Mode: "r", Open: 2},
		}}}}
		d := parseProv(t, writeProv(t, m))
		checkProvRefs(t, d)
		if diff := cmp.Diff([]string{"/tmp/\ufffd", "/tmp/\ufffd"}, d.entityPaths()); diff != "" {
			t.Errorf("entity paths (-want +got):\n%s", diff)
		}
		for _, id := range []string{"proctrail:file/tmp/%FF", "proctrail:file/tmp/%EF%BF%BD"} {
			if d["entity"][id] == nil {
				t.Errorf("no entity %s", id)
			}
		}
	})
	m := provHostileModel()
	d := checkProvModel(t, m)

	// Attributes: as encoding/json writes the strings.
	jsonString := func(s string) string {
		b, _ := json.Marshal(s)
		var out string
		json.Unmarshal(b, &out)
		return out
	}
	p := m.Processes[0]
	act := d["activity"][fmt.Sprintf("proctrail:process/1-%d", p.Start)]
	if act == nil {
		t.Fatal("no activity for pid 1")
	}
	var argv []string
	if err := json.Unmarshal([]byte(act["proctrail:argv"].(string)), &argv); err != nil {
		t.Fatalf("proctrail:argv %q: %v", act["proctrail:argv"], err)
	}
	var wantArgv []string
	for _, a := range p.Argv {
		wantArgv = append(wantArgv, jsonString(a))
	}
	if diff := cmp.Diff(wantArgv, argv); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	for k, v := range map[string]string{"prov:label": p.Comm, "proctrail:comm": p.Comm, "proctrail:exe": p.Exe, "proctrail:cwd": p.Cwd} {
		if act[k] != jsonString(v) {
			t.Errorf("%s = %q, want %q", k, act[k], jsonString(v))
		}
	}
	child := d["activity"][fmt.Sprintf("proctrail:process/2-%d", p.Start+1)]
	if child == nil || child["proctrail:container"] != jsonString(p.Children[0].Container) {
		t.Errorf("child activity %v: no container %q", child, jsonString(p.Children[0].Container))
	}
	if d["activity"][fmt.Sprintf("proctrail:process/2-%d~2", p.Start+1)] == nil {
		t.Error("the second process with the same pid and start has no activity of its own")
	}
}

func TestProvEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/usr/bin/x86_64-linux-gnu/libc.so.6", "/usr/bin/x86_64-linux-gnu/libc.so.6"},
		{"/a b", "/a%20b"},
		{"/a%20b", "/a%2520b"},
		{"/x.", "/x%2E"},
		{"/..", "/.%2E"},
		{"/é\xff", "/%C3%A9%FF"},
		{"/a:b#c", "/a%3Ab%23c"},
		{"", ""},
	} {
		if got := provEscape(tc.in); got != tc.want {
			t.Errorf("provEscape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// provPython loads PROV-JSON documents with the Python prov library and
// prints, for each, its records counted by kind (and by prov:type for
// nodes), the same counts after a round trip through the library's
// PROV-JSON, PROV-O (RDF) and PROV-XML, what failed or changed in a round
// trip, the nodes of the unified document, references that resolve to no
// record, and whether PROV-N serialization works.
const provPython = `
import collections, io, json, sys
import prov
from prov.constants import PROV_N_MAP, PROV_ATTRIBUTE_QNAMES
from prov.model import ProvDocument, ProvElement, ProvRelation
from prov.identifier import QualifiedName

def counts(doc):
    c = collections.Counter()
    for r in doc.get_records():
        kind = PROV_N_MAP[r.get_type()]
        c[kind] += 1
        if isinstance(r, ProvElement):
            for t in r.get_asserted_types():
                c[kind + " " + str(t)] += 1
    return dict(c)

out = {}
for path in sys.argv[1:]:
    doc = prov.read(path, format="json")
    dangling = 0
    for r in doc.get_records(ProvRelation):
        for attr, v in r.formal_attributes:
            if attr in PROV_ATTRIBUTE_QNAMES and isinstance(v, QualifiedName) and not doc.get_record(v):
                dangling += 1
    roundtrip, errors = {}, {}
    for fmt in ("json", "rdf", "xml"):
        try:
            again = ProvDocument.deserialize(content=doc.serialize(format=fmt), format=fmt)
            roundtrip[fmt] = counts(again)
            if again != doc:
                errors[fmt] = "the document read back differs"
        except Exception as e:
            errors[fmt] = repr(e)
    provn = doc.get_provn()
    out[path] = {
        "counts": counts(doc),
        "roundtrip": roundtrip,
        "errors": errors,
        "unified": sum(1 for _ in doc.unified().get_records(ProvElement)),
        "dangling": dangling,
        "provn": len(provn) > 0,
    }
json.dump(out, sys.stdout)
`

// TestPROVPython loads the PROV-JSON of every real capture and of the
// hostile model with the Python prov library (Debian's python3-prov,
// through /usr/bin/python3: the python3 first on PATH may be another
// build that cannot see Debian's packages). The library must see the
// records the JSON output implies, keep them all through its own
// PROV-JSON, RDF and PROV-XML round trips (XML 1.0 cannot hold the control
// characters of the hostile models: there only its failure is allowed),
// resolve every reference, merge no two nodes, and write PROV-N.
func TestPROVPython(t *testing.T) {
	py := testenv.NeedTool(t, "/usr/bin/python3")
	if out, err := exec.Command(py, "-c", "import prov").CombinedOutput(); err != nil {
		lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
		msg := fmt.Sprintf("the Python prov library is not installed (Debian: apt-get install python3-prov): %v: %s", err, lines[len(lines)-1])
		if testenv.CI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cases := provCaptures(t)
	var js bytes.Buffer
	if err := WriteJSON(&js, provHostileModel()); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, provCase{"hostile", provHostileModel(), bytes.Clone(js.Bytes())})
	js.Reset()
	if err := WriteJSON(&js, hostileModel()); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, provCase{"hostile-json", hostileModel(), js.Bytes()})
	dir := t.TempDir()
	args := []string{"-c", provPython}
	for _, c := range cases {
		p := filepath.Join(dir, c.name+".prov.json")
		if err := os.WriteFile(p, writeProv(t, c.m), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	cmd := exec.Command(py, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python prov: %v\n%s", err, stderr.Bytes())
	}
	var res map[string]struct {
		Counts    map[string]int
		Roundtrip map[string]map[string]int
		Errors    map[string]string
		Unified   int
		Dangling  int
		PROVN     bool
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python prov output %q: %v", out, err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, ok := res[filepath.Join(dir, c.name+".prov.json")]
			if !ok {
				t.Fatalf("python printed nothing for it: %s", out)
			}
			want, _ := provWant(t, c.js)
			if diff := cmp.Diff(want, r.Counts); diff != "" {
				t.Errorf("records the prov library read (-want +got):\n%s", diff)
			}
			for _, f := range []string{"json", "rdf", "xml"} {
				if f == "xml" && strings.HasPrefix(c.name, "hostile") && strings.Contains(r.Errors[f], "XML compatible") {
					continue
				}
				if r.Errors[f] != "" {
					t.Errorf("%s round trip: %s", f, r.Errors[f])
				}
				if diff := cmp.Diff(r.Counts, r.Roundtrip[f]); diff != "" {
					t.Errorf("records after the library's %s round trip (-before +after):\n%s", f, diff)
				}
			}
			if nodes := want["activity"] + want["entity"] + want["agent"]; r.Unified != nodes {
				t.Errorf("unified document has %d nodes, want %d: ids collide", r.Unified, nodes)
			}
			if r.Dangling != 0 {
				t.Errorf("%d references to no record", r.Dangling)
			}
			if !r.PROVN {
				t.Error("no PROV-N")
			}
		})
	}
}

func ExampleWritePROV() {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	ms := int64(time.Millisecond)
	cat := &Process{
		PID: 4243, PPID: 4242, Start: t0 + 2*ms, End: t0 + 9*ms, Exited: true, UID: 1000,
		Comm: "cat", Exe: "/usr/bin/cat", Argv: []string{"cat", "notes.txt"}, Cwd: "/home/ann",
		Execs: []Exec{{Time: t0 + 3*ms, Exe: "/usr/bin/cat", Argv: []string{"cat", "notes.txt"}, Cwd: "/home/ann"}},
		Files: []File{{Path: "/home/ann/notes.txt", Op: "open", Mode: "r", Open: t0 + 4*ms, Close: t0 + 8*ms}},
	}
	m := &Model{Processes: []*Process{{
		PID: 4242, PPID: 1, Start: t0 + ms, UID: 1000, Comm: "sh", Exe: "/usr/bin/dash",
		BeforeCapture: true, Children: []*Process{cat},
	}}}
	if err := WritePROV(os.Stdout, m); err != nil {
		panic(err)
	}
	// Output:
	// {
	//   "prefix": {
	//     "proctrail": "https://github.com/proctrail/proctrail/ns#"
	//   },
	//   "activity": {
	//     "proctrail:process/4242-1714564800001000000": {
	//       "prov:startTime": "2024-05-01T12:00:00.001000000Z",
	//       "prov:type": {
	//         "$": "proctrail:Process",
	//         "type": "prov:QUALIFIED_NAME"
	//       },
	//       "prov:label": "sh",
	//       "proctrail:pid": 4242,
	//       "proctrail:ppid": 1,
	//       "proctrail:uid": 1000,
	//       "proctrail:comm": "sh",
	//       "proctrail:exe": "/usr/bin/dash",
	//       "proctrail:before_capture": true
	//     },
	//     "proctrail:process/4243-1714564800002000000": {
	//       "prov:startTime": "2024-05-01T12:00:00.002000000Z",
	//       "prov:endTime": "2024-05-01T12:00:00.009000000Z",
	//       "prov:type": {
	//         "$": "proctrail:Process",
	//         "type": "prov:QUALIFIED_NAME"
	//       },
	//       "prov:label": "cat",
	//       "proctrail:pid": 4243,
	//       "proctrail:ppid": 4242,
	//       "proctrail:uid": 1000,
	//       "proctrail:comm": "cat",
	//       "proctrail:exe": "/usr/bin/cat",
	//       "proctrail:argv": "[\"cat\",\"notes.txt\"]",
	//       "proctrail:cwd": "/home/ann",
	//       "proctrail:exit_code": 0
	//     }
	//   },
	//   "entity": {
	//     "proctrail:file/home/ann/notes.txt": {
	//       "prov:type": {
	//         "$": "proctrail:File",
	//         "type": "prov:QUALIFIED_NAME"
	//       },
	//       "prov:label": "/home/ann/notes.txt",
	//       "proctrail:path": "/home/ann/notes.txt"
	//     },
	//     "proctrail:file/usr/bin/cat": {
	//       "prov:type": {
	//         "$": "proctrail:Executable",
	//         "type": "prov:QUALIFIED_NAME"
	//       },
	//       "prov:label": "/usr/bin/cat",
	//       "proctrail:path": "/usr/bin/cat"
	//     }
	//   },
	//   "agent": {
	//     "proctrail:user/1000": {
	//       "prov:type": {
	//         "$": "proctrail:User",
	//         "type": "prov:QUALIFIED_NAME"
	//       },
	//       "prov:label": "uid 1000",
	//       "proctrail:uid": 1000
	//     }
	//   },
	//   "used": {
	//     "_:u1": {
	//       "prov:activity": "proctrail:process/4243-1714564800002000000",
	//       "prov:entity": "proctrail:file/usr/bin/cat",
	//       "prov:time": "2024-05-01T12:00:00.003000000Z",
	//       "prov:role": {
	//         "$": "proctrail:executable",
	//         "type": "prov:QUALIFIED_NAME"
	//       },
	//       "proctrail:argv": "[\"cat\",\"notes.txt\"]",
	//       "proctrail:cwd": "/home/ann"
	//     },
	//     "_:u2": {
	//       "prov:activity": "proctrail:process/4243-1714564800002000000",
	//       "prov:entity": "proctrail:file/home/ann/notes.txt",
	//       "prov:time": "2024-05-01T12:00:00.004000000Z",
	//       "prov:role": {
	//         "$": "proctrail:open",
	//         "type": "prov:QUALIFIED_NAME"
	//       },
	//       "proctrail:mode": "r",
	//       "proctrail:close": {
	//         "$": "2024-05-01T12:00:00.008000000Z",
	//         "type": "xsd:dateTime"
	//       }
	//     }
	//   },
	//   "wasGeneratedBy": {},
	//   "wasInvalidatedBy": {},
	//   "wasDerivedFrom": {},
	//   "wasInformedBy": {
	//     "_:i1": {
	//       "prov:informed": "proctrail:process/4243-1714564800002000000",
	//       "prov:informant": "proctrail:process/4242-1714564800001000000"
	//     }
	//   },
	//   "wasAssociatedWith": {
	//     "_:a1": {
	//       "prov:activity": "proctrail:process/4242-1714564800001000000",
	//       "prov:agent": "proctrail:user/1000",
	//       "prov:role": {
	//         "$": "proctrail:uid",
	//         "type": "prov:QUALIFIED_NAME"
	//       }
	//     },
	//     "_:a2": {
	//       "prov:activity": "proctrail:process/4243-1714564800002000000",
	//       "prov:agent": "proctrail:user/1000",
	//       "prov:role": {
	//         "$": "proctrail:uid",
	//         "type": "prov:QUALIFIED_NAME"
	//       }
	//     }
	//   }
	// }
}
