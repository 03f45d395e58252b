// Package eventlog carries agent events as JSON lines: what `fleetlab-agent --events` writes, and what the process
// fleet backend reads back to see the state chain of a robot running as a process. It depends on nothing but the
// agent, so the agent binary stays free of the service's SDKs.
package eventlog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
)

// Record is an agent.Event as one line of JSON: what `fleetlab-agent --events` writes for every event, and
// what the process backend reads back. An error travels as its text.
type Record struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Thing  string    `json:"thing"`
	JobID  string    `json:"jobId,omitempty"`
	State  string    `json:"state,omitempty"`
	Code   string    `json:"code,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Error  string    `json:"error,omitempty"`
	// Delay is the retry delay in Go duration syntax ("1.5s").
	Delay string `json:"delay,omitempty"`
}

// RecordOf returns e as a record.
func RecordOf(e agent.Event) Record {
	r := Record{Time: e.Time, Kind: string(e.Kind), Thing: e.Thing, JobID: e.JobID, State: e.State,
		Code: e.Code, Reason: e.Reason}
	if e.Err != nil {
		r.Error = e.Err.Error()
	}
	if e.Delay != 0 {
		r.Delay = e.Delay.String()
	}
	return r
}

// Event returns the record as an agent.Event. Err, when set, has the original error's text; a Delay that does not
// parse is zero.
func (r Record) Event() agent.Event {
	e := agent.Event{Time: r.Time, Kind: agent.EventKind(r.Kind), Thing: r.Thing, JobID: r.JobID, State: r.State,
		Code: r.Code, Reason: r.Reason}
	if r.Error != "" {
		e.Err = errors.New(r.Error)
	}
	if r.Delay != "" {
		e.Delay, _ = time.ParseDuration(r.Delay)
	}
	return e
}

// Writer writes agent events to w as JSON lines. It is safe for concurrent use; write errors are kept and
// reported by Err, and later events are dropped, so a full disk or a closed pipe never stops the agent.
type Writer struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

// NewWriter returns a writer of JSON lines to w.
func NewWriter(w io.Writer) *Writer { return &Writer{enc: json.NewEncoder(w)} }

// Write writes e as one line.
func (w *Writer) Write(e agent.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	if err := w.enc.Encode(RecordOf(e)); err != nil {
		w.err = fmt.Errorf("write event: %w", err)
	}
}

// Err returns the first write error.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// maxEventLine bounds one JSON line read by ReadEvents; a reason is at most a few KiB.
const maxEventLine = 1 << 20

// Read decodes JSON lines of events from r and calls fn for each, in order, until r ends; it returns nil at
// the end of r and the read error otherwise. A line that does not decode — the last line of an agent killed while
// writing it — is skipped.
func Read(r io.Reader, fn func(agent.Event)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	for sc.Scan() {
		var rec Record
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Kind == "" {
			continue
		}
		fn(rec.Event())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil
}
