package deviceapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
)

// hub fans engine events out to the things' notify subscribers. A subscriber is a queue of the service's clock
// holding at most subscriberQueue messages; when it is full the message is dropped, which is safe because a
// "pending" only asks the agent to poll, and the agent polls anyway after every job and on reconnect.
type hub struct {
	clock  clock.Clock
	mu     sync.Mutex
	subs   map[string]map[*clock.Queue[wire.Notify]]struct{}
	closed bool
	done   chan struct{}
}

// subscriberQueue is how many notifications a subscriber may have waiting.
const subscriberQueue = 16

var _ event.Sink = (*hub)(nil)

func newHub(c clock.Clock) *hub {
	return &hub{clock: c, subs: map[string]map[*clock.Queue[wire.Notify]]struct{}{}, done: make(chan struct{})}
}

// Emit turns releases and cancellations into notifications.
func (h *hub) Emit(e event.Event) {
	var n wire.Notify
	switch {
	case e.Kind == event.ExecutionReleased:
		n = wire.Notify{Kind: wire.NotifyPending, JobID: e.Deployment}
	case e.Kind == event.ExecutionState && (e.To == string(engine.ExecCanceled) || e.To == string(engine.ExecRemoved)):
		n = wire.Notify{Kind: wire.NotifyCanceled, JobID: e.Deployment}
	default:
		return
	}
	h.send(e.Device, n)
}

func (h *hub) send(thing string, n wire.Notify) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for q := range h.subs[thing] {
		q.Push(n)
	}
}

// subscribe returns a queue of the thing's notifications, beginning with a hello; unsubscribe with the returned
// function, which closes the queue. ok is false once the hub is closed.
func (h *hub) subscribe(thing string) (q *clock.Queue[wire.Notify], unsubscribe func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false
	}
	q = clock.NewQueue[wire.Notify](h.clock, subscriberQueue)
	if h.subs[thing] == nil {
		h.subs[thing] = map[*clock.Queue[wire.Notify]]struct{}{}
	}
	h.subs[thing][q] = struct{}{}
	q.Push(wire.Notify{Kind: wire.NotifyHello})
	return q, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs[thing], q)
		if len(h.subs[thing]) == 0 {
			delete(h.subs, thing)
		}
		q.Close()
	}, true
}

func (h *hub) count(thing string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[thing])
}

// close ends every subscription: their queues close, and no new one is taken.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	for _, qs := range h.subs {
		for q := range qs {
			q.Close()
		}
	}
}

// LocalNotify is the notify channel taken in process. A GET /things/{thing}/notify whose context carries one
// (WithLocalNotify) and that reaches the device API in this process — through the service's middleware, as an
// in-process http.RoundTripper delivers it — is answered 200 with the thing's notifications in Queue, instead
// of an upgrade to a websocket. Whatever the middleware does to a notify request (a fault's error answer) it
// does to this one.
type LocalNotify struct {
	mu          sync.Mutex
	queue       *clock.Queue[wire.Notify]
	unsubscribe func()
	closed      bool
}

type localNotifyKey struct{}

// WithLocalNotify returns ctx carrying l, for the notify request that subscribes it.
func WithLocalNotify(ctx context.Context, l *LocalNotify) context.Context {
	return context.WithValue(ctx, localNotifyKey{}, l)
}

// Queue returns the thing's notifications once the request has been answered, nil before. The queue is closed
// when the subscription ends: by Close, or when the service closes.
func (l *LocalNotify) Queue() *clock.Queue[wire.Notify] {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queue
}

// Close ends the subscription.
func (l *LocalNotify) Close() {
	l.mu.Lock()
	unsubscribe := l.unsubscribe
	l.closed, l.unsubscribe = true, nil
	l.mu.Unlock()
	if unsubscribe != nil {
		unsubscribe()
	}
}

func (l *LocalNotify) set(q *clock.Queue[wire.Notify], unsubscribe func()) {
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.queue, l.unsubscribe = q, unsubscribe
	}
	l.mu.Unlock()
	if closed {
		unsubscribe()
	}
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  512,
	WriteBufferSize: 512,
	// Devices are not browsers; the notify channel carries no credentials a cross-site page could abuse.
	CheckOrigin: func(*http.Request) bool { return true },
}

// notify upgrades to a websocket and writes the thing's notifications until either side closes. The device is
// pinged every ping interval and dropped when no frame (a pong, or anything else) has come for pongWait: a peer
// that stopped answering, or never reads, does not hold a connection and a subscription for ever.
func (a *API) notify(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("thing")
	if err := checkThing(name); err != nil {
		writeError(w, err)
		return
	}
	if l, _ := r.Context().Value(localNotifyKey{}).(*LocalNotify); l != nil {
		q, unsubscribe, ok := a.hub.subscribe(name)
		if !ok {
			writeError(w, &Error{http.StatusServiceUnavailable, wire.ErrServiceUnavailable, "the service is stopping"})
			return
		}
		l.set(q, unsubscribe)
		w.WriteHeader(http.StatusOK)
		return
	}
	if clock.WorldOf(a.clock) != nil {
		// A websocket would hold a virtual-time world for as long as it is open.
		writeError(w, &Error{http.StatusServiceUnavailable, wire.ErrServiceUnavailable,
			"the notify channel is not served on virtual time: poll GET /things/{thing}/jobs"})
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	c, unsubscribe, ok := a.hub.subscribe(name)
	if !ok {
		conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "service stopping"), wallDeadline(time.Second))
		return
	}
	defer unsubscribe()
	// Deadlines are on the wall clock: they bound network I/O, not simulated time.
	conn.SetReadDeadline(wallDeadline(a.pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(wallDeadline(a.pongWait)) })
	// The reader answers pings, takes pongs and notices the peer closing or going silent.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
			conn.SetReadDeadline(wallDeadline(a.pongWait))
		}
	}()
	// Pings are on the wall clock too: the socket is real, whatever the service's clock. (A virtual-time world
	// never serves this websocket: its devices take the notify channel in process.)
	nextPing := clock.Real{}.Now().Add(a.ping)
	for {
		i, _ := clock.Wait(nil, clock.Real{}, nextPing.Sub(clock.Real{}.Now()), c, clock.Done(gone))
		switch i {
		case 1:
			return
		case clock.Expired:
			if err := conn.WriteControl(websocket.PingMessage, nil, wallDeadline(10*time.Second)); err != nil {
				return
			}
			nextPing = clock.Real{}.Now().Add(a.ping)
			continue
		}
		n, ok := c.TryNext()
		if !ok { // closed and empty: the service is stopping
			conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "service stopping"), wallDeadline(time.Second))
			return
		}
		conn.SetWriteDeadline(wallDeadline(10 * time.Second))
		if err := conn.WriteJSON(n); err != nil {
			return
		}
	}
}
