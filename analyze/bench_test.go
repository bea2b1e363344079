package analyze

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"proctrail/replay"
)

// BenchmarkBuild replays each testdata capture through Build: bytes/s are
// of the compressed capture; msgs/s counts its messages.
func BenchmarkBuild(b *testing.B) {
	captures, _ := filepath.Glob("../testdata/analyze/*/capture*.zst")
	if len(captures) == 0 {
		b.Skip("no captures in ../testdata/analyze")
	}
	for _, c := range captures {
		b.Run(filepath.Base(filepath.Dir(c)), func(b *testing.B) {
			st, err := os.Stat(c)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(st.Size())
			b.ReportAllocs()
			var msgs uint64
			for b.Loop() {
				s, err := replay.Open([]string{c}, nil)
				if err != nil {
					b.Fatal(err)
				}
				m, err := Build(s, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := WriteJSON(io.Discard, m); err != nil {
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
