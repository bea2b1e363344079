package report_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"proctrail/report"
)

// WriteHTML turns the JSON of `proctrail analyze --json` into a page that
// opens offline.
func ExampleWriteHTML() {
	model, err := os.ReadFile("../testdata/report/small.json")
	if err != nil {
		log.Fatal(err)
	}
	out, err := os.Create(filepath.Join(os.TempDir(), "report.html"))
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(out.Name())
	if err := report.WriteHTML(out, model); err != nil {
		log.Fatal(err)
	}
	if err := out.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("written")
	// Output: written
}
