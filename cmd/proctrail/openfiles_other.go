//go:build !linux

package main

// openForWriting is Linux's /proc walk; elsewhere no file is known to be
// open.
func openForWriting(names []string) map[string]bool { return map[string]bool{} }
