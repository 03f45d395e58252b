package service

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
)

// Limits bound what a client can hold of a listener, so a slow or hostile peer cannot keep connections, temp
// files or file descriptors for ever. The defaults are sized for slow device links (a board on a cellular
// modem or a serial bridge moves a few kilobytes a second and may stall for tens of seconds); zero fields take
// them. Deadlines are on the wall clock: they bound real I/O, not policy time.
type Limits struct {
	// HeaderTimeout bounds reading a request's headers (default 30 s).
	HeaderTimeout time.Duration
	// ReadTimeout is how long a request body may go without a byte arriving (default 60 s): a client that
	// declares a body and stops sending it is cut off, however large the body it declared, and what it sent is
	// dropped (an upload's temp file with it). Any progress extends it, so a large upload over a slow link runs
	// as long as it moves.
	ReadTimeout time.Duration
	// WriteTimeout is how long writing a response may go without progress (default 2 min): a peer that stops
	// reading is cut off. A download that moves extends it.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long (default 2 min).
	IdleTimeout time.Duration
	// MaxConns caps the connections open at once on each listener; a connection beyond it is answered
	// 503 Service Unavailable (with Retry-After, which the AWS SDKs retry) and closed, rather than left to fail
	// accept when file descriptors run out. Default: three quarters of the open-file limit shared among the
	// listeners, at most 16,384.
	MaxConns int
	// NotifyPing is how often a notify websocket is pinged (default 30 s); NotifyTimeout how long it may go
	// without a pong or any other frame before it is dropped (default 75 s).
	NotifyPing, NotifyTimeout time.Duration
}

// withDefaults returns l with its zero fields defaulted, for listeners listeners.
func (l Limits) withDefaults(listeners int) Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.HeaderTimeout, 30*time.Second)
	def(&l.ReadTimeout, time.Minute)
	def(&l.WriteTimeout, 2*time.Minute)
	def(&l.IdleTimeout, 2*time.Minute)
	def(&l.NotifyPing, 30*time.Second)
	def(&l.NotifyTimeout, 75*time.Second)
	if l.MaxConns <= 0 {
		l.MaxConns = min(16384, max(16, OpenFileLimit()*3/4/max(1, listeners)))
	}
	return l
}

// server returns the http.Server of a listener serving h within l.
func (l Limits) server(h http.Handler) *http.Server {
	// ReadTimeout and WriteTimeout of http.Server bound a whole request, which would cut a large upload or
	// download over a slow link; the handler's deadlines move with progress instead.
	return &http.Server{Handler: l.deadlines(h), ReadHeaderTimeout: l.HeaderTimeout, IdleTimeout: l.IdleTimeout}
}

// deadlines gives each request a read deadline while its body is read and a write deadline while its answer is
// written, each pushed back by every byte that moves.
func (l Limits) deadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctl := http.NewResponseController(w)
		now := clock.Real{}.Now()
		ctl.SetWriteDeadline(now.Add(l.WriteTimeout))
		if r.Body != nil && r.Body != http.NoBody {
			ctl.SetReadDeadline(now.Add(l.ReadTimeout))
			r.Body = &progressBody{ReadCloser: r.Body, ctl: ctl, l: l}
		}
		h.ServeHTTP(&progressWriter{ResponseWriter: w, ctl: ctl, timeout: l.WriteTimeout}, r)
	})
}

// progressBody pushes the read deadline back as the body arrives, and lifts it at the end of the body, so that
// the server's wait for the next request (bounded by its header and idle timeouts) is not cut short.
type progressBody struct {
	io.ReadCloser
	ctl *http.ResponseController
	l   Limits
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.ctl.SetReadDeadline(time.Time{})
	case n > 0:
		now := clock.Real{}.Now()
		b.ctl.SetReadDeadline(now.Add(b.l.ReadTimeout))
		// The answer comes after the body: an upload that moves must not run out its write deadline.
		b.ctl.SetWriteDeadline(now.Add(b.l.WriteTimeout))
	}
	return n, err
}

// progressWriter pushes the write deadline back before every write. It hijacks and flushes like the writer it
// wraps, for the notify websocket and streamed answers.
type progressWriter struct {
	http.ResponseWriter
	ctl     *http.ResponseController
	timeout time.Duration
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.ctl.SetWriteDeadline(clock.Real{}.Now().Add(w.timeout))
	return w.ResponseWriter.Write(p)
}

func (w *progressWriter) Flush() { w.ctl.Flush() }

func (w *progressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.ctl.Hijack() }

func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// capped is a listener that keeps at most max connections open; one beyond is answered 503 and closed.
type capped struct {
	net.Listener
	max int

	mu     sync.Mutex
	open   int
	shed   sync.WaitGroup // connections being answered 503
	sheds  int            // how many are, bounded by maxShedding
	closed bool
}

// maxShedding bounds the connections being answered 503 at once; beyond it they are closed without an answer.
const maxShedding = 64

// shedAnswer is what a connection over the cap is told, in the AWS JSON error form (the service's one error
// writer, rendered once); the SDKs retry a 503.
var shedAnswer = func() string {
	e := awsapi.NewError("ServiceUnavailableException", http.StatusServiceUnavailable,
		"The service has too many connections open; retry later.")
	e.Header = http.Header{"Retry-After": {"1"}}
	resp := e.Response("message", "application/json")
	resp.Close = true
	var b strings.Builder
	if err := resp.Write(&b); err != nil {
		panic("service: render the shed answer: " + err.Error()) // writes to memory: cannot fail
	}
	return b.String()
}()

func (l *capped) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.open < l.max {
			l.open++
			l.mu.Unlock()
			return &cappedConn{Conn: c, l: l}, nil
		}
		if l.closed || l.sheds >= maxShedding {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.sheds++
		l.shed.Add(1)
		l.mu.Unlock()
		go l.refuse(c)
	}
}

// refuse answers 503 on c and closes it, within a second. It reads the request's headers first (a client gets
// no answer before it has asked: Go's own client, for one, takes an answer that comes first for a broken
// connection), answers, and then reads what else the client sends until it closes or the second is up, so
// closing does not reset the connection under the answer.
func (l *capped) refuse(c net.Conn) {
	defer func() {
		c.Close()
		l.mu.Lock()
		l.sheds--
		l.mu.Unlock()
		l.shed.Done()
	}()
	c.SetDeadline(clock.Real{}.Now().Add(time.Second))
	br := bufio.NewReaderSize(io.LimitReader(c, 64<<10), 4096)
	if _, err := http.ReadRequest(br); err != nil {
		return
	}
	if _, err := io.WriteString(c, shedAnswer); err != nil {
		return
	}
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, br)
}

// Close stops accepting and waits for the connections being refused.
func (l *capped) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	err := l.Listener.Close()
	l.shed.Wait()
	return err
}

// Open returns how many connections the listener holds open.
func (l *capped) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

type cappedConn struct {
	net.Conn
	l    *capped
	once sync.Once
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return err
}
