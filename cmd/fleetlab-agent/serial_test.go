package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/robomaker/types"

	"github.com/fleetlab/fleetlab/harness/robomaker/robomakertest"
	"github.com/fleetlab/fleetlab/rigs/bridge"
	"github.com/fleetlab/fleetlab/rigs/emulated"
	"github.com/fleetlab/fleetlab/rigs/frame"
	"github.com/fleetlab/fleetlab/rigs/serial"
	"github.com/fleetlab/fleetlab/sim/fleet"
	"github.com/fleetlab/fleetlab/sim/service"
)

// TestSerialFlags: --serial needs no --endpoint (the device API goes to the lab's bridge as frames), and
// refuses one; --baud is for --serial and must be a speed; the device must look like one.
func TestSerialFlags(t *testing.T) {
	c, err := parseArgs([]string{"--serial", "/dev/ttyS0", "--thing", "r1", "--dir", "d"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("--serial without --endpoint: %v", err)
	}
	if c.serial != "/dev/ttyS0" || c.baud != 115200 || c.endpoint != bridge.Endpoint {
		t.Errorf("config %+v: want the serial device at 115200 baud and the bridge's endpoint", c)
	}
	if c, err := parseArgs([]string{"--thing", "r1", "--dir", "d"}, env(map[string]string{"FLEETLAB_SERIAL": "tcp://lab:4001"}), &bytes.Buffer{}); err != nil || c.serial != "tcp://lab:4001" {
		t.Errorf("FLEETLAB_SERIAL: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--serial", "/dev/ttyS0", "--endpoint", "http://h:1", "--thing", "r1", "--dir", "d"}, nil, "not both"},
		{[]string{"--serial", "/dev/ttyS0", "--thing", "r1", "--dir", "d"}, map[string]string{"FLEETLAB_ENDPOINT": "http://h:1"}, "not both"},
		{[]string{"--serial", "ttyS0", "--thing", "r1", "--dir", "d"}, nil, "absolute device path"},
		{[]string{"--serial", "/dev/ttyS0", "--baud", "0", "--thing", "r1", "--dir", "d"}, nil, "not a line speed"},
		{[]string{"--endpoint", "http://h:1", "--baud", "9600", "--thing", "r1", "--dir", "d"}, nil, "--baud is for --serial"},
		{[]string{"--serial", "/dev/ttyS0", "--dir", "d"}, nil, "hint: give --thing"},
		{[]string{"--serial", "/dev/ttyS0", "--access-key", "AK", "--secret-key", "SK", "--thing", "r1", "--dir", "d"}, nil, "cannot sign"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, env(tc.env), &out, &errOut, nil); code != exitUsage || !strings.Contains(errOut.String(), tc.want) ||
			!strings.Contains(errOut.String(), "hint:") {
			t.Errorf("%v %v: exit %d, %q; want %d and %q with a hint", tc.args, tc.env, code, errOut.String(), exitUsage, tc.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"--serial", "/dev/fleetlab-no-such-tty", "--thing", "r1", "--dir", t.TempDir()}, env(nil), &out, &errOut, nil); code != exitDevice {
		t.Errorf("a serial device that does not open: exit %d, want %d: %s", code, exitDevice, errOut.String())
	}
}

// TestRunOverSerial runs the agent with --serial on one end of a line paced at 115200 baud, the lab's bridge on
// the other calling the service: a deployment succeeds, and SIGTERM stops the agent cleanly.
func TestRunOverSerial(t *testing.T) {
	w := robomakertest.Start(t, service.Options{InMemoryStore: true})
	line, err := emulated.NewLine(115200, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Close() })
	boardEnd, labEnd := line.Ends()
	port, err := serial.Open(labEnd, serial.Options{Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	lab, err := bridge.New(port, bridge.Options{Thing: "robot-1", Endpoint: w.Svc.Endpoint(), Session: frame.Options{Baud: 115200}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	dir := filepath.Join(t.TempDir(), "robot")
	r := start([]string{"--serial", boardEnd, "--baud", "115200", "--thing", "robot-1", "--dir", dir,
		"--retry-base", "50ms", "--poll-min", "200ms", "--stop-grace", "5s"})
	fleetARN, err := w.Register(context.Background(), "lab", []fleet.Device{device{"robot-1"}})
	if err != nil {
		t.Fatal(err)
	}
	app, version := w.App("beat", robomakertest.Bundle(map[string]string{
		"hello_robot/launch.sh": robomakertest.HeartbeatApp, "pre_launch.sh": "#!/bin/sh\nexit 0\n",
		"post_launch.sh": "#!/bin/sh\nexit 0\n"}))
	job := w.Deploy(fleetARN, app, version, nil)
	if out := w.WaitJob(job, time.Minute); out.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("job %s: %v\n%s", out.Status, robomakertest.Summary(out), r.err.String())
	}
	if code := r.stopped(t); code != exitOK {
		t.Fatalf("exit %d after SIGTERM: %s", code, r.err.String())
	}
	if st := lab.Session().Stats(); lab.Served() == 0 || st.Sessions != 1 || st.MessagesReceived == 0 {
		t.Errorf("the bridge served %d requests in %d sessions: %+v", lab.Served(), st.Sessions, st)
	}
	if !strings.Contains(r.err.String(), boardEnd+" (frames)") {
		t.Errorf("the agent does not say it speaks over %s:\n%s", boardEnd, r.err.String())
	}
}
