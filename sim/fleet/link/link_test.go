package link_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// dropPattern admits n requests and returns which were dropped, as a string of '.' and 'x'.
func dropPattern(t *testing.T, s *link.Shaper, n int) string {
	t.Helper()
	var b strings.Builder
	for range n {
		switch err := s.Admit(context.Background()); {
		case err == nil:
			b.WriteByte('.')
		case errors.Is(err, link.ErrDropped):
			b.WriteByte('x')
		default:
			t.Fatalf("admit: %v", err)
		}
	}
	return b.String()
}

func TestDropsRepeatWithTheSeed(t *testing.T) {
	s := link.NewShaper(clocktest.New(time.Time{}))
	if p := dropPattern(t, s, 50); strings.Contains(p, "x") {
		t.Fatalf("a healthy link dropped requests: %s", p)
	}
	s.Set(fleet.Link{DropRate: 0.3, Seed: 42})
	first := dropPattern(t, s, 400)
	s.Set(fleet.Link{DropRate: 0.3, Seed: 42})
	again := dropPattern(t, s, 400)
	if first != again {
		t.Fatalf("seed 42 dropped differently:\n%s\n%s", first, again)
	}
	other := link.NewShaper(nil)
	other.Set(fleet.Link{DropRate: 0.3, Seed: 42})
	if p := dropPattern(t, other, 400); p != first {
		t.Fatalf("another shaper with seed 42 dropped differently:\n%s\n%s", first, p)
	}
	s.Set(fleet.Link{DropRate: 0.3, Seed: 43})
	if p := dropPattern(t, s, 400); p == first {
		t.Fatal("seeds 42 and 43 dropped the same requests")
	}
	if n := strings.Count(first, "x"); n < 80 || n > 160 {
		t.Fatalf("%d of 400 dropped at rate 0.3", n)
	}
	admitted, dropped := s.Counts()
	if admitted != 1250 || dropped == 0 {
		t.Fatalf("counts %d admitted, %d dropped", admitted, dropped)
	}
}

func TestLatencyOnTheDeviceClock(t *testing.T) {
	c := clocktest.New(time.Time{})
	s := link.NewShaper(c)
	s.Set(fleet.Link{Latency: 3 * time.Second})
	done := make(chan error, 1)
	start := c.Now()
	go func() { done <- s.Admit(context.Background()) }()
	<-c.BlockUntil(1)
	c.Advance(3*time.Second - time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("admitted before the latency passed: %v", err)
	default:
	}
	c.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := c.Now().Sub(start); got != 3*time.Second {
		t.Fatalf("admitted after %v of device time, want 3s", got)
	}
}

func TestPartitionDuringLatency(t *testing.T) {
	c := clocktest.New(time.Time{})
	s := link.NewShaper(c)
	s.Set(fleet.Link{Latency: time.Minute})
	done := make(chan error, 1)
	go func() { done <- s.Admit(context.Background()) }()
	<-c.BlockUntil(1)
	s.Set(fleet.Link{Partition: true})
	if err := <-done; !errors.Is(err, link.ErrPartitioned) {
		t.Fatalf("admit = %v, want ErrPartitioned", err)
	}
	select {
	case <-s.Cut():
	default:
		t.Fatal("Cut is open during a partition")
	}
	s.Set(fleet.Link{})
	select {
	case <-s.Cut():
		t.Fatal("Cut is closed after the link healed")
	default:
	}
	if err := s.Admit(context.Background()); err != nil {
		t.Fatalf("healed link: %v", err)
	}
}

// readTimed reads body to the end while advancing c in steps, and returns the device time it took.
func readTimed(t *testing.T, c *clocktest.Fake, body io.Reader) ([]byte, time.Duration) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	start := c.Now()
	go func() {
		b, err := io.ReadAll(body)
		done <- result{b, err}
	}()
	waiting := c.BlockUntil(1)
	for {
		select {
		case r := <-done:
			took := c.Now().Sub(start)
			// A timer of our own lets the last BlockUntil return, so its goroutine ends.
			tm := c.NewTimer(time.Hour)
			<-waiting
			tm.Stop()
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.b, took
		case <-waiting:
			c.Advance(50 * time.Millisecond)
			waiting = c.BlockUntil(1)
		}
	}
}

func TestBandwidthOnTheDeviceClock(t *testing.T) {
	c := clocktest.New(time.Time{})
	s := link.NewShaper(c)
	s.Set(fleet.Link{BytesPerSecond: 1000})
	body := strings.Repeat("0123456789", 400) // 4000 bytes: 4 s at 1000 B/s
	got, took := readTimed(t, c, s.Body(context.Background(), io.NopCloser(strings.NewReader(body))))
	if string(got) != body {
		t.Fatalf("read %d bytes, want %d", len(got), len(body))
	}
	if took < 4*time.Second || took > 4*time.Second+100*time.Millisecond {
		t.Fatalf("4000 bytes at 1000 B/s took %v of device time", took)
	}
	s.Set(fleet.Link{})
	if _, took := readTimed(t, c, s.Body(context.Background(), io.NopCloser(strings.NewReader(body)))); took != 0 {
		t.Fatalf("unthrottled body took %v", took)
	}
}

