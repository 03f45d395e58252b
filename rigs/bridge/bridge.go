package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	pathpkg "path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/rigs/frame"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet/eventlog"
)

// Options configure a Bridge.
type Options struct {
	// Thing is the board's thing name: only its device API (/things/{Thing}/…) and artifact downloads
	// (/artifacts/…) pass. Required.
	Thing string
	// Endpoint is the device API's base URL (the service's, or a link proxy's in front of it). Required.
	Endpoint string
	// HTTPClient calls the endpoint. Default: a client of the bridge's own.
	HTTPClient *http.Client
	// OnEvent receives the agent's events, in order.
	OnEvent func(agent.Event)
	// OnOpen is told of each session the board opens, with the name it says in its Hello.
	OnOpen func(thing string)
	// OnConsole receives the console text between frames, in order.
	OnConsole func(text []byte)
	// Clock times the line's retransmissions (default: the real clock).
	Clock clock.Clock
	// Seed seeds the session identifiers.
	Seed uint64
	// Session tunes the frame session; Role and the callbacks are the bridge's. Its Buffer defaults to two
	// chunks, not the session's default: the answers of other calls queue behind that much of a download, not
	// more (a progress report during a download must not wait out its request timeout).
	Session frame.Options
}

// Bridge is the lab side: it answers a board's messages by calling the device API over HTTP.
type Bridge struct {
	opts   Options
	s      *frame.Session
	client *http.Client
	prefix string // "/things/{thing}/"
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup

	served atomic.Uint64

	mu    sync.Mutex
	chans map[uint64]context.CancelFunc
	gen   uint64 // session generation: answers of an old session are not sent to a new one
}

// New starts a bridge on port, which it owns: Close closes it.
func New(port io.ReadWriteCloser, opts Options) (*Bridge, error) {
	if opts.Thing == "" || opts.Endpoint == "" {
		return nil, errors.New("bridge: Thing and Endpoint are required")
	}
	b := &Bridge{opts: opts, client: opts.HTTPClient, prefix: "/things/" + url.PathEscape(opts.Thing) + "/",
		chans: map[uint64]context.CancelFunc{}}
	if b.client == nil {
		b.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	b.opts.Endpoint = strings.TrimRight(opts.Endpoint, "/")
	b.ctx, b.stop = context.WithCancel(context.Background())
	so := opts.Session
	so.Role, so.Clock, so.Seed = frame.Lab, opts.Clock, opts.Seed
	if so.Buffer <= 0 {
		so.Buffer = 2 * ChunkSize
	}
	so.OnMessage, so.OnReset, so.OnConsole = b.message, b.reset, opts.OnConsole
	so.OnOpen = func(hello []byte) {
		if opts.OnOpen != nil {
			opts.OnOpen(string(hello))
		}
	}
	b.s = frame.NewSession(port, so)
	return b, nil
}

// Served counts the requests the service answered and the answer went to the board.
func (b *Bridge) Served() uint64 { return b.served.Load() }

// Session returns the frame session, for its counts.
func (b *Bridge) Session() *frame.Session { return b.s }

// Close cancels every call in flight, ends the session and closes the port.
func (b *Bridge) Close() error {
	b.stop()
	b.reset()
	err := b.s.Close()
	b.wg.Wait()
	if t, ok := b.client.Transport.(*http.Transport); ok && b.opts.HTTPClient == nil {
		t.CloseIdleConnections()
	}
	return err
}

// reset cancels the calls of the session that ended.
func (b *Bridge) reset() {
	b.mu.Lock()
	chans := b.chans
	b.chans = map[uint64]context.CancelFunc{}
	b.gen++
	b.mu.Unlock()
	for _, cancel := range chans {
		cancel()
	}
}

// message handles one message from the board, on the session's reader: calls run on their own goroutines.
func (b *Bridge) message(m []byte) {
	typ, ch, body, err := decode(m)
	if err != nil {
		return
	}
	switch typ {
	case msgEvent:
		var r eventlog.Record
		if json.Unmarshal(body, &r) == nil && b.opts.OnEvent != nil {
			b.opts.OnEvent(r.Event())
		}
	case msgCancel:
		b.mu.Lock()
		cancel := b.chans[ch]
		delete(b.chans, ch)
		b.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	case msgRequest, msgSubscribe:
		ctx, cancel := context.WithCancel(b.ctx)
		b.mu.Lock()
		if old := b.chans[ch]; old != nil {
			old()
		}
		b.chans[ch] = cancel
		gen := b.gen
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer b.done(ch, gen)
			if typ == msgRequest {
				b.serve(ctx, ch, body)
			} else {
				b.notify(ctx, ch)
			}
		}()
	}
}

