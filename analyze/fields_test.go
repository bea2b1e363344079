package analyze

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// refEachField is the strings-based field parser that fields replaced:
// the reference its pairs must match.
func refEachField(text string, f func(key, val string, quoted bool)) {
	if strings.HasPrefix(text, "audit(") {
		if i := strings.IndexByte(text, ')'); i >= 0 {
			text = text[i+1:]
		}
	}
	for {
		text = strings.TrimLeft(text, ": \t\n")
		if text == "" {
			return
		}
		i := strings.IndexAny(text, "= \t\n")
		if i < 0 {
			return
		}
		if text[i] != '=' || i == 0 {
			text = text[i+1:]
			continue
		}
		key := text[:i]
		text = text[i+1:]
		var val string
		quoted := false
		if text != "" && (text[0] == '"' || text[0] == '\'') {
			q := text[0]
			quoted = true
			if j := strings.IndexByte(text[1:], q); j >= 0 {
				val, text = text[1:j+1], text[j+2:]
			} else {
				val, text = text[1:], ""
			}
		} else if j := strings.IndexAny(text, " \t\n"); j >= 0 {
			val, text = text[:j], text[j:]
		} else {
			val, text = text, ""
		}
		f(key, val, quoted)
	}
}

type field struct {
	Key, Val string
	Quoted   bool
}

func checkFields(t *testing.T, text string) {
	t.Helper()
	var want, got []field
	refEachField(text, func(k, v string, q bool) { want = append(want, field{k, v, q}) })
	// Not in the for statement: Go would copy f at each iteration.
	f := newFields(text)
	for f.next() {
		got = append(got, field{f.key, f.val, f.quoted})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("fields of %q (-want +got):\n%s", text, diff)
	}
}

var fieldTexts = []string{
	``,
	`audit(1700000000.123:42): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd a2=0 a3=0 items=1 ppid=1 pid=2 comm="cat" exe="/usr/bin/cat" key="proctrail"`,
	`audit(1.2:3): item=0 name="/etc/passwd" inode=123 dev=fe:01 mode=0100644 nametype=NORMAL`,
	`audit(1.2:3): cwd=2F746D702F612062`,
	`audit(1.2:3) no close`,
	`audit(1.2:3: x=1`,
	`avc:  denied  { read } for  pid=1 comm="x" msg='op=PAM:session acct="root" res=success'`,
	`=x a= b==c ='' "q"=1 k="unterminated`,
	"k=v\tl=w\nm='x y' :: n=1:",
	`a=1 a=2 a="3"`,
	`key=`,
	`key=' `,
}

func TestFieldsMatchReference(t *testing.T) {
	for _, text := range fieldTexts {
		checkFields(t, text)
	}
}

func FuzzFields(f *testing.F) {
	for _, text := range fieldTexts {
		f.Add(text)
	}
	f.Fuzz(checkFields)
}

// checkNumbers fails when parseDec, atoi or parseHex disagree with strconv.
func checkNumbers(t *testing.T, s string) {
	t.Helper()
	for _, bits := range []int{0, 32, 64} {
		got, gerr := parseDec(s, bits)
		want, werr := strconv.ParseInt(s, 10, bits)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Fatalf("parseDec(%q, %d) = %d, %v; strconv %d, %v", s, bits, got, gerr, want, werr)
		}
	}
	for _, bits := range []int{32, 64} {
		got, gerr := parseHex(s, bits)
		want, werr := strconv.ParseUint(s, 16, bits)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Fatalf("parseHex(%q, %d) = %d, %v; strconv %d, %v", s, bits, got, gerr, want, werr)
		}
	}
}

var numberTexts = []string{"", "0", "7", "007", "-1", "+5", "123456789", "1234567890", "4294967295", "4294967296",
	"c000003e", "C000003E", "ffffffffffffffff", "10000000000000000", "7ffd736dcac2", "0x10", "1_000", "12a", "g", "@", "`", "ffffff9c", " 1"}

func TestNumbersMatchStrconv(t *testing.T) {
	for _, s := range numberTexts {
		checkNumbers(t, s)
	}
}

func FuzzNumbers(f *testing.F) {
	for _, s := range numberTexts {
		f.Add(s)
	}
	f.Fuzz(checkNumbers)
}
