//go:build !linux

package main

import "errors"

func run(rules []string, stateDir string, connector, batch bool) error {
	return errors.New("the floor reader needs Linux")
}
