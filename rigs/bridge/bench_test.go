package bridge_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/rigs/bridge"
	"github.com/fleetlab/fleetlab/rigs/emulated"
	"github.com/fleetlab/fleetlab/rigs/frame"
	"github.com/fleetlab/fleetlab/rigs/serial"
)

// BenchmarkDownloadAt115200 downloads an artifact through the bridge over a pseudo-terminal line paced at
// 115200 baud, 8N1 (11520 bytes a second), with the sessions paced at the same rate, on a clean line and with a
// fraction of the bytes changed both ways. It reports the lab side's frames and bytes on the line a second, the
// line's use (line bytes a second over 11520), the payload bytes a second the board received (the artifact's
// bytes over the time of the whole request) and that as a share of the line's rate.
func BenchmarkDownloadAt115200(b *testing.B) {
	for _, c := range []struct {
		name  string
		noise float64
		size  int
	}{{"clean", 0, 64 << 10}, {"noise=0.2%", 0.002, 32 << 10}, {"noise=1%", 0.01, 8 << 10}} {
		b.Run(c.name, func(b *testing.B) { benchDownload(b, c.noise, c.size) })
	}
}

func benchDownload(b *testing.B, noise float64, size int) {
	const baud = 115200
	blob := make([]byte, size)
	for i := range blob {
		blob[i] = byte(rand.Uint32()) // incompressible, as a bundle is
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e"`)
		http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(blob))
	}))
	defer srv.Close()
	line, err := emulated.NewLine(baud, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer line.Close()
	boardPath, labPath := line.Ends()
	labPort, err := serial.Open(labPath, serial.Options{Baud: baud})
	if err != nil {
		b.Fatal(err)
	}
	boardPort, err := serial.Open(boardPath, serial.Options{Baud: baud})
	if err != nil {
		labPort.Close()
		b.Fatal(err)
	}
	lab, err := bridge.New(&noisyPort{Port: labPort, rate: noise, rnd: rand.New(rand.NewPCG(1, 2))}, bridge.Options{Thing: "robot-0001", Endpoint: srv.URL, Session: frame.Options{Baud: baud}})
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Close()
	board := bridge.NewClient(boardPort, bridge.ClientOptions{Thing: "robot-0001", Session: frame.Options{Baud: baud}})
	defer board.Close()
	hc := board.HTTPClient()
	get := func() {
		resp, err := hc.Get(bridge.Endpoint + "/artifacts/bundles/blob")
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, blob) {
			b.Fatalf("download: %d bytes, %v", len(got), err)
		}
	}
	get() // the session opens, and the line's first frames go
	before := lab.Session().Stats()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		get()
	}
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	st := lab.Session().Stats()
	frames, bytesOnLine := float64(st.FramesSent-before.FramesSent), float64(st.BytesSent-before.BytesSent)
	b.ReportMetric(frames/elapsed, "frames/s")
	b.ReportMetric(bytesOnLine/elapsed, "line-B/s")
	b.ReportMetric(100*bytesOnLine/elapsed/(baud/10), "%line")
	b.ReportMetric(float64(size*b.N)/elapsed, "payload-B/s")
	b.ReportMetric(100*float64(size*b.N)/elapsed/(baud/10), "%line-as-payload")
	b.ReportMetric(float64(st.FramesResent-before.FramesResent)/float64(b.N), "resent/op")
	b.Logf("lab %+v", st)
}

// noisyPort changes each byte read or written with probability rate, as the rig's serial-noise fault does.
type noisyPort struct {
	serial.Port
	mu   sync.Mutex
	rate float64
	rnd  *rand.Rand
}

func (p *noisyPort) corrupt(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range b {
		if p.rate > 0 && p.rnd.Float64() < p.rate {
			b[i] ^= byte(1 + p.rnd.UintN(255))
		}
	}
}

func (p *noisyPort) Read(b []byte) (int, error) {
	n, err := p.Port.Read(b)
	p.corrupt(b[:n])
	return n, err
}

func (p *noisyPort) Write(b []byte) (int, error) {
	c := bytes.Clone(b)
	p.corrupt(c)
	return p.Port.Write(c)
}
