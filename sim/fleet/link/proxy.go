package link

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Proxy is one device's link to the service as a loopback HTTP reverse proxy: the agent is given the proxy's URL
// as its endpoint, and every request — data-plane calls, artifact downloads, the websocket notify channel — goes
// through the Shaper on its way:
//
//   - partition: open connections, websockets included, are closed when it starts, and new ones are reset as soon
//     as they are accepted, so the agent sees refused and reset connections until the link heals;
//   - latency: each request waits before it is forwarded;
//   - drop: a dropped request's connection is closed without an answer;
//   - bandwidth: response bodies are throttled (websocket traffic is not).
//
// An error reaching the service is answered 502, as a gateway would.
//
// The proxy also sees the steps the agent reports: HookSteps holds the answer to a step report until a hook has
// acted on the device, which is how a fault strikes an agent it cannot reach into exactly at a step.
type Proxy struct {
	shaper    *Shaper
	ln        net.Listener
	srv       *http.Server
	transport *http.Transport
	ctx       context.Context // ends at Close: handlers waiting on the link give up
	cancel    context.CancelFunc
	unwatch   func()

	mu       sync.Mutex
	conns    map[*trackedConn]struct{}
	closed   bool
	handlers sync.WaitGroup
	serving  sync.WaitGroup
	hooks    map[int]StepHook
	nextHook int
}

// StepHook acts on a device when it reports a step in progress: it is called once the service has acknowledged
// the report and before the answer is passed on, so the agent goes no further until it returns. ctx ends when
// the agent gives up on the report or the proxy closes. An error loses the answer: the agent's connection closes
// without it, and the agent reports again.
type StepHook func(ctx context.Context, job, step string) error

// NewProxy starts a proxy on a free loopback port forwarding to target (the service's base URL) through s.
func NewProxy(target string, s *Shaper) (*Proxy, error) { return Listen("127.0.0.1:0", target, s) }

// Listen starts a proxy on addr ("host:port"; port 0 picks a free one) forwarding to target through s. The
// address decides who can reach the proxy: loopback for agents on this machine, the gateway of a Docker network
// for agents in its containers.
func Listen(addr, target string, s *Shaper) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("link proxy: target %q: want http(s)://host:port", target)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("link proxy: %w", err)
	}
	p := &Proxy{shaper: s, conns: map[*trackedConn]struct{}{}, hooks: map[int]StepHook{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.ln = &trackingListener{Listener: ln, p: p}
	p.transport = &http.Transport{
		Proxy:               nil, // the service is on a known address; never go through an HTTP proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	quiet := log.New(io.Discard, "", 0)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// The request keeps the Host the device sent it with: a device that signs its requests signs that
			// Host, and the service checks the signature against it.
			pr.Out.Host = pr.In.Host
		},
		Transport:     p.transport,
		FlushInterval: -1, // throttled bodies reach the agent as they are paced, not when a buffer fills
		ErrorLog:      quiet,
		ModifyResponse: func(resp *http.Response) error {
			if rep, ok := resp.Request.Context().Value(stepKey{}).(stepReport); ok && resp.StatusCode == http.StatusOK {
				if err := p.runHooks(resp.Request.Context(), rep); err != nil {
					return errAnswerLost
				}
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				resp.Body = s.Body(resp.Request.Context(), resp.Body)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil || errors.Is(err, ErrPartitioned) || errors.Is(err, errAnswerLost) {
				panic(http.ErrAbortHandler) // the link is gone: no answer at all
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10 * time.Second, ErrorLog: quiet}
	p.unwatch = s.Watch(func(l fleet.Link) {
		if l.Partition {
			p.closeConns()
		}
	})
	p.serving.Go(func() { p.srv.Serve(p.ln) })
	return p, nil
}

// URL is the proxy's base URL, to give the agent as its endpoint.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops the proxy: it closes the listener and every connection, websockets included, and returns once no
// request is being handled.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.unwatch()
	p.cancel()
	err := p.srv.Close()
	p.closeConns() // hijacked (websocket) connections are not the server's to close
	p.handlers.Wait()
	p.serving.Wait()
	p.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("close link proxy: %w", err)
	}
	return nil
}

func (p *Proxy) handler(rp *httputil.ReverseProxy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			panic(http.ErrAbortHandler)
		}
		p.handlers.Add(1)
		p.mu.Unlock()
		defer p.handlers.Done()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(p.ctx, cancel)
		defer stop()
		if err := p.shaper.Admit(ctx); err != nil {
			panic(http.ErrAbortHandler) // refused, dropped, or given up: the connection closes without an answer
		}
		if rep, ok := p.stepReport(r); ok {
			ctx = context.WithValue(ctx, stepKey{}, rep)
		}
		rp.ServeHTTP(w, r.WithContext(ctx))
	})
}

