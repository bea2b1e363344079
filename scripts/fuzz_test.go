// Package scripts holds the tests of the shell scripts under scripts/.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGo stands in for the go command: "go list" names one package with two
// fuzz targets, and "go test -fuzz ^T$" plays the next outcome listed for T
// in $FAKE_T (comma-separated: pass, race, crash, crashrace, other), logging
// each call to $CALLS.
const fakeGo = `#!/usr/bin/env bash
case "$1" in
list) if [ "$2" = ./... ]; then echo ex/p; else echo "$ROOT/p"; fi; exit 0;;
esac
for a in "$@"; do case "$a" in ^Fuzz*) t=${a#^}; t=${t%$};; esac; done
echo "$t" >> "$CALLS"
n=$(grep -c "^$t\$" "$CALLS")
var=FAKE_$t
outcome=$(echo "${!var}" | cut -d, -f"$n")
echo "fuzz: elapsed: 15s, execs: 560015 (0/sec), new interesting: 0 (total: 41)"
case "$outcome" in
pass) printf 'PASS\nok  \tex/p\t15.0s\n'; exit 0;;
race) printf -- '--- FAIL: %s (15.07s)\n    context deadline exceeded\nFAIL\nexit status 1\nFAIL\tex/p\t15.081s\n' "$t"; exit 1;;
crash) printf -- '--- FAIL: %s (0.20s)\n    --- FAIL: %s (0.00s)\n        panic: boom\n    Failing input written to testdata/fuzz/%s/0123\nFAIL\n' "$t" "$t" "$t"; exit 1;;
crashrace) printf -- '--- FAIL: %s (15.00s)\n    Failing input written to testdata/fuzz/%s/0123\n    context deadline exceeded\nFAIL\n' "$t" "$t"; exit 1;;
other) printf -- '--- FAIL: %s (1.00s)\n    x_test.go:9: wrong\nFAIL\n' "$t"; exit 1;;
esac
echo "fake go: no outcome $n for $t" >&2; exit 3
`

func TestFuzzScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	script, err := os.ReadFile("fuzz")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		a, b   string // outcomes of FuzzA and FuzzB
		fail   bool
		callsA int
		out    []string
	}{
		{"all pass", "pass", "pass", false, 1, []string{"2 targets passed, 0 failed, 0 run again after a bare deadline error (0 of them met it twice)"}},
		{"deadline race then pass", "race,pass", "pass", false, 2,
			[]string{"running FuzzA again", "2 targets passed, 0 failed, 1 run again after a bare deadline error (0 of"}},
		{"deadline race twice", "race,race", "pass", false, 2,
			[]string{"the same bare deadline error again", "2 targets passed, 0 failed, 1 run again after a bare deadline error (1 of"}},
		{"deadline race then a crash", "race,crash", "pass", true, 2,
			[]string{"Failing input written to", "1 targets passed, 1 failed, 1 run again"}},
		{"deadline race then another failure", "race,other", "pass", true, 2,
			[]string{"x_test.go:9: wrong", "1 targets passed, 1 failed, 1 run again"}},
		{"crash is never retried", "crash", "pass", true, 1,
			[]string{"Failing input written to", "1 targets passed, 1 failed, 0 run again"}},
		{"crash with a deadline message is never retried", "crashrace", "pass", true, 1,
			[]string{"Failing input written to", "1 targets passed, 1 failed, 0 run again"}},
		{"other failure is never retried", "other", "race,other", true, 1,
			[]string{"x_test.go:9: wrong", "0 targets passed, 2 failed, 1 run again"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for dir, files := range map[string]map[string]string{
				"scripts": {"fuzz": string(script)},
				"bin":     {"go": fakeGo},
				"p":       {"x_test.go": "package p\n\nfunc FuzzB(f *testing.F) {}\n\nfunc FuzzA(f *testing.F) {}\n"},
			} {
				if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
					t.Fatal(err)
				}
				for name, body := range files {
					if err := os.WriteFile(filepath.Join(root, dir, name), []byte(body), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			calls := filepath.Join(root, "calls")
			cmd := exec.Command("bash", filepath.Join(root, "scripts", "fuzz"), "15s")
			cmd.Env = append(os.Environ(),
				"PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"),
				"ROOT="+root, "CALLS="+calls, "FAKE_FuzzA="+c.a, "FAKE_FuzzB="+c.b)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != c.fail {
				t.Fatalf("failed = %v (%v), want %v; output:\n%s", failed, err, c.fail, out)
			}
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() != 1 {
				t.Fatalf("exit code %d, want 1; output:\n%s", ee.ExitCode(), out)
			}
			log, err := os.ReadFile(calls)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(log), "FuzzA\n"); n != c.callsA {
				t.Errorf("FuzzA ran %d times, want %d; output:\n%s", n, c.callsA, out)
			}
			for _, want := range c.out {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
