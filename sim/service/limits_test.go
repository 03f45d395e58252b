package service_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/service"
)

// limited starts a service with limits (short, so the test runs fast) and returns it with its data directory.
func limited(t *testing.T, limits service.Limits) (*service.Service, string) {
	t.Helper()
	dir := t.TempDir()
	svc, err := service.New(service.Options{Dir: dir, InMemoryStore: true, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start("127.0.0.1:0", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	knowRobot(t, svc, "robot-1") // the device API requests below are robot-1's
	return svc, dir
}

// waitFor waits until cond holds, failing the test after a generous wall-clock deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !agenttest.Eventually(20*time.Second, cond) {
		t.Fatalf("timed out waiting until %s", what)
	}
}

// dial opens a raw connection to the service's endpoint.
func dial(t *testing.T, svc *service.Service) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(svc.Endpoint(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer waits until the server closes c: a read returns EOF or a reset, not a timeout.
func closedByServer(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open", what)
	}
}

// tempFiles lists the artifact store's files being written.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "artifacts", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestStalledBodyIsCutOff declares a 1 GiB body and sends 5 bytes of it, to S3 (which starts an upload's temp
// file) and to the device API: both connections are closed once the body stops moving for the read timeout,
// and the upload's temp file is removed. A body above an API's limit is refused on its Content-Length at once.
func TestStalledBodyIsCutOff(t *testing.T) {
	svc, dir := limited(t, service.Limits{ReadTimeout: time.Second})
	if err := svc.Artifacts.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	s3 := dial(t, svc)
	fmt.Fprintf(s3, "PUT /bundles/big.tar.gz HTTP/1.1\r\nHost: lab\r\nContent-Length: %d\r\n\r\nhello", 1<<30)
	waitFor(t, "the upload has a temp file", func() bool { return len(tempFiles(t, dir)) == 1 })
	device := dial(t, svc)
	fmt.Fprintf(device, "PUT /things/robot-1/jobs/$next HTTP/1.1\r\nHost: lab\r\nContent-Length: %d\r\n\r\nhello", 60000)

	closedByServer(t, s3, "a stalled S3 upload")
	closedByServer(t, device, "a stalled device request")
	waitFor(t, "the temp file is removed", func() bool { return len(tempFiles(t, dir)) == 0 })

	api := dial(t, svc)
	fmt.Fprintf(api, "POST /createFleet HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n\r\n{\"na", 1<<30)
	resp, err := http.ReadResponse(bufio.NewReader(api), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an API body above the limit: %v %v", resp, err)
	}
}

// TestServerTimeouts checks the other deadlines: headers that never end, a keep-alive connection left idle,
// and a download nobody reads are each closed by the server.
func TestServerTimeouts(t *testing.T) {
	svc, _ := limited(t, service.Limits{HeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond})

	slow := dial(t, svc)
	io.WriteString(slow, "GET /things/robot-1/jobs HTTP/1.1\r\nHost: lab\r\n")
	closedByServer(t, slow, "headers that never end")

	idle := dial(t, svc)
	io.WriteString(idle, "GET /things/robot-1/jobs HTTP/1.1\r\nHost: lab\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a request on the idle connection: %v %v", resp, err)
	}
	resp.Body.Close()
	closedByServer(t, idle, "an idle keep-alive connection")

	// A download far larger than the socket buffers, never read.
	if err := svc.Artifacts.CreateBucket("bundles"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Artifacts.Put("bundles", "big", strings.NewReader(strings.Repeat("x", 64<<20))); err != nil {
		t.Fatal(err)
	}
	stuck := dial(t, svc)
	io.WriteString(stuck, "GET /bundles/big HTTP/1.1\r\nHost: lab\r\n\r\n")
	waitFor(t, "the server drops the download nobody reads", func() bool { return svc.Conns()[0] == 0 })
}

// TestSilentNotifyPeersAreDropped opens notify websockets that never read (so never answer a ping) and one that
// does: the silent ones are dropped once they have not answered for the notify timeout; the one that answers
// stays.
func TestSilentNotifyPeersAreDropped(t *testing.T) {
	svc, _ := limited(t, service.Limits{NotifyPing: 50 * time.Millisecond, NotifyTimeout: 2 * time.Second})
	url := "ws" + strings.TrimPrefix(svc.Endpoint(), "http") + "/things/%s/notify"
	const silent = 50
	for i := range silent {
		c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf(url, fmt.Sprintf("mute-%02d", i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	live, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf(url, "live"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	done := make(chan struct{})
	go func() { // reading answers the service's pings
		defer close(done)
		for {
			if _, _, err := live.ReadMessage(); err != nil {
				return
			}
		}
	}()
	waitFor(t, "every notify channel is up", func() bool {
		n := svc.Devices.Connected("live")
		for i := range silent {
			n += svc.Devices.Connected(fmt.Sprintf("mute-%02d", i))
		}
		return n == silent+1
	})
	waitFor(t, "the silent peers are dropped", func() bool {
		for i := range silent {
			if svc.Devices.Connected(fmt.Sprintf("mute-%02d", i)) != 0 {
				return false
			}
		}
		return true
	})
	if svc.Devices.Connected("live") != 1 {
		t.Fatal("the peer that answers pings was dropped")
	}
	waitFor(t, "only the live connection is open", func() bool { return svc.Conns()[0] == 1 })
	live.Close()
	<-done
}

// TestConnectionCapSheds fills the listener to its cap: a new client is answered 503 (with Retry-After) rather
// than left hanging or refused, and is served again once connections close.
func TestConnectionCapSheds(t *testing.T) {
	svc, _ := limited(t, service.Limits{MaxConns: 4})
	get := func() (*http.Response, error) {
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(svc.Endpoint() + "/things/robot-1/jobs")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	var held []net.Conn
	for range 4 {
		held = append(held, dial(t, svc))
	}
	waitFor(t, "the listener is at its cap", func() bool { return svc.Conns()[0] == 4 })
	for range 3 {
		resp, err := get()
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("X-Amzn-ErrorType") != "ServiceUnavailableException" {
			t.Fatalf("a client over the cap: %v %v", resp, err)
		}
	}
	for _, c := range held {
		c.Close()
	}
	waitFor(t, "the held connections are closed", func() bool { return svc.Conns()[0] == 0 })
	if resp, err := get(); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a client once load dropped: %v %v", resp, err)
	}
}