// HookSteps adds h; it sees every step report from now on, after the hooks added before it. The returned
// function removes it.
func (p *Proxy) HookSteps(h StepHook) (remove func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.nextHook
	p.nextHook++
	p.hooks[id] = h
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.hooks, id)
	}
}

// errAnswerLost is a step hook's failure: the answer to the report is not passed on.
var errAnswerLost = errors.New("link proxy: the answer to the step report is lost")

// stepKey carries a request's stepReport in its context.
type stepKey struct{}

// stepReport is a step an agent reports in progress.
type stepReport struct{ job, step string }

// maxReportBody bounds the body of a step report the proxy reads to find its step.
const maxReportBody = 1 << 20

// stepReport reads the step an UpdateJobExecution request (POST /things/{thing}/jobs/{jobId}) reports in
// progress, when it is one and a hook is there to see it; the body is put back for the service.
func (p *Proxy) stepReport(r *http.Request) (stepReport, bool) {
	p.mu.Lock()
	hooked := len(p.hooks) > 0
	p.mu.Unlock()
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if !hooked || r.Method != http.MethodPost || len(seg) != 4 || seg[0] != "things" || seg[2] != "jobs" || r.Body == nil {
		return stepReport{}, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReportBody))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return stepReport{}, false
	}
	var req wire.UpdateJobExecutionRequest
	if json.Unmarshal(body, &req) != nil || req.Status != wire.StatusInProgress || req.StatusDetails[wire.DetailStep] == "" {
		return stepReport{}, false
	}
	return stepReport{job: seg[3], step: req.StatusDetails[wire.DetailStep]}, true
}

// runHooks calls the step hooks in the order they were added; the first error stops them.
func (p *Proxy) runHooks(ctx context.Context, rep stepReport) error {
	p.mu.Lock()
	ids := make([]int, 0, len(p.hooks))
	for id := range p.hooks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	hooks := make([]StepHook, len(ids))
	for i, id := range ids {
		hooks[i] = p.hooks[id]
	}
	p.mu.Unlock()
	for _, h := range hooks {
		if err := h(ctx, rep.job, rep.step); err != nil {
			return err
		}
	}
	return nil
}

// closeConns closes every open connection.
func (p *Proxy) closeConns() {
	p.mu.Lock()
	conns := make([]*trackedConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.reset()
	}
}

// trackingListener accepts connections the proxy tracks, and resets those that arrive during a partition.
type trackingListener struct {
	net.Listener
	p *Proxy
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, p: l.p}
		if l.p.shaper.Link().Partition {
			tc.reset()
			continue
		}
		l.p.mu.Lock()
		if l.p.closed {
			l.p.mu.Unlock()
			tc.reset()
			return nil, net.ErrClosed
		}
		l.p.conns[tc] = struct{}{}
		l.p.mu.Unlock()
		return tc, nil
	}
}

// trackedConn is a connection the proxy can close from outside, when the link is cut.
type trackedConn struct {
	net.Conn
	p    *Proxy
	once sync.Once
}

// reset closes the connection at once, with a TCP reset where possible, as a cut link would end it.
func (c *trackedConn) reset() {
	if tcp, ok := c.Conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	c.Close()
}

func (c *trackedConn) Close() error {
	var err error
	c.once.Do(func() {
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}