// done forgets a finished channel.
func (b *Bridge) done(ch, gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen == gen {
		if cancel := b.chans[ch]; cancel != nil {
			cancel()
			delete(b.chans, ch)
		}
	}
}

// send sends a message on the channel's context: it gives up when the board cancels it or the session ends.
func (b *Bridge) send(ctx context.Context, typ byte, ch uint64, body []byte) error {
	return b.s.Send(ctx, encode(typ, ch, body))
}

// allowed reports whether the board may call path.
func (b *Bridge) allowed(path string) bool {
	p, _, _ := strings.Cut(path, "?")
	if pathpkg.Clean(p) != p || strings.Contains(strings.ToLower(p), "%2e") {
		return false // no way out of the prefix through dot segments
	}
	return strings.HasPrefix(p, b.prefix) || strings.HasPrefix(p, "/artifacts/")
}

// serve answers one request.
func (b *Bridge) serve(ctx context.Context, ch uint64, msg []byte) {
	hb, reqBody, _ := bytes.Cut(msg, []byte("\n"))
	var h head
	if err := json.Unmarshal(hb, &h); err != nil || h.Method == "" || !strings.HasPrefix(h.Path, "/") {
		b.send(ctx, msgEnd, ch, []byte("bridge: malformed request"))
		return
	}
	if !b.allowed(h.Path) {
		b.refuse(ctx, ch, h)
		return
	}
	var rb io.Reader
	if len(reqBody) > 0 {
		rb = bytes.NewReader(reqBody)
	}
	req, err := http.NewRequestWithContext(ctx, h.Method, b.opts.Endpoint+h.Path, rb)
	if err != nil {
		b.send(ctx, msgEnd, ch, []byte("bridge: "+err.Error()))
		return
	}
	for k, v := range pick(h.Header, requestHeaders) {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.send(ctx, msgEnd, ch, []byte("bridge: "+err.Error()))
		return
	}
	defer resp.Body.Close()
	a, _ := json.Marshal(answer{Status: resp.StatusCode, Header: pick(resp.Header, answerHeaders)})
	if b.send(ctx, msgAnswer, ch, a) != nil {
		return
	}
	b.served.Add(1)
	buf := make([]byte, ChunkSize)
	for {
		n, err := io.ReadFull(resp.Body, buf)
		if n > 0 {
			if b.send(ctx, msgBody, ch, buf[:n]) != nil {
				return
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			b.send(ctx, msgEnd, ch, nil)
			return
		}
		if err != nil {
			b.send(ctx, msgEnd, ch, []byte("bridge: answer body: "+err.Error()))
			return
		}
	}
}

// refuse answers a request outside the board's device API with AccessDeniedException.
func (b *Bridge) refuse(ctx context.Context, ch uint64, h head) {
	msg, _ := json.Marshal(map[string]string{"__type": "AccessDeniedException",
		"message": fmt.Sprintf("%s %s: a board reaches only its own device API and artifact downloads", h.Method, h.Path)})
	a, _ := json.Marshal(answer{Status: http.StatusForbidden, Header: http.Header{"Content-Type": {"application/json"},
		"X-Amzn-Errortype": {"AccessDeniedException"}}})
	if b.send(ctx, msgAnswer, ch, a) == nil && b.send(ctx, msgBody, ch, msg) == nil {
		b.send(ctx, msgEnd, ch, nil)
	}
}

// notify opens the service's notify websocket for the board and passes its messages on until either side ends.
func (b *Bridge) notify(ctx context.Context, ch uint64) {
	u := "ws" + strings.TrimPrefix(b.opts.Endpoint, "http") + b.prefix + "notify"
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		b.send(ctx, msgEnd, ch, []byte("bridge: notify: "+err.Error()))
		return
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	a, _ := json.Marshal(answer{Status: http.StatusSwitchingProtocols})
	if b.send(ctx, msgAnswer, ch, a) != nil {
		return
	}
	conn.SetReadLimit(64 << 10)
	for {
		_, m, err := conn.ReadMessage()
		if err != nil {
			b.send(ctx, msgEnd, ch, []byte("bridge: notify ended"))
			return
		}
		if b.send(ctx, msgNotify, ch, m) != nil {
			return
		}
	}
}
