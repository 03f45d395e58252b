package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// LoopbackResult is the loopback limit of this machine at some client concurrency, over some connections.
type LoopbackResult struct {
	Clients, Conns int
	// Opened is how many connections the handler's server accepted: at most Conns.
	Opened   int64
	Requests int64
	Elapsed  time.Duration
	RPS      float64
}

// loopbackBody is what each loopback request sends: the size of a device's step report.
var loopbackBody = []byte(`{"status":"IN_PROGRESS","statusDetails":{"step":"DownloadingExtracting","progress":"50"},"expectedVersion":3}`)

// Loopback measures the raw HTTP request rate of this machine over loopback: clients goroutines share conns
// keep-alive connections (one each when conns is 0 or more than clients) and POST a device-sized JSON body to a
// minimal handler (it reads the body and answers a small JSON object) for about d, in this process as the
// service is. It is the ceiling of any HTTP service here at that concurrency over that many connections, so a
// device API's rate can be stated as a fraction of it.
func Loopback(ctx context.Context, clients, conns int, d time.Duration) (LoopbackResult, error) {
	if clients < 1 {
		return LoopbackResult{}, fmt.Errorf("loopback: %d clients: want at least 1", clients)
	}
	if conns < 1 || conns > clients {
		conns = clients
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return LoopbackResult{}, fmt.Errorf("loopback: %w", err)
	}
	answer := []byte(`{"executionState":{"status":"IN_PROGRESS","versionNumber":4}}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}), ReadHeaderTimeout: 30 * time.Second}
	var opened atomic.Int64
	srv.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			opened.Add(1)
		}
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	url := "http://" + ln.Addr().String() + "/things/loopback/jobs/job"

	wall := clock.Real{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var count atomic.Int64
	var mu sync.Mutex
	var failure error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	began := wall.Now()
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(loopbackBody))
				if err == nil {
					var resp *http.Response
					if resp, err = client.Do(req); err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if err == nil && resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
				}
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						mu.Lock()
						failure = errors.Join(failure, err)
						mu.Unlock()
					}
					cancel()
					return
				}
				count.Add(1)
			}
		})
	}
	clock.Sleep(wall, d, ctx.Done())
	close(stop)
	wg.Wait()
	elapsed := wall.Now().Sub(began)
	if failure != nil {
		return LoopbackResult{}, fmt.Errorf("loopback: %w", failure)
	}
	if err := ctx.Err(); err != nil {
		return LoopbackResult{}, fmt.Errorf("loopback: %w", err)
	}
	n := count.Load()
	return LoopbackResult{Clients: clients, Conns: conns, Opened: opened.Load(), Requests: n, Elapsed: elapsed,
		RPS: float64(n) / elapsed.Seconds()}, nil
}
