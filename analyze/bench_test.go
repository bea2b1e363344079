package analyze

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"proctrail/replay"
)

// benchCaptures are the testdata captures, plus the files named in
// $PROCTRAIL_BENCH_CAPTURES (colon-separated), such as a large capture
// made with `proctrail record -o storm.zst -- bench/storm.sh 2 3000`.
func benchCaptures(b *testing.B) []string {
	captures, _ := filepath.Glob("../testdata/analyze/*/capture*.zst")
	if env := os.Getenv("PROCTRAIL_BENCH_CAPTURES"); env != "" {
		captures = append(captures, strings.Split(env, ":")...)
	}
	if len(captures) == 0 {
		b.Skip("no captures in ../testdata/analyze")
	}
	return captures
}

func benchName(c string) string {
	if strings.HasPrefix(c, "../testdata/") {
		return filepath.Base(filepath.Dir(c))
	}
	return strings.TrimSuffix(filepath.Base(c), ".zst")
}

// BenchmarkBuild replays each capture through Build: bytes/s are of the
// compressed capture; msgs/s counts its messages.
func BenchmarkBuild(b *testing.B) {
	benchAnalyze(b, false)
}

// BenchmarkAnalyze is the whole of `proctrail analyze`: replay, then
// BuildJSON of every process.
func BenchmarkAnalyze(b *testing.B) {
	benchAnalyze(b, true)
}

func benchAnalyze(b *testing.B, render bool) {
	for _, c := range benchCaptures(b) {
		b.Run(benchName(c), func(b *testing.B) {
			st, err := os.Stat(c)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(st.Size())
			b.ReportAllocs()
			var msgs uint64
			for b.Loop() {
				// As the analyze command opens it.
				s, err := replay.Open([]string{c}, &replay.Options{AuditTexts: ReadsAuditText})
				if err != nil {
					b.Fatal(err)
				}
				if render {
					if _, err := BuildJSON(io.Discard, s, nil); err != nil {
						b.Fatal(err)
					}
				} else if _, err := Build(s, nil); err != nil {
					b.Fatal(err)
				}
				info := s.Info()
				msgs = info.Messages[0] + info.Messages[1] + info.Messages[2]
				s.Close()
			}
			b.ReportMetric(float64(msgs)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
