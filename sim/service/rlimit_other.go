//go:build !unix

package service

// OpenFileLimit is a generous guess where the platform has no open-file limit to ask.
func OpenFileLimit() int { return 1 << 16 }
