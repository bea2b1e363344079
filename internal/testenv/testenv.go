// Package testenv holds what tests across packages need of their
// environment: root, tools. A missing need skips the test on a laptop and
// fails it when CI=true, where everything must be present.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run in CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// NeedRoot skips the test without root, or fails it under CI.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if CI() {
			t.Fatal("this test needs root and CI=true")
		}
		t.Skip("needs root: it uses the kernel's process connector or audit")
	}
}

// NeedTool returns the path of a program, skipping the test when it is
// missing, or failing it under CI.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if CI() {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}
