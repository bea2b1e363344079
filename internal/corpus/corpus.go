// Package corpus locates the shared corpus of public auditd logs that tests
// read in place. The corpus lives beside the repository, in
// ../shared/corpus/public; it is never copied into it.
package corpus

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Dir returns the corpus folder. It skips the test when the folder is
// absent, or fails it when CI=true.
func Dir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			c := filepath.Join(dir, "..", "shared", "corpus", "public")
			if _, err := os.Stat(c); err == nil {
				return c
			}
			break
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the public audit corpus (../shared/corpus/public beside the repository) is required under CI")
	}
	t.Skip("the public audit corpus (../shared/corpus/public beside the repository) is absent")
	return ""
}

// Files returns the corpus files that hold audit records (a "type=" line),
// sorted; it fails the test when there are none.
func Files(t testing.TB) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(Dir(t), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "SOURCES.md" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "type=") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("the corpus holds no audit logs")
	}
	return files
}
