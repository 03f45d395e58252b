package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/fleetlab/fleetlab/rigs/frame"
	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/fleet/eventlog"
)

// Endpoint is the base URL the agent is given on the board: its host is never dialled; the Client's round
// tripper carries every request over the console line.
const Endpoint = "http://serial.fleetlab"

// ErrLinkReset is the error of every call in flight when the session with the lab ended (the lab side
// restarted). The agent's HTTP transport treats it as a link failure and retries.
var ErrLinkReset = errors.New("serial link reset")

// maxBuffered bounds the answer bytes a Client holds for one channel that its reader has not taken.
const maxBuffered = 32 << 20

// ClientOptions configure a Client.
type ClientOptions struct {
	// Thing is the board's thing name, said in the session's Hello so the lab can check it.
	Thing string
	// Clock times the line's retransmissions (default: the real clock).
	Clock clock.Clock
	// Seed seeds the session identifiers.
	Seed uint64
	// Session tunes the frame session (segments, window); Role, Hello and the callbacks are the Client's.
	Session frame.Options
}

// Client is the board side of the bridge: the agent's device API over the console line.
type Client struct {
	s      *frame.Session
	thing  string
	events chan []byte
	done   chan struct{}
	ctx    context.Context // ends at Close: bounds the client's own sends
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	next    uint64
	calls   map[uint64]*call
	dropped uint64
}

// call is one channel in flight: a request or a subscription.
type call struct {
	answer chan answerOrErr // the head, once
	body   *body
	notify chan wire.Notify // subscriptions only
	ended  chan struct{}    // closed at 'E' or reset
	once   sync.Once
}

type answerOrErr struct {
	a   answer
	err error
}

// NewClient starts a client on port, which it owns: Close closes it.
func NewClient(port io.ReadWriteCloser, opts ClientOptions) *Client {
	c := &Client{thing: opts.Thing, calls: map[uint64]*call{}, events: make(chan []byte, 1024), done: make(chan struct{})}
	c.ctx, c.stop = context.WithCancel(context.Background())
	so := opts.Session
	so.Role, so.Hello, so.Clock, so.Seed = frame.Board, []byte(opts.Thing), opts.Clock, opts.Seed
	so.OnMessage, so.OnReset = c.message, c.reset
	c.s = frame.NewSession(port, so)
	c.wg.Add(1)
	go c.sendEvents()
	return c
}

// Session returns the frame session, for its counts.
func (c *Client) Session() *frame.Session { return c.s }

// Close ends the session and closes the port; calls in flight fail.
func (c *Client) Close() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	close(c.done)
	c.stop()
	err := c.s.Close()
	c.wg.Wait()
	c.reset()
	return err
}

// HTTPClient returns an http.Client whose requests go over the line. Give it to the agent with Endpoint.
func (c *Client) HTTPClient() *http.Client { return &http.Client{Transport: c} }

// Transport returns the agent's transport for thing over the line: the agent's own HTTP transport on
// HTTPClient, with the notify channel carried as a stream of messages instead of a websocket.
func (c *Client) Transport(thing string) (agent.Transport, error) {
	ht, err := agent.NewHTTPTransport(Endpoint, thing, c.HTTPClient())
	if err != nil {
		return nil, err
	}
	return &transport{HTTPTransport: ht, c: c}, nil
}

// transport is the agent's HTTP transport with Subscribe over the line.
type transport struct {
	*agent.HTTPTransport
	c *Client
}

// Subscribe implements agent.Transport: the lab opens the service's notify websocket for the board and
// passes each message on.
func (t *transport) Subscribe(ctx context.Context) (agent.Notifications, error) {
	return t.c.subscribe(ctx)
}

// Event sends an agent event to the lab. It never blocks: when the line is far behind, events are dropped and
// counted.
func (c *Client) Event(e agent.Event) {
	b, err := json.Marshal(eventlog.RecordOf(e))
	if err != nil {
		return
	}
	select {
	case c.events <- b:
	default:
		c.mu.Lock()
		c.dropped++
		c.mu.Unlock()
	}
}

