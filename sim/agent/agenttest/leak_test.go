package agenttest

import (
	"strings"
	"testing"
	"time"
)

// TestLeakCheck: a goroutine of the module's code started after the snapshot is a leak until it ends; one that
// ran before is not.
func TestLeakCheck(t *testing.T) {
	old := make(chan struct{})
	go func() { <-old }()
	defer close(old)
	Eventually(time.Second, func() bool { return len(leaked(nil)) > 0 })
	before := map[string]bool{}
	for _, g := range goroutines() {
		before[goroutineID(g)] = true
	}
	if err := checkLeft(before, 50*time.Millisecond); err != nil {
		t.Fatalf("a goroutine from before counted: %v", err)
	}
	stop := make(chan struct{})
	go func() { <-stop }()
	err := checkLeft(before, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "1 goroutines left behind") || !strings.Contains(err.Error(), "TestLeakCheck") {
		t.Fatalf("a goroutine left running: %v", err)
	}
	close(stop)
	if err := checkLeft(before, 5*time.Second); err != nil {
		t.Fatalf("after it ended: %v", err)
	}
}
