package store

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTextRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain /usr/bin/ls", "é ü ☃", "a\x00b", "\xff\xfe", "bad \xc3 byte", "\U0010FF41 \U0010FF01 \U0010FFFF x",
		"\U0010FF01", "\xf4\x8f\xbc", strings.Repeat("\x80", 3)} {
		enc := encodeText(s)
		if !utf8.ValidString(enc) || strings.ContainsRune(enc, 0) {
			t.Errorf("encodeText(%q) = %q: not text PostgreSQL takes", s, enc)
		}
		if got := decodeText(enc); got != s {
			t.Errorf("decodeText(encodeText(%q)) = %q", s, got)
		}
		if utf8.ValidString(s) && !strings.ContainsRune(s, 0) && !hasEscape(s) && enc != s {
			t.Errorf("encodeText(%q) = %q, want it unchanged", s, enc)
		}
	}
	if got := encodeArgv([]string{"sh", "-c", "a && b > c <d>"}); got != `["sh","-c","a && b > c <d>"]` {
		t.Errorf("argv stored as %s", got)
	}
	argv := []string{"sh", "-c", "a\x00b\xff"}
	got, err := decodeArgv(encodeArgv(argv))
	if err != nil || len(got) != 3 || got[2] != argv[2] {
		t.Errorf("argv round trip: %q, %v", got, err)
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"", "x", "a\x00b", "\xff", "\U0010FF41", "\U0010FF01\U0010FF41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := encodeText(s)
		if !utf8.ValidString(enc) || strings.ContainsRune(enc, 0) {
			t.Fatalf("encodeText(%q) = %q", s, enc)
		}
		if got := decodeText(enc); got != s {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
	})
}
