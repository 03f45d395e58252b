package reports_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/reports"
	"github.com/fleetlab/fleetlab/sim/event"
)

// message is what the hub sends a page.
type message struct {
	Type   string           `json:"type"`
	Stream string           `json:"stream"`
	Pos    int              `json:"pos"`
	Head   int              `json:"head"`
	Ended  bool             `json:"ended"`
	Reset  bool             `json:"reset"`
	Events []reports.Record `json:"events"`
}

// liveHub starts a hub behind a test server; cleanup closes both.
func liveHub(t testing.TB, opts reports.HubOptions, token string) (*reports.Hub, *httptest.Server) {
	t.Helper()
	hub := reports.NewHub(opts)
	var h http.Handler = hub.Handler()
	if token != "" {
		h = reports.RequireToken(token, h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		hub.Close()
		srv.Close()
	})
	return hub, srv
}

func wsURL(srv *httptest.Server, q url.Values) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?" + q.Encode()
}

func dial(t testing.TB, srv *httptest.Server, q url.Values) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, q), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t testing.TB, c *websocket.Conn) message {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var m message
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

// feed adds n log records numbered from first.
func feed(hub *reports.Hub, first, n int) {
	recs := make([]reports.Record, n)
	for i := range recs {
		recs[i] = reports.Record{V: 1, Seq: uint64(first + i + 1), Run: "r", Kind: event.Log, Detail: fmt.Sprint(first + i)}
	}
	hub.Add(recs)
}

// collect reads events until it has want records or a message of type stop, checking they come in order
// without gaps from pos; it returns the types of the other messages seen.
func collect(t testing.TB, c *websocket.Conn, pos, want int) (int, []string) {
	t.Helper()
	var others []string
	for pos < want {
		m := read(t, c)
		if m.Type != "events" {
			others = append(others, m.Type)
			continue
		}
		if m.Pos != pos {
			t.Fatalf("events at %d, want %d: a gap or a repeat", m.Pos, pos)
		}
		for i, r := range m.Events {
			if r.Detail != fmt.Sprint(pos+i) {
				t.Fatalf("record %d is %q", pos+i, r.Detail)
			}
		}
		pos += len(m.Events)
	}
	return pos, others
}

func TestHubReplaysBacklogThenStreams(t *testing.T) {
	hub, srv := liveHub(t, reports.HubOptions{MaxBatch: 16}, "")
	hub.Start(reports.RunInfo{ID: "r"})
	feed(hub, 0, 100)
	c := dial(t, srv, nil)
	hello := read(t, c)
	if hello.Type != "hello" || hello.Pos != 0 || hello.Head != 100 || hello.Stream == "" {
		t.Fatalf("first message %+v, want hello at 0 of 100", hello)
	}
	pos, _ := collect(t, c, 0, 100)
	feed(hub, 100, 10)
	pos, _ = collect(t, c, pos, 110)
	hub.Stop()
	if m := read(t, c); m.Type != "end" || m.Pos != pos {
		t.Fatalf("after Stop: %+v, want end at %d", m, pos)
	}
}

func TestHubResume(t *testing.T) {
	hub, srv := liveHub(t, reports.HubOptions{MaxBatch: 10}, "")
	feed(hub, 0, 50)
	c := dial(t, srv, nil)
	stream := read(t, c).Stream
	pos, _ := collect(t, c, 0, 30)
	c.Close()
	feed(hub, 50, 20)

	c2 := dial(t, srv, url.Values{"from": {fmt.Sprint(pos)}, "stream": {stream}})
	if h := read(t, c2); h.Pos != pos || h.Reset {
		t.Fatalf("resume hello %+v, want pos %d without reset", h, pos)
	}
	collect(t, c2, pos, 70)

	other := dial(t, srv, url.Values{"from": {"40"}, "stream": {"another-server"}})
	if h := read(t, other); h.Pos != 0 || !h.Reset {
		t.Fatalf("hello for another stream %+v, want a reset to 0", h)
	}
	past := dial(t, srv, url.Values{"from": {"1000"}, "stream": {stream}})
	if h := read(t, past); h.Pos != 0 || !h.Reset {
		t.Fatalf("hello past the backlog %+v, want a reset to 0", h)
	}
}

func TestHubSlowClientIsToldAndCaughtUp(t *testing.T) {
	hub, srv := liveHub(t, reports.HubOptions{LiveLag: 100, MaxBatch: 50, WriteWait: time.Minute}, "")
	// The page's socket takes little (a fixed receive buffer turns off the kernel's autotuning) and the records
	// are large, so the run outgrows every buffer between the hub and the page while the page reads nothing:
	// the hub's writer is held, whatever the machine's load, until the page reads again.
	dialer := *websocket.DefaultDialer
	dialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetReadBuffer(256 << 10)
		}
		return conn, err
	}
	c, resp, err := dialer.Dial(wsURL(srv, nil), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	read(t, c)                    // hello; then the client reads nothing while the run goes on
	const n, size = 5000, 4 << 10 // 20 MiB: more than loopback's largest socket buffers hold
	pad := strings.Repeat("x", size)
	for i := 0; i < n; i += 100 {
		recs := make([]reports.Record, 100)
		for j := range recs {
			recs[j] = reports.Record{V: 1, Seq: uint64(i + j + 1), Run: "r", Kind: event.Log, Detail: fmt.Sprint(i + j), Attrs: map[string]string{"pad": pad}}
		}
		hub.Add(recs) // returns at once: the stalled page holds nothing up
	}
	_, others := collect(t, c, 0, n)
	if len(others) == 0 || others[0] != "behind" {
		t.Fatalf("control messages %v, want behind first", others)
	}
	if others[len(others)-1] == "behind" { // the catch-up's "live" follows the last record
		if m := read(t, c); m.Type != "live" || m.Pos != n {
			t.Errorf("after the last record: %+v, want live at %d", m, n)
		}
	}
}

