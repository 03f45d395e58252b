package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

func TestStateStores(t *testing.T) {
	dir := t.TempDir()
	stores := map[string]StateStore{"file": NewFileState(filepath.Join(dir, "state.json")), "memory": NewMemoryState()}
	want := DeviceState{
		Current: &Installed{Kind: "test", JobID: "job-2", Digest: "ab12",
			Record: json.RawMessage(`{"launch":{"environmentVariables":{"A":"1"},"launchFile":"launch.sh"},"version":"2"}`)},
		Previous: &Installed{JobID: "job-1", Record: json.RawMessage(`{"version":"1"}`)},
		InFlight: &InFlight{JobID: "job-3", ExecutionNumber: 2, Document: `{"kind":"test"}`, Step: "Installing"},
	}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			if got, err := s.Load(); err != nil || !reflect.DeepEqual(got, DeviceState{}) {
				t.Fatalf("Load() of a new store = %+v, %v", got, err)
			}
			if err := s.Save(want); err != nil {
				t.Fatal(err)
			}
			got, err := s.Load()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Load() = %+v, %v; want %+v", got, err, want)
			}
			// What Load returned is a copy: changing it changes nothing saved.
			got.Current.Record[2] = 'X'
			got.InFlight.Step = "x"
			again, _ := s.Load()
			if !reflect.DeepEqual(again, want) {
				t.Fatalf("the saved state changed through a loaded copy: %+v", again)
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != "state.json" {
		t.Fatalf("state dir holds %v (%v), want only state.json", entries, err)
	}
}

// TestInstalledJSON: an installed version's record sits beside kind, jobId and digest in one object, so the
// state of agents before kinds existed (no kind, the record's members at the top) reads as a version of the
// agent's first kind with that record, and is written back in the same layout.
func TestInstalledJSON(t *testing.T) {
	old := `{"jobId":"job-1","digest":"ab12","job":"arn:job","name":"hello","version":"1","launch":{"packageName":"p","launchFile":"l"}}`
	var got Installed
	if err := json.Unmarshal([]byte(old), &got); err != nil {
		t.Fatal(err)
	}
	want := Installed{JobID: "job-1", Digest: "ab12",
		Record: json.RawMessage(`{"job":"arn:job","launch":{"packageName":"p","launchFile":"l"},"name":"hello","version":"1"}`)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read %+v (record %s), want %+v (record %s)", got, got.Record, want, want.Record)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if w := `{"digest":"ab12","job":"arn:job","jobId":"job-1","launch":{"packageName":"p","launchFile":"l"},"name":"hello","version":"1"}`; string(b) != w {
		t.Fatalf("wrote %s, want %s", b, w)
	}
	got.Kind = "test"
	if b, _ = json.Marshal(got); !strings.Contains(string(b), `"kind":"test"`) {
		t.Fatalf("wrote %s, want the kind in it", b)
	}
	for _, bad := range []json.RawMessage{json.RawMessage(`[1]`), json.RawMessage(`{"jobId":"x"}`)} {
		if _, err := json.Marshal(Installed{JobID: "job-1", Record: bad}); err == nil {
			t.Errorf("record %s was written", bad)
		}
	}
}

func TestFileStateCorrupt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(p, []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFileState(p).Load(); err == nil {
		t.Fatal("Load of a corrupt state succeeded")
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff(time.Second, 8*time.Second, 42, "robot-1", 1)
	caps := []time.Duration{1, 2, 4, 8, 8, 8}
	var got []time.Duration
	for i, c := range caps {
		d := b.delay(i + 1)
		if d < c*time.Second/2 || d > c*time.Second {
			t.Errorf("delay(%d) = %v, want in [%v, %v]", i+1, d, c*time.Second/2, c*time.Second)
		}
		got = append(got, d)
	}
	same := newBackoff(time.Second, 8*time.Second, 42, "robot-1", 1)
	other := newBackoff(time.Second, 8*time.Second, 42, "robot-2", 1)
	differs := false
	for i := range caps {
		if d := same.delay(i + 1); d != got[i] {
			t.Errorf("same seed and thing: delay(%d) = %v, then %v", i+1, got[i], d)
		}
		if other.delay(i+1) != got[i] {
			differs = true
		}
	}
	if !differs {
		t.Error("two things with the same seed back off in lockstep")
	}
}

func TestWithTimeout(t *testing.T) {
	clk := clocktest.New(time.Time{})
	ctx, cancel := withTimeout(context.Background(), clk, time.Minute)
	defer cancel()
	<-clk.BlockUntil(1)
	if ctx.Err() != nil {
		t.Fatal("ended before its time")
	}
	clk.Advance(time.Minute)
	<-ctx.Done()
	if context.Cause(ctx) != errRequestTimeout {
		t.Fatalf("cause %v, want errRequestTimeout", context.Cause(ctx))
	}
	// Canceled before its time, it releases its timer.
	ctx2, cancel2 := withTimeout(context.Background(), clk, time.Minute)
	<-clk.BlockUntil(1)
	cancel2()
	<-ctx2.Done()
	waitFor(t, "the timer to be released", func() bool { return clk.Timers() == 0 })
}

func TestSanitizeDetail(t *testing.T) {
	long := make([]rune, 2000)
	for i := range long {
		long[i] = 'é'
	}
	tests := map[string]string{
		"":                         "unknown",
		"exit status 3":            "exit status 3",
		"line one\nline two\x00\t": "line one line two",
		"\u200bzero width":         "zero width",
	}
	for in, want := range tests {
		if got := sanitizeDetail(in); got != want {
			t.Errorf("sanitizeDetail(%q) = %q, want %q", in, got, want)
		}
	}
	if got := sanitizeDetail(string(long)); len(got) > 1024 || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("a long reason is %d bytes (valid UTF-8: %v), want at most 1024, cut at a character", len(got), utf8.ValidString(got))
	}
}
