package deviceapi

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/event"
)

// hub fans engine events out to the things' notify subscribers. A subscriber is a buffered channel; when it is
// full the message is dropped, which is safe because a "pending" only asks the agent to poll, and the agent polls
// anyway after every job and on reconnect.
type hub struct {
	mu     sync.Mutex
	subs   map[string]map[chan wire.Notify]struct{}
	closed bool
	done   chan struct{}
}

var _ event.Sink = (*hub)(nil)

func newHub() *hub {
	return &hub{subs: map[string]map[chan wire.Notify]struct{}{}, done: make(chan struct{})}
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
	for c := range h.subs[thing] {
		select {
		case c <- n:
		default:
		}
	}
}

// subscribe returns a channel of the thing's notifications; unsubscribe with the returned function.
func (h *hub) subscribe(thing string) (<-chan wire.Notify, func()) {
	c := make(chan wire.Notify, 16)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[thing] == nil {
		h.subs[thing] = map[chan wire.Notify]struct{}{}
	}
	h.subs[thing][c] = struct{}{}
	c <- wire.Notify{Kind: wire.NotifyHello}
	return c, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs[thing], c)
		if len(h.subs[thing]) == 0 {
			delete(h.subs, thing)
		}
	}
}

func (h *hub) count(thing string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[thing])
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
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
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	c, unsubscribe := a.hub.subscribe(name)
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
	ping := clock.Real{}.NewTimer(a.ping)
	defer func() { ping.Stop() }()
	for {
		select {
		case n := <-c:
			conn.SetWriteDeadline(wallDeadline(10 * time.Second))
			if err := conn.WriteJSON(n); err != nil {
				return
			}
		case <-ping.C():
			if err := conn.WriteControl(websocket.PingMessage, nil, wallDeadline(10*time.Second)); err != nil {
				return
			}
			ping = clock.Real{}.NewTimer(a.ping)
		case <-gone:
			return
		case <-a.hub.done:
			conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "service stopping"), wallDeadline(time.Second))
			return
		}
	}
}
