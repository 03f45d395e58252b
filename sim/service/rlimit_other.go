//go:build !unix

package service

// openFileLimit is a generous guess where the platform has no open-file limit to ask.
func openFileLimit() int { return 1 << 16 }
