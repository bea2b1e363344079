package units_test

import (
	"fmt"
	"testing"

	"proctrail/internal/units"
)

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{-1, "-1 B"},
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1024.0 KiB"},
		{1 << 20, "1.0 MiB"},
		{3355443, "3.2 MiB"},
		{1 << 30, "1.0 GiB"},
		{5 << 40, "5120.0 GiB"},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			if got := units.Bytes(tc.n); got != tc.want {
				t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
			}
		})
	}
}

func ExampleBytes() {
	fmt.Println(units.Bytes(512))
	fmt.Println(units.Bytes(1536))
	fmt.Println(units.Bytes(52 << 20))
	// Output:
	// 512 B
	// 1.5 KiB
	// 52.0 MiB
}
