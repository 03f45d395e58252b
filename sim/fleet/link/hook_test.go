package link_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// TestStepHooks sends step reports through a proxy with step hooks: a hook sees the job and step of an
// in-progress report after the service answered it and before the answer is passed on; other requests pass
// by; a hook's error loses the answer; a removed hook sees nothing.
func TestStepHooks(t *testing.T) {
	var served atomic.Int32
	var bodies []string // what the service got, guarded by mu
	var mu sync.Mutex
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		served.Add(1)
		w.Write([]byte(`{}`))
	}))
	defer svc.Close()
	p, err := link.Listen("127.0.0.1:0", svc.URL, link.NewShaper(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var seen []string
	fail := errors.New("no")
	var failing atomic.Bool
	remove := p.HookSteps(func(ctx context.Context, job, step string) error {
		mu.Lock()
		defer mu.Unlock()
		if served.Load() == 0 {
			t.Error("the hook ran before the service answered")
		}
		seen = append(seen, job+"/"+step)
		if failing.Load() {
			return fail
		}
		return nil
	})
	var sent []string
	post := func(path, body string) error {
		sent = append(sent, body)
		resp, err := http.Post(p.URL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	for _, r := range []struct{ path, body string }{
		{"/things/r1/jobs/job-1", `{"status":"IN_PROGRESS","statusDetails":{"step":"Launching"}}`},
		{"/things/r1/jobs/job-1", `{"status":"SUCCEEDED","statusDetails":{"step":"Finished"}}`},
		{"/things/r1/jobs/$next", `{"statusDetails":{"step":"x"}}`},
		{"/things/r1/jobs/job-1", `not json`},
	} {
		if err := post(r.path, r.body); err != nil {
			t.Fatalf("%s %s: %v", r.path, r.body, err)
		}
	}
	failing.Store(true)
	if err := post("/things/r1/jobs/job-2", `{"status":"IN_PROGRESS","statusDetails":{"step":"ExecutingPreLaunch"}}`); err == nil {
		t.Error("a hook's error: the answer still came through")
	}
	remove()
	failing.Store(false)
	if err := post("/things/r1/jobs/job-3", `{"status":"IN_PROGRESS","statusDetails":{"step":"Launching"}}`); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, " "); got != "job-1/Launching job-2/ExecutingPreLaunch" {
		t.Errorf("hooks saw %q, want the two in-progress reports while hooked", got)
	}
	if strings.Join(bodies, "\n") != strings.Join(sent, "\n") {
		t.Errorf("the service got bodies %q, want %q as sent", bodies, sent)
	}
}