func (c *Client) sendEvents() {
	defer c.wg.Done()
	for {
		select {
		case b := <-c.events:
			c.s.Send(c.ctx, encode(msgEvent, 0, b))
		case <-c.done:
			return
		}
	}
}

// open registers a new channel.
func (c *Client) open(sub bool) (uint64, *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	k := &call{answer: make(chan answerOrErr, 1), ended: make(chan struct{})}
	if sub {
		k.notify = make(chan wire.Notify, 16)
	} else {
		id := c.next
		k.body = newBody(func() { c.cancel(id) })
	}
	id := c.next
	c.calls[id] = k
	return id, k
}

// cancel tells the lab the board gave up on ch, and forgets it.
func (c *Client) cancel(ch uint64) {
	c.mu.Lock()
	_, ok := c.calls[ch]
	delete(c.calls, ch)
	c.mu.Unlock()
	if ok {
		c.s.Send(c.ctx, encode(msgCancel, ch, nil))
	}
}

// RoundTrip implements http.RoundTripper over the line.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxMessageBody+1))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(b) > maxMessageBody {
			return nil, fmt.Errorf("request body over %d bytes", maxMessageBody)
		}
		reqBody = b
	}
	h, err := json.Marshal(head{Method: req.Method, Path: req.URL.RequestURI(), Header: pick(req.Header, requestHeaders)})
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	id, k := c.open(false)
	msg := append(append(h, '\n'), reqBody...)
	if err := c.s.Send(ctx, encode(msgRequest, id, msg)); err != nil {
		c.forget(id)
		return nil, fmt.Errorf("send request: %w", err)
	}
	select {
	case r := <-k.answer:
		if r.err != nil {
			c.forget(id)
			return nil, r.err
		}
		resp := &http.Response{StatusCode: r.a.Status, Status: strconv.Itoa(r.a.Status) + " " + http.StatusText(r.a.Status),
			Header: r.a.Header, Body: k.body, ContentLength: -1, Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil {
			resp.ContentLength = n
		}
		stop := context.AfterFunc(ctx, func() { k.body.fail(ctx.Err()) })
		k.body.onClose = func() { stop() }
		return resp, nil
	case <-ctx.Done():
		c.cancel(id)
		return nil, ctx.Err()
	case <-c.done:
		return nil, frame.ErrClosed
	}
}

// maxMessageBody bounds a request body; the device API's are small JSON documents.
const maxMessageBody = 256 << 10

func (c *Client) forget(ch uint64) {
	c.mu.Lock()
	delete(c.calls, ch)
	c.mu.Unlock()
}

func (c *Client) subscribe(ctx context.Context) (agent.Notifications, error) {
	id, k := c.open(true)
	if err := c.s.Send(ctx, encode(msgSubscribe, id, nil)); err != nil {
		c.forget(id)
		return nil, agent.Transient(fmt.Errorf("subscribe: %w", err))
	}
	select {
	case r := <-k.answer:
		if r.err != nil {
			c.forget(id)
			return nil, agent.Transient(fmt.Errorf("subscribe: %w", r.err))
		}
		if r.a.Status != http.StatusSwitchingProtocols {
			c.forget(id)
			return nil, &agent.APIError{Status: r.a.Status, Code: http.StatusText(r.a.Status), Message: "notify refused"}
		}
	case <-ctx.Done():
		c.cancel(id)
		return nil, ctx.Err()
	case <-c.done:
		return nil, frame.ErrClosed
	}
	return &stream{c: c, id: id, k: k, ctx: ctx}, nil
}

// stream is a notify channel over the line: it ends when the lab ends it, or when the context of Subscribe ends
// (the board keeps wall-clock time: plain channels are what it waits on).
type stream struct {
	c    *Client
	id   uint64
	k    *call
	ctx  context.Context
	once sync.Once
}