func TestHubDropsPageThatStopsAnswering(t *testing.T) {
	hub, srv := liveHub(t, reports.HubOptions{PingEvery: 50 * time.Millisecond, PongWait: time.Second}, "")
	// A page that never reads never answers a ping.
	c := dial(t, srv, nil)
	waitFor(t, "the page to connect", func() bool { return hub.Clients() == 1 })
	waitFor(t, "the silent page to be dropped", func() bool { return hub.Clients() == 0 })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			break // the hub closed it
		}
	}

	// One that reads answers pings and stays, past many pong waits.
	live := dial(t, srv, nil)
	var pings sync.WaitGroup
	pings.Add(40) // 40 pings: two pong waits
	n := 0
	live.SetPingHandler(func(data string) error {
		if n++; n <= 40 {
			pings.Done()
		}
		return live.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := live.ReadMessage(); err != nil {
				return
			}
		}
	}()
	pings.Wait()
	if hub.Clients() != 1 {
		t.Fatal("a page that answers pings was dropped")
	}
}

func TestHubMaxClients(t *testing.T) {
	_, srv := liveHub(t, reports.HubOptions{MaxClients: 1}, "")
	dial(t, srv, nil)
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, nil), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second page: %v %v, want 503", err, resp)
	}
}

func TestHubToken(t *testing.T) {
	_, srv := liveHub(t, reports.HubOptions{}, "s3cret")
	for _, path := range []string{"/", "/events.jsonl", "/report.html", "/?token=wrong"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", path, resp.StatusCode)
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, nil), nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("websocket without the token: %v, want 401", err)
	}
	resp, err := http.Get(srv.URL + "/?token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `data-mode="live"`) {
		t.Errorf("GET / with the token: %d, want the live page", resp.StatusCode)
	}
	dial(t, srv, url.Values{"token": {"s3cret"}})
}

func TestServeRequiresTokenBeyondLoopback(t *testing.T) {
	hub := reports.NewHub(reports.HubOptions{})
	s, err := reports.Serve("0.0.0.0:0", hub, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Token() == "" || !strings.Contains(s.URL(), "?token="+s.Token()) {
		t.Fatalf("bound to every interface: token %q, URL %s: want a token, carried by the URL", s.Token(), s.URL())
	}
	resp, err := http.Get(strings.Split(s.URL(), "?")[0])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", resp.StatusCode)
	}
	resp, err = http.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with the URL's token: %d, want 200", resp.StatusCode)
	}

	local, err := reports.Serve("127.0.0.1:0", reports.NewHub(reports.HubOptions{}), "")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if local.Token() != "" {
		t.Errorf("on loopback: token %q, want none", local.Token())
	}
	if _, err := reports.Serve("4712", hub, ""); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("Serve(\"4712\"): %v, want an error asking for host:port", err)
	}
}

func TestHubLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		hub := reports.NewHub(reports.HubOptions{PingEvery: 10 * time.Millisecond})
		s, err := reports.Serve("127.0.0.1:0", hub, "")
		if err != nil {
			t.Fatal(err)
		}
		u := "ws" + strings.TrimPrefix(strings.TrimSuffix(s.URL(), "/"), "http") + "/ws"
		feed(hub, 0, 500)
		var conns []*websocket.Conn
		for range 3 {
			c, _, err := websocket.DefaultDialer.Dial(u, nil)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		waitFor(t, "3 pages", func() bool { return hub.Clients() == 3 })
		hub.Disconnect()
		waitFor(t, "the pages to be dropped", func() bool { return hub.Clients() == 0 })
		c, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		waitFor(t, "a page again", func() bool { return hub.Clients() == 1 })
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	waitFor(t, "the hub's goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// waitFor waits up to 20 s of real time for cond.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("timed out waiting for %s\n%s", what, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHubLoad10k sends a 10,000-device run through the hub to five pages, one of them stalled (it reads
// nothing until the run is over): the run's emission completes while the stalled page holds its socket full
// (the hub never waits for it), every fast page gets every record in order, and the stalled one, once it reads,
// gets every record too — resuming where it was if the hub dropped it for not answering its pings meanwhile,
// as the page does. It logs the memory the hub held.
func TestHubLoad10k(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 devices")
	}
	hub, srv := liveHub(t, reports.HubOptions{WriteWait: 2 * time.Minute}, "")
	evs := synthRun{scenario: "load", deployment: "job-10k", devices: 10000, fail: map[int]bool{17: true, 4242: true},
		hung: 9000, start: t0}.events()
	want := len(evs) + 2 // run.started, the events, run.ended
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	run, err := reports.New(reports.Options{ID: "load", Sinks: []reports.Sink{hub}})
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		c := dial(t, srv, nil)
		read(t, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := readAll(c, 0)
			if err != nil {
				t.Errorf("fast page %d: %v", i, err)
			}
			counts[i] = n
		}()
	}
	stalled := dial(t, srv, nil)
	stream := read(t, stalled).Stream

	for _, e := range evs {
		run.Emit(e)
	}
	run.Finish("load", false)
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("%d records, backlog %.1f MiB encoded, heap %.1f MiB more than before the run (with a page stalled)",
		hub.Len(), float64(hub.BacklogBytes())/(1<<20), float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))
	wg.Wait()
	for i, n := range counts {
		if n != want {
			t.Errorf("fast page %d got %d records, want %d", i, n, want)
		}
	}
	pos, drops := 0, 0
	for c := stalled; ; {
		n, err := readAll(c, pos)
		pos = n
		if err == nil {
			break
		}
		if drops++; drops > 5 {
			t.Fatalf("stalled page: dropped %d times, last at %d: %v", drops, pos, err)
		}
		c = dial(t, srv, url.Values{"from": {fmt.Sprint(pos)}, "stream": {stream}})
		if h := read(t, c); h.Pos != pos || h.Reset {
			t.Fatalf("resume at %d: %+v", pos, h)
		}
	}
	if pos != want {
		t.Errorf("stalled page got %d records once it read, want %d", pos, want)
	}
	t.Logf("the stalled page was dropped %d times and resumed", drops)
}

// readAll reads a page's stream from pos until the end message, checking that the records come in order, and
// returns the position it reached and the error that ended the connection before the end, if one did.
func readAll(c *websocket.Conn, pos int) (int, error) {
	for {
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		_, b, err := c.ReadMessage()
		if err != nil {
			return pos, fmt.Errorf("read at %d: %w", pos, err)
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			return pos, fmt.Errorf("decode: %w", err)
		}
		switch m.Type {
		case "events":
			if m.Pos != pos {
				return pos, fmt.Errorf("events at %d, want %d", m.Pos, pos)
			}
			for i, r := range m.Events {
				if r.Seq != uint64(pos+i+1) {
					return pos, fmt.Errorf("record %d has seq %d", pos+i, r.Seq)
				}
			}
			pos += len(m.Events)
		case "end":
			return pos, nil
		}
	}
}

// BenchmarkHub10k reports how fast a 10,000-device run's events go through a Run into the hub, with no page
// and with five pages of which one is stalled, the live heap once the run is over (the stalled page still
// far behind) and the size of the backlog it holds.
func BenchmarkHub10k(b *testing.B) {
	evs := synthRun{scenario: "load", deployment: "job-10k", devices: 10000, fail: map[int]bool{17: true},
		hung: 9000, start: t0}.events()
	for _, pages := range []int{0, 5} {
		b.Run(fmt.Sprintf("pages=%d", pages), func(b *testing.B) {
			var heap, backlog float64
			for b.Loop() {
				b.StopTimer()
				hub := reports.NewHub(reports.HubOptions{WriteWait: 2 * time.Minute})
				srv := httptest.NewServer(hub.Handler())
				var wg sync.WaitGroup
				for i := range pages {
					c, _, err := websocket.DefaultDialer.Dial(wsURL(srv, nil), nil)
					if err != nil {
						b.Fatal(err)
					}
					if i == pages-1 {
						defer c.Close() // stalled: reads nothing
						continue
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer c.Close()
						for {
							_, m, err := c.ReadMessage()
							if err != nil || strings.Contains(string(m), `"type":"end"`) {
								return
							}
						}
					}()
				}
				b.StartTimer()
				run, _ := reports.New(reports.Options{ID: "bench", Sinks: []reports.Sink{hub}})
				for _, e := range evs {
					run.Emit(e)
				}
				run.Close()
				b.StopTimer()
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				heap = float64(after.HeapAlloc) / (1 << 20) // live heap with the run over, a page still stalled
				backlog = float64(hub.BacklogBytes()) / (1 << 20)
				wg.Wait()
				hub.Close()
				srv.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(heap, "heap-MiB")
			b.ReportMetric(backlog, "backlog-MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}
