package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

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
}

// NewProxy starts a proxy on a free loopback port forwarding to target (the service's base URL) through s.
func NewProxy(target string, s *Shaper) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("link proxy: target %q: want http(s)://host:port", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("link proxy: %w", err)
	}
	p := &Proxy{shaper: s, conns: map[*trackedConn]struct{}{}}
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
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport:     p.transport,
		FlushInterval: -1, // throttled bodies reach the agent as they are paced, not when a buffer fills
		ErrorLog:      quiet,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode != http.StatusSwitchingProtocols {
				resp.Body = s.Body(resp.Request.Context(), resp.Body)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil || errors.Is(err, ErrPartitioned) {
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
		rp.ServeHTTP(w, r.WithContext(ctx))
	})
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