func (s *stream) Next(ctx context.Context) (wire.Notify, error) {
	select {
	case n := <-s.k.notify:
		return n, nil
	case <-s.k.ended:
		return wire.Notify{}, errors.New("notify: the lab ended the channel")
	case <-s.ctx.Done():
		s.Close()
		return wire.Notify{}, s.ctx.Err()
	case <-ctx.Done():
		return wire.Notify{}, ctx.Err()
	}
}

func (s *stream) Close() { s.once.Do(func() { s.c.cancel(s.id) }) }

// message handles one message from the lab, on the session's reader.
func (c *Client) message(m []byte) {
	typ, ch, b, err := decode(m)
	if err != nil {
		return
	}
	c.mu.Lock()
	k := c.calls[ch]
	if typ == msgEnd {
		delete(c.calls, ch)
	}
	c.mu.Unlock()
	if k == nil {
		return // a channel the board gave up on
	}
	switch typ {
	case msgAnswer:
		var a answer
		if err := json.Unmarshal(b, &a); err != nil {
			k.answer <- answerOrErr{err: fmt.Errorf("bad answer: %w", err)}
			return
		}
		select {
		case k.answer <- answerOrErr{a: a}:
		default:
		}
	case msgBody:
		if k.body != nil && !k.body.add(b) {
			c.cancel(ch)
		}
	case msgNotify:
		var n wire.Notify
		if json.Unmarshal(b, &n) == nil && k.notify != nil {
			select {
			case k.notify <- n:
			default: // a hint that a job is pending; the agent's polls catch up
			}
		}
	case msgEnd:
		var err error
		if len(b) > 0 {
			err = errors.New(string(b))
		}
		select {
		case k.answer <- answerOrErr{err: orErr(err, io.ErrUnexpectedEOF)}:
		default:
		}
		if k.body != nil {
			k.body.end(err)
		}
		k.once.Do(func() { close(k.ended) })
	}
}

func orErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// reset fails every call in flight: the session they belonged to is gone.
func (c *Client) reset() {
	c.mu.Lock()
	calls := c.calls
	c.calls = map[uint64]*call{}
	c.mu.Unlock()
	for _, k := range calls {
		select {
		case k.answer <- answerOrErr{err: ErrLinkReset}:
		default:
		}
		if k.body != nil {
			k.body.end(ErrLinkReset)
		}
		k.once.Do(func() { close(k.ended) })
	}
}

// Dropped returns how many events were dropped because the line was behind.
func (c *Client) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// body is an answer's body as it arrives.
type body struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	ready   chan struct{}
	done    bool
	err     error // at the end: nil for a clean end
	closed  bool
	cancel  func()
	onClose func()
}

func newBody(cancel func()) *body { return &body{ready: make(chan struct{}), cancel: cancel} }

// add appends a chunk; false when the reader is too far behind (the channel is dropped).
func (b *body) add(p []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || b.closed {
		return true
	}
	if b.buf.Len()+len(p) > maxBuffered {
		b.done, b.err = true, errors.New("answer body: reader too slow")
		b.signal()
		return false
	}
	b.buf.Write(p)
	b.signal()
	return true
}

func (b *body) end(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done, b.err = true, err
		b.signal()
	}
}

func (b *body) fail(err error) { b.end(err) }

func (b *body) signal() {
	close(b.ready)
	b.ready = make(chan struct{})
}

func (b *body) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if b.buf.Len() > 0 {
			n, _ := b.buf.Read(p)
			b.mu.Unlock()
			return n, nil
		}
		if b.closed {
			b.mu.Unlock()
			return 0, errors.New("read on closed body")
		}
		if b.done {
			err := b.err
			b.mu.Unlock()
			if err == nil {
				return 0, io.EOF
			}
			return 0, err
		}
		ready := b.ready
		b.mu.Unlock()
		<-ready
	}
}

func (b *body) Close() error {
	b.mu.Lock()
	wasDone, wasClosed := b.done, b.closed
	b.closed = true
	b.buf.Reset()
	onClose := b.onClose
	b.mu.Unlock()
	if !wasClosed {
		if onClose != nil {
			onClose()
		}
		if !wasDone && b.cancel != nil {
			b.cancel()
		}
	}
	return nil
}
