package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
)

var screenshots = flag.String("screenshots", "", "write the browser tests' screenshots into this directory (default: the test's temporary directory)")

// page is a browser tab under test: it records what the page fetched and every uncaught exception.
type page struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []string
	errors   []string
}

// newPage starts Debian's chromium headless (without its sandbox when run as root, where it refuses to start
// with it) and returns a tab. The test's cleanup ends the browser and checks that no process of it is left.
// Without chromium the test is skipped, saying so.
func newPage(t *testing.T) *page {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/chromium"); serr != nil {
			t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it): the report view's browser tests need it")
		}
		path = "/usr/bin/chromium"
	}
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.UserDataDir(profile),
		chromedp.DisableGPU, chromedp.WindowSize(1400, 1000), chromedp.Flag("hide-scrollbars", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	p := &page{t: t}
	// Runtime and network events are on from the start: the listener sees every request and exception.
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			p.requests = append(p.requests, ev.Request.URL)
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			p.errors = append(p.errors, fmt.Sprintf("%s (line %d)", msg, d.LineNumber+1))
		}
	}))
	p.ctx = ctx
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		waitGone(t, profile)
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return p
}

// waitGone waits until no process runs with the browser's profile directory on its command line.
func waitGone(t *testing.T, profile string) {
	var left []string
	if !agenttest.Eventually(30*time.Second, func() bool {
		left = left[:0]
		dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range dirs {
			b, err := os.ReadFile(f)
			if err == nil && strings.Contains(string(b), profile) {
				left = append(left, filepath.Base(filepath.Dir(f)))
			}
		}
		return len(left) == 0
	}) {
		t.Errorf("chromium processes left behind: %v", left)
	}
}

func (p *page) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// view is what the page shows, read from its DOM.
type view struct {
	Conn       string            `json:"conn"`
	ConnShown  string            `json:"connShown"` // what the page's connection badge says (drawn a moment later)
	Mode       string            `json:"mode"`
	Pos        int               `json:"pos"`
	Records    int               `json:"records"`
	Reconnects int               `json:"reconnects"`
	Counts     map[string]string `json:"counts"`
	Lanes      []laneBox         `json:"lanes"`
	Statuses   map[string]string `json:"statuses"`
	Scenario   string            `json:"scenario"`
	Completed  []string          `json:"completed"`
}

type laneBox struct {
	Rows  string `json:"rows"`
	Drawn string `json:"drawn"`
	Mode  string `json:"mode"`
}

const readView = `(() => {
  const f = window.fleetlab;
  if (!f) return {};
  const q = (s) => [...document.querySelectorAll(s)];
  return {conn: f.conn, connShown: document.getElementById("conn").dataset.state, mode: f.mode, pos: f.pos, records: f.records, reconnects: f.reconnects,
    counts: Object.fromEntries(q("[data-count]").map((e) => [e.dataset.count, e.textContent.replace(/,/g, "")])),
    lanes: q(".deployment .lanes").map((e) => ({rows: e.dataset.rows || "", drawn: e.dataset.drawn || "", mode: e.dataset.mode || ""})),
    statuses: Object.fromEntries(q(".deployment .kv b[data-status]").map((e) => [e.dataset.status, e.textContent.replace(/,/g, "")])),
    scenario: (document.querySelector("#scenario-card .badge") || {}).textContent || "",
    completed: q(".deployment .chart svg").map((e) => e.dataset.completed || "")};
})()`

// read returns what the page shows now.
func (p *page) read() view {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[view](readView))
	if err != nil {
		p.t.Fatalf("browser: %v", err)
	}
	return v
}

// waitView waits up to a minute for the page to show what cond wants, and returns it.
func (p *page) waitView(what string, cond func(view) bool) view {
	p.t.Helper()
	var v view
	if !agenttest.Eventually(time.Minute, func() bool { v = p.read(); return cond(v) }) {
		p.t.Fatalf("the page never showed %s; it shows %+v", what, v)
	}
	return v
}

// screenshot saves the page as name in the screenshots directory.
func (p *page) screenshot(name string) string {
	p.t.Helper()
	dir := *screenshots
	if dir == "" {
		dir = p.t.TempDir()
	}
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("browser: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// checkOffline fails the test when the page fetched anything but itself or raised an uncaught exception.
func (p *page) check(allowed ...string) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.requests {
		ok := strings.HasPrefix(u, "data:")
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(u, a)
		}
		if !ok {
			p.t.Errorf("the page fetched %s", u)
		}
	}
	for _, e := range p.errors {
		p.t.Errorf("the page raised: %s", e)
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}