// upstream is a service for the proxy tests: GET /bytes/{n} answers n bytes, GET /notify is a websocket that sends
// "hello" and then echoes.
func upstream(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		io.WriteString(w, strings.Repeat("z", n))
	})
	mux.HandleFunc("GET /notify", func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.WriteMessage(websocket.TextMessage, []byte("hello"))
		for {
			mt, m, err := conn.ReadMessage()
			if err != nil {
				return
			}
			conn.WriteMessage(mt, m)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newProxy(t *testing.T, target string, s *link.Shaper) *link.Proxy {
	t.Helper()
	p, err := link.NewProxy(target, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	return string(b), err
}

func TestProxyPartitionClosesAndRefuses(t *testing.T) {
	agenttest.LeakTest(t)
	srv := upstream(t)
	s := link.NewShaper(nil)
	p := newProxy(t, srv.URL, s)
	c := client(t)
	if b, err := get(c, p.URL()+"/bytes/5"); err != nil || b != "zzzzz" {
		t.Fatalf("healthy link: %q, %v", b, err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL(), "http")+"/notify", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, m, err := ws.ReadMessage(); err != nil || string(m) != "hello" {
		t.Fatalf("websocket through the proxy: %q, %v", m, err)
	}

	s.Set(fleet.Link{Partition: true})
	ws.SetReadDeadline(clock.Real{}.Now().Add(10 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("the websocket survived the partition")
	}
	if _, err := get(c, p.URL()+"/bytes/5"); err == nil {
		t.Fatal("a request went through a partitioned link")
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
	if err == nil {
		conn.SetReadDeadline(clock.Real{}.Now().Add(10 * time.Second))
		_, rerr := conn.Read(make([]byte, 1))
		conn.Close()
		if rerr == nil {
			t.Fatal("a connection during the partition stayed open")
		}
	}

	s.Set(fleet.Link{})
	if b, err := get(c, p.URL()+"/bytes/5"); err != nil || b != "zzzzz" {
		t.Fatalf("healed link: %q, %v", b, err)
	}
}

func TestProxyLatencyAndBandwidth(t *testing.T) {
	agenttest.LeakTest(t)
	srv := upstream(t)
	c := clocktest.New(time.Time{})
	s := link.NewShaper(c)
	p := newProxy(t, srv.URL, s)
	hc := client(t)

	s.Set(fleet.Link{Latency: 2 * time.Second})
	done := make(chan error, 1)
	start := c.Now()
	go func() {
		_, err := get(hc, p.URL()+"/bytes/1")
		done <- err
	}()
	<-c.BlockUntil(1)
	select {
	case err := <-done:
		t.Fatalf("answered before the latency: %v", err)
	default:
	}
	c.Advance(2 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := c.Now().Sub(start); took != 2*time.Second {
		t.Fatalf("took %v of device time, want 2s", took)
	}

	s.Set(fleet.Link{BytesPerSecond: 2000})
	resp, err := hc.Get(p.URL() + "/bytes/6000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, took := readTimed(t, c, resp.Body)
	if len(b) != 6000 || took < 3*time.Second || took > 3*time.Second+100*time.Millisecond {
		t.Fatalf("%d bytes at 2000 B/s took %v of device time, want 6000 in 3s", len(b), took)
	}
}

func TestProxyDropsRepeat(t *testing.T) {
	agenttest.LeakTest(t)
	srv := upstream(t)
	s := link.NewShaper(nil)
	p := newProxy(t, srv.URL, s)
	// A connection per request: net/http silently resends an idempotent request that failed on a reused
	// connection, which would be a second request through the link.
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	pattern := func() string {
		var b strings.Builder
		for range 60 {
			if _, err := get(hc, p.URL()+"/bytes/3"); err != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	s.Set(fleet.Link{DropRate: 0.25, Seed: 9})
	first := pattern()
	s.Set(fleet.Link{DropRate: 0.25, Seed: 9})
	if again := pattern(); again != first {
		t.Fatalf("seed 9 dropped differently through the proxy:\n%s\n%s", first, again)
	}
	if !strings.Contains(first, "x") || !strings.Contains(first, ".") {
		t.Fatalf("pattern %s", first)
	}
	// The same seed on a bare shaper decides the same requests.
	bare := link.NewShaper(nil)
	bare.Set(fleet.Link{DropRate: 0.25, Seed: 9})
	if want := dropPattern(t, bare, 60); want != first {
		t.Fatalf("proxy dropped %s, the shaper decides %s", first, want)
	}
}

func TestProxyCloseReleasesEverything(t *testing.T) {
	agenttest.LeakTest(t)
	srv := upstream(t)
	p, err := link.NewProxy(srv.URL, link.NewShaper(nil))
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL(), "http")+"/notify", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	addr := strings.TrimPrefix(p.URL(), "http://")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ws.SetReadDeadline(clock.Real{}.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Fatal("the proxy still listens after Close")
	}
}
