package reports

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// HubOptions configure a Hub. Zero fields get the defaults of NewHub.
type HubOptions struct {
	// LiveLag is how many records a client may trail the newest by before it is told it is behind and is
	// caught up in large batches from the backlog (default 2048).
	LiveLag int
	// MaxBatch bounds the records of one message (default 1024).
	MaxBatch int
	// PingEvery is how often a client is pinged; a client that has not answered within PongWait is dropped
	// (defaults 15 s and 40 s).
	PingEvery, PongWait time.Duration
	// WriteWait bounds one write to a client; a client that takes longer is dropped, and its page reconnects
	// and resumes (default 10 s).
	WriteWait time.Duration
	// MaxClients caps the connected clients; more are refused with 503 (default 64).
	MaxClients int
}

// Hub is the live view's sink: it keeps every record of the run as its backlog, and streams the backlog and
// then each new record to every connected page over a websocket. The run never waits for a page: Add only
// appends to the backlog and wakes the clients' writers, each of which sends from its own position in the
// backlog at its own pace. A page that trails by more than LiveLag records is told it is behind and is caught
// up in large batches; one that cannot take a write within WriteWait is dropped and reconnects, resuming from
// the position it reached. So a slow page costs the run nothing and no page misses a record. Per client the
// hub holds a position and at most one batch being written.
//
// The wire protocol (server to page, JSON text messages):
//
//	{"type":"hello","stream":S,"pos":P,"head":H,"ended":false}  first; P is where this connection starts
//	{"type":"events","pos":P,"events":[record, …]}               records P, P+1, … of the backlog
//	{"type":"behind","pos":P,"head":H}                           catching up from the backlog
//	{"type":"live","pos":P}                                      caught up
//	{"type":"end","pos":P}                                       the run is over; nothing more will come
//
// A page connects to /ws?from=P&stream=S to resume after a reconnect; a stream other than the hub's (a new
// server) or a position past the backlog starts over from 0 with "reset":true in the hello.
type Hub struct {
	opts     HubOptions
	stream   string
	upgrader websocket.Upgrader

	mu      sync.Mutex
	backlog [][]byte // encoded records, in order
	runs    []RunInfo
	ended   bool // every run started has stopped
	open    int  // runs started and not stopped
	clients map[*client]struct{}
	// upgrading counts pages between passing the cap and joining clients.
	upgrading int
	closed    bool
	bytes     int64

	wg sync.WaitGroup
}

var _ Sink = (*Hub)(nil)

// NewHub returns a hub with no records.
func NewHub(opts HubOptions) *Hub {
	if opts.LiveLag <= 0 {
		opts.LiveLag = 2048
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.PingEvery <= 0 {
		opts.PingEvery = 15 * time.Second
	}
	if opts.PongWait <= 0 {
		opts.PongWait = 40 * time.Second
	}
	if opts.WriteWait <= 0 {
		opts.WriteWait = 10 * time.Second
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = 64
	}
	var b [8]byte
	rand.Read(b[:])
	return &Hub{opts: opts, stream: hex.EncodeToString(b[:]), clients: map[*client]struct{}{},
		upgrader: websocket.Upgrader{HandshakeTimeout: opts.WriteWait, ReadBufferSize: 1024, WriteBufferSize: 32 << 10}}
}

// Start implements Sink. A hub may take several runs one after another (fleetlab report serve of a file that
// holds several).
func (h *Hub) Start(info RunInfo) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs = append(h.runs, info)
	h.open++
	h.ended = false
	return nil
}

// Add implements Sink: it appends to the backlog and wakes the clients; it never waits for them.
func (h *Hub) Add(records []Record) {
	enc := make([][]byte, 0, len(records))
	for _, r := range records {
		b, err := json.Marshal(r)
		if err != nil {
			continue // plain data: cannot fail
		}
		enc = append(enc, b)
	}
	h.mu.Lock()
	h.backlog = append(h.backlog, enc...)
	for _, r := range enc {
		h.bytes += int64(len(r))
	}
	h.wakeAll()
	h.mu.Unlock()
}

// wakeAll wakes every client's writer without blocking. h.mu is held.
func (h *Hub) wakeAll() {
	for c := range h.clients {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Stop implements Sink: when every run started has stopped, the pages are told the run is over. The hub goes
// on serving its backlog until Close.
func (h *Hub) Stop() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open > 0 {
		h.open--
	}
	if h.open == 0 {
		h.ended = true
		h.wakeAll()
	}
	return nil
}

// End marks the stream over without a run (a finished file served by fleetlab report serve).
func (h *Hub) End() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open, h.ended = 0, true
	h.wakeAll()
}

// Len returns how many records the backlog holds.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.backlog)
}

// BacklogBytes returns the size of the backlog's encoded records.
func (h *Hub) BacklogBytes() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bytes
}

// Clients returns how many pages are connected.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Records returns the backlog's encoded records from pos on (shared: callers must not modify them).
func (h *Hub) Records(pos int) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pos < 0 || pos > len(h.backlog) {
		return nil
	}
	return h.backlog[pos:len(h.backlog):len(h.backlog)]
}

