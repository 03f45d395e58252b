package service_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// TestCloseLeavesNothing runs the service with a device connected to its notify channel and a job in flight,
// closes it, and checks every goroutine it started has ended and its ports are free.
func TestCloseLeavesNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	w := start(t, dir, 1)
	fleet := w.setup(2)
	url := "ws" + strings.TrimPrefix(w.svc.Endpoint(), "http") + "/things/robot-00/notify"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var hello wire.Notify
	if err := conn.ReadJSON(&hello); err != nil || hello.Kind != wire.NotifyHello {
		t.Fatalf("notify: %+v %v", hello, err)
	}
	w.deploy(fleet, nil)
	endpoint := w.svc.Endpoint()
	if err := w.svc.Close(); err != nil {
		t.Fatal(err)
	}
	// The device sees the channel close, and the port no longer answers.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	conn.Close()
	if err := doJSON("GET", endpoint+"/things/robot-00/jobs", nil, nil); err == nil {
		t.Fatal("the closed service still answers")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(),
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // waiting for goroutines to exit: there is no event to wait on
	}
}
