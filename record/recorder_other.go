//go:build !linux

package record

import (
	"context"
	"errors"
)

// Record is only supported on Linux.
func Record(ctx context.Context, cfg *Config) (*Result, error) {
	return nil, errors.New("record: recording needs Linux")
}