// Disconnect drops every connected page, as a network failure would; the pages reconnect and resume.
func (h *Hub) Disconnect() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.conn.NetConn().Close()
	}
}

// Close drops every page, refuses new ones and waits until every goroutine of the hub has ended.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for c := range h.clients {
		c.closeConn(websocket.CloseGoingAway, "report view stopping")
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// client is one connected page.
type client struct {
	h    *Hub
	conn *websocket.Conn
	wake chan struct{}
	done chan struct{} // closed when the reader sees the connection end
	once sync.Once
}

func (c *client) closeConn(code int, text string) {
	c.once.Do(func() {
		c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text),
			time.Now().Add(time.Second))
		c.conn.NetConn().Close()
	})
}

// ServeWS upgrades the request to the live stream (the route /ws of Handler).
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request) {
	from, _ := strconv.Atoi(r.URL.Query().Get("from"))
	stream := r.URL.Query().Get("stream")
	// A slot is taken before the upgrade, so two pages arriving together cannot both pass the cap.
	h.mu.Lock()
	full, closed := len(h.clients)+h.upgrading >= h.opts.MaxClients, h.closed
	if !full && !closed {
		h.upgrading++
	}
	h.mu.Unlock()
	switch {
	case closed:
		http.Error(w, "the report view is stopping", http.StatusServiceUnavailable)
		return
	case full:
		http.Error(w, fmt.Sprintf("the report view serves %d pages at most; close one and reload", h.opts.MaxClients),
			http.StatusServiceUnavailable)
		return
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.mu.Lock()
		h.upgrading--
		h.mu.Unlock()
		return // the upgrader answered the request
	}
	c := &client{h: h, conn: conn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	h.upgrading--
	if h.closed {
		h.mu.Unlock()
		conn.Close()
		return
	}
	reset := stream != h.stream || from < 0 || from > len(h.backlog)
	if reset {
		from = 0
	}
	h.clients[c] = struct{}{}
	h.wg.Add(2)
	h.mu.Unlock()
	go c.read()
	go c.write(from, reset && stream != "")
}

// read reads (and discards) what the page sends, to see pongs and the connection's end.
func (c *client) read() {
	defer c.h.wg.Done()
	defer close(c.done)
	c.conn.SetReadLimit(1024)
	c.conn.SetReadDeadline(time.Now().Add(c.h.opts.PongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(c.h.opts.PongWait))
	})
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(c.h.opts.PongWait))
	}
}

// write sends the backlog from pos on, then each new record, until the connection ends.
func (c *client) write(pos int, reset bool) {
	h := c.h
	defer h.wg.Done()
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
		c.closeConn(websocket.CloseNormalClosure, "")
	}()
	ping := time.NewTicker(h.opts.PingEvery)
	defer ping.Stop()
	h.mu.Lock()
	head, ended := len(h.backlog), h.ended
	h.mu.Unlock()
	hello := map[string]any{"type": "hello", "stream": h.stream, "pos": pos, "head": head, "ended": ended}
	if reset {
		hello["reset"] = true
	}
	if c.send(hello) != nil {
		return
	}
	behind, sentEnd := false, false
	var msg bytes.Buffer
	for {
		h.mu.Lock()
		head, ended = len(h.backlog), h.ended
		batch := h.backlog[pos:min(head, pos+h.opts.MaxBatch)]
		h.mu.Unlock()
		if len(batch) > 0 {
			select { // a page taking a long catch-up still answers pings, so its read deadline holds
			case <-ping.C:
				if c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.opts.WriteWait)) != nil {
					return
				}
			default:
			}
			if !behind && head-pos > h.opts.LiveLag {
				behind = true
				if c.send(map[string]any{"type": "behind", "pos": pos, "head": head}) != nil {
					return
				}
			}
			msg.Reset()
			fmt.Fprintf(&msg, `{"type":"events","pos":%d,"events":[`, pos)
			for i, b := range batch {
				if i > 0 {
					msg.WriteByte(',')
				}
				msg.Write(b)
			}
			msg.WriteString("]}")
			if c.sendRaw(msg.Bytes()) != nil {
				return
			}
			pos += len(batch)
			if behind && pos == head {
				behind = false
				if c.send(map[string]any{"type": "live", "pos": pos}) != nil {
					return
				}
			}
			continue
		}
		if ended && !sentEnd {
			sentEnd = true
			if c.send(map[string]any{"type": "end", "pos": pos}) != nil {
				return
			}
		}
		if !ended {
			sentEnd = false // a new run started on the same hub
		}
		select {
		case <-c.done:
			return
		case <-c.wake:
		case <-ping.C:
			if c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.opts.WriteWait)) != nil {
				return
			}
		}
	}
}

func (c *client) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.sendRaw(b)
}

func (c *client) sendRaw(b []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(c.h.opts.WriteWait))
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return errors.Join(errors.New("write to page"), err)
	}
	return nil
}
