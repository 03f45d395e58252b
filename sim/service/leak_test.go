package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/sim/agent/agenttest"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// TestCloseLeavesNothing runs the service with a device connected to its notify channel and a job in flight,
// closes it, and checks its ports are free and (agenttest.LeakTest) every goroutine it started has ended.
func TestCloseLeavesNothing(t *testing.T) {
	agenttest.LeakTest(t)
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
}
