package reports

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// Handler returns the live view: GET / the page, /ws the stream of records, /events.jsonl the records so far
// as JSON lines, /report.html the self-contained HTML report of the records so far. It checks no token; Serve
// wraps it in one.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(livePage())
	})
	mux.HandleFunc("GET /ws", h.ServeWS)
	mux.HandleFunc("GET /events.jsonl", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, b := range h.Records(0) {
			w.Write(b)
			w.Write([]byte{'\n'})
		}
	})
	mux.HandleFunc("GET /report.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="report.html"`)
		WriteHTML(w, h.Records(0))
	})
	return mux
}

// RequireToken wraps next so that every request must carry token, as the query parameter token (what the
// printed URL carries, and what the page passes on to its websocket) or as an Authorization: Bearer header.
func RequireToken(token string, next http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.URL.Query().Get("token")
		if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && got == "" {
			got = auth
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			http.Error(w, "this report view needs its token: open the URL that fleetlab printed, which carries it (…/?token=…)",
				http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Server serves a hub's live view on a listener of its own.
type Server struct {
	hub   *Hub
	srv   *http.Server
	ln    net.Listener
	token string
	done  chan struct{}
}

// MaxConns caps the connections a Server accepts at once (pages, their websockets, downloads).
const MaxConns = 128

// Serve serves h's live view on addr (host:port; port 0 picks a free one). On a loopback address the view is
// open to whoever can reach it, unless token is set; on any other address it requires a token, and when token
// is empty Serve makes a random one. The URL carries the token.
func Serve(addr string, h *Hub, token string) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("report view address %q: want host:port, such as 127.0.0.1:4712", addr)
	}
	if token == "" && !IsLoopback(host) {
		var b [16]byte
		rand.Read(b[:])
		token = hex.EncodeToString(b[:])
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("report view: %w", err)
	}
	var handler http.Handler = h.Handler()
	if token != "" {
		handler = RequireToken(token, handler)
	}
	s := &Server{hub: h, ln: ln, token: token, done: make(chan struct{}),
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}}
	go func() {
		defer close(s.done)
		s.srv.Serve(netutil.LimitListener(ln, MaxConns))
	}()
	return s, nil
}

// IsLoopback reports whether host names only this machine: a loopback address or "localhost". An empty host
// (every interface) is not.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL returns the page's URL, with the token when there is one.
func (s *Server) URL() string {
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1" // reachable from here; from elsewhere, use this machine's name
	}
	u := "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port)) + "/"
	if s.token != "" {
		u += "?token=" + s.token
	}
	return u
}

// Token returns the token the view requires, "" when it requires none.
func (s *Server) Token() string { return s.token }

// Close stops the server: the listener, every connection and every page's websocket, and waits for them.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.hub.Close()
	<-s.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
