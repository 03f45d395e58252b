package frame

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

// noisyLine is one direction of a test line: bytes written come out of the reader, each byte replaced by a
// random one with probability rate.
type noisyLine struct {
	r *io.PipeReader
	w *io.PipeWriter

	mu      sync.Mutex
	rnd     *rand.Rand
	rate    float64
	cut     bool // bytes written are lost
	changed int
}

func newNoisyLine(seed uint64) *noisyLine {
	r, w := io.Pipe()
	return &noisyLine{r: r, w: w, rnd: rand.New(rand.NewPCG(seed, 1))}
}

func (l *noisyLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	if l.cut {
		l.mu.Unlock()
		return len(p), nil
	}
	q := bytes.Clone(p)
	for i := range q {
		if l.rate > 0 && l.rnd.Float64() < l.rate {
			q[i] = byte(l.rnd.UintN(256))
			l.changed++
		}
	}
	l.mu.Unlock()
	return l.w.Write(q)
}

// changes is how many bytes the line has changed so far; the sessions may still be writing.
func (l *noisyLine) changes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// end is one side of a duplex test line.
type end struct {
	in  *noisyLine // read from
	out *noisyLine // written to
}

func (e end) Read(p []byte) (int, error)  { return e.in.r.Read(p) }
func (e end) Write(p []byte) (int, error) { return e.out.Write(p) }
func (e end) Close() error {
	e.in.r.Close()
	e.out.w.Close()
	return nil
}

func duplex(seed uint64) (board, lab end, up, down *noisyLine) {
	up, down = newNoisyLine(seed), newNoisyLine(seed+1)
	return end{in: down, out: up}, end{in: up, out: down}, up, down
}

// collector gathers a session's messages.
type collector struct {
	mu   sync.Mutex
	msgs [][]byte
	ch   chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) add(m []byte) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) wait(t *testing.T, n int, d time.Duration) [][]byte {
	t.Helper()
	deadline := time.After(d)
	for {
		c.mu.Lock()
		if len(c.msgs) >= n {
			out := c.msgs
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("got %d messages, want %d", len(c.msgs), n)
			return nil
		}
	}
}

func messages(n int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([][]byte, n)
	for i := range out {
		m := make([]byte, 1+r.IntN(3000))
		for j := range m {
			m[j] = byte(r.UintN(256))
		}
		out[i] = m
	}
	return out
}

func TestSessionCarriesMessagesBothWaysThroughNoise(t *testing.T) {
	for _, rate := range []float64{0, 0.001, 0.01} {
		t.Run(fmt.Sprintf("noise=%v", rate), func(t *testing.T) {
			b, l, up, down := duplex(uint64(rate * 1e6))
			up.rate, down.rate = rate, rate
			toLab, toBoard := newCollector(), newCollector()
			var hello []byte
			opened := make(chan struct{})
			lab := NewSession(l, Options{Role: Lab, OnMessage: toLab.add, OnOpen: func(h []byte) {
				hello = h
				close(opened)
			}})
			defer lab.Close()
			board := NewSession(b, Options{Role: Board, Hello: []byte("robot-0001"), OnMessage: toBoard.add})
			defer board.Close()

			n := 40
			if rate >= 0.01 {
				n = 6 // 1 % of bytes changed: frames shrink to a few dozen bytes, so keep the volume small
			}
			up1, down1 := messages(n, 1), messages(n, 2)
			ctx := context.Background()
			go func() {
				for _, m := range up1 {
					board.Send(ctx, m)
				}
			}()
			go func() {
				for _, m := range down1 {
					lab.Send(ctx, m)
				}
			}()
			gotLab := toLab.wait(t, n, 60*time.Second)
			gotBoard := toBoard.wait(t, n, 60*time.Second)
			<-opened
			if string(hello) != "robot-0001" {
				t.Errorf("hello = %q", hello)
			}
			for i := range n {
				if !bytes.Equal(gotLab[i], up1[i]) || !bytes.Equal(gotBoard[i], down1[i]) {
					t.Fatalf("message %d arrived changed", i)
				}
			}
			bs, ls := board.Stats(), lab.Stats()
			t.Logf("board %+v", bs)
			t.Logf("lab %+v", ls)
			if rate > 0 {
				if up.changes() == 0 || bs.FramesResent+ls.FramesResent == 0 || ls.FramesCorrupt+bs.FramesCorrupt == 0 {
					t.Errorf("noise %v changed %d+%d bytes but %d frames were found corrupt and %d resent", rate,
						up.changes(), down.changes(), ls.FramesCorrupt+bs.FramesCorrupt, bs.FramesResent+ls.FramesResent)
				}
			} else if bs.FramesResent+ls.FramesResent != 0 && bs.FramesCorrupt+ls.FramesCorrupt != 0 {
				t.Errorf("a clean line resent %d frames and found %d corrupt", bs.FramesResent+ls.FramesResent,
					bs.FramesCorrupt+ls.FramesCorrupt)
			}
		})
	}
}

// scripted is the far end of a line driven by hand: the test writes frames to it and reads the frames the
// session under test writes.
type scripted struct {
	t      *testing.T
	w      io.Writer
	frames chan Frame
}

func newScripted(t *testing.T, in io.Reader, out io.Writer) *scripted {
	sc := &scripted{t: t, w: out, frames: make(chan Frame, 256)}
	sp := Splitter{Frame: func(l []byte) {
		if f, err := Decode(l); err == nil {
			sc.frames <- f
		}
	}}
	go io.Copy(&sp, in)
	return sc
}

func (sc *scripted) send(f Frame) {
	sc.t.Helper()
	if _, err := sc.w.Write(Append(nil, f)); err != nil {
		sc.t.Fatal(err)
	}
}

// expect returns the next frame of kind k, skipping others.
func (sc *scripted) expect(k Kind) Frame {
	sc.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-sc.frames:
			if f.Kind == k {
				return f
			}
		case <-deadline:
			sc.t.Fatalf("no %c frame", k)
		}
	}
}

// msg is a message as a stream segment: its length, then its bytes.
func msg(s string) []byte { return append([]byte{byte(len(s))}, s...) }

func TestLabStartsAfreshWhenTheBoardRestarts(t *testing.T) {
	b, l, _, _ := duplex(7)
	got := newCollector()
	var mu sync.Mutex
	var hellos []string
	resets := 0
	lab := NewSession(l, Options{Role: Lab, OnMessage: got.add, OnOpen: func(h []byte) {
		mu.Lock()
		hellos = append(hellos, string(h))
		mu.Unlock()
	}, OnReset: func() {
		mu.Lock()
		resets++
		mu.Unlock()
	}})
	defer lab.Close()
	board := newScripted(t, b, b)
	defer b.Close()

	board.send(Frame{Kind: Hello, Session: 0x1111, Payload: []byte("boot-1")})
	w := board.expect(Welcome)
	if w.Peer != 0x1111 {
		t.Fatalf("welcome names session %x", w.Peer)
	}
	labID := w.Session
	board.send(Frame{Kind: Data, Session: 0x1111, Peer: labID, Seq: 0, Payload: msg("one")})
	if a := board.expect(Data); a.Ack != 4 {
		t.Errorf("ack %d, want 4", a.Ack)
	}
	// The board reboots and says Hello as a new session: the lab drops the old one and welcomes the new.
	board.send(Frame{Kind: Hello, Session: 0x2222, Payload: []byte("boot-2")})
	if w := board.expect(Welcome); w.Peer != 0x2222 || w.Session != labID {
		t.Fatalf("welcome after the reboot: %+v", w)
	}
	// A late frame of the old session is not data of the new one: the lab tells it to start over.
	board.send(Frame{Kind: Data, Session: 0x1111, Peer: labID, Seq: 4, Payload: msg("stale")})
	if r := board.expect(Reset); r.Peer != 0x1111 {
		t.Errorf("reset names %x, want the old session", r.Peer)
	}
	board.send(Frame{Kind: Data, Session: 0x2222, Peer: labID, Seq: 0, Payload: msg("two")})
	msgs := got.wait(t, 2, 10*time.Second)
	if string(msgs[0]) != "one" || string(msgs[1]) != "two" || len(msgs) != 2 {
		t.Errorf("messages %q", msgs)
	}
	if st := lab.Stats(); st.Sessions != 2 || st.Resets != 1 || st.FramesStale != 1 {
		t.Errorf("stats %+v: want 2 sessions, 1 reset, 1 stale frame", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hellos) != 2 || hellos[1] != "boot-2" || resets != 1 {
		t.Errorf("hellos %q, resets %d", hellos, resets)
	}
}

func TestBoardSaysHelloAgainAfterAReset(t *testing.T) {
	b, l, _, _ := duplex(8)
	resets := make(chan struct{}, 1)
	board := NewSession(b, Options{Hello: []byte("robot"), OnReset: func() { resets <- struct{}{} }})
	defer board.Close()
	lab := newScripted(t, l, l)
	defer l.Close()
	h := lab.expect(Hello)
	if string(h.Payload) != "robot" {
		t.Fatalf("hello %q", h.Payload)
	}
	lab.send(Frame{Kind: Welcome, Session: 0x5555, Peer: h.Session})
	if err := board.Send(context.Background(), []byte("req")); err != nil {
		t.Fatal(err)
	}
	if d := lab.expect(Data); string(d.Payload) != string(msg("req")) {
		t.Fatalf("data %q", d.Payload)
	}
	// The lab side restarted and does not know the session: the board gives up what was in flight and opens a
	// new session.
	lab.send(Frame{Kind: Reset, Session: 0x6666, Peer: h.Session})
	select {
	case <-resets:
	case <-time.After(10 * time.Second):
		t.Fatal("no reset")
	}
	h2 := lab.expect(Hello)
	if h2.Session == h.Session {
		t.Error("the new session has the old id")
	}
	// A reset that names some other session is noise and changes nothing.
	lab.send(Frame{Kind: Welcome, Session: 0x6666, Peer: h2.Session})
	lab.send(Frame{Kind: Reset, Session: 0x6666, Peer: h.Session})
	if err := board.Send(context.Background(), []byte("again")); err != nil {
		t.Fatal(err)
	}
	if d := lab.expect(Data); d.Seq != 0 || string(d.Payload) != string(msg("again")) {
		t.Fatalf("first data of the new session: %+v", d)
	}
}

// TestSegmentSize: the segment that carries the most payload per line byte, for the loss measured.
func TestSegmentSize(t *testing.T) {
	// lineLen of the frames the loss was measured on; ε the per-byte rate it implies.
	perByte := func(eps float64, lineLen float64) float64 { return 1 - math.Pow(1-eps, lineLen) }
	for _, c := range []struct {
		loss, lineLen float64
		want          int
	}{
		{0, 0, 1024},                      // nothing measured: the most
		{0, 1300, 1024},                   // a clean line
		{perByte(1e-5, 1300), 1300, 1024}, // one byte in 100 000: still the most
		{perByte(0.002, 130), 130, 83},    // 0.2 %
		{perByte(0.01, 70), 70, 32},       // 1 %
		{perByte(0.05, 40), 40, 16},       // 5 %: the least
		{1, 60, 16},                       // everything lost
	} {
		if got := segmentSize(c.loss, c.lineLen, 16, 1024); got != c.want {
			t.Errorf("segmentSize(%.4f, %v) = %d, want %d", c.loss, c.lineLen, got, c.want)
		}
	}
}

// openScripted opens a board session with a scripted lab on a fake clock. It returns them, the two session
// ids, and the messages the board receives.
func openScripted(t *testing.T, clk *clocktest.Fake) (board *Session, lab *scripted, mine, peer uint16, msgs *collector) {
	t.Helper()
	b, l, _, _ := duplex(9)
	opened := make(chan struct{})
	msgs = newCollector()
	board = NewSession(b, Options{Hello: []byte("robot"), Clock: clk, OnMessage: msgs.add, OnOpen: func([]byte) { close(opened) }})
	t.Cleanup(func() { board.Close() })
	lab = newScripted(t, l, l)
	t.Cleanup(func() { l.Close() })
	h := lab.expect(Hello)
	lab.send(Frame{Kind: Welcome, Session: 0x5555, Peer: h.Session})
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not open")
	}
	return board, lab, h.Session, 0x5555, msgs
}

// TestRoundTripsAreNotHeldUpBehindALoss: a segment the peer holds out of order times its round trip when the
// peer's Sack says it has it, not when the lost one before it is resent and both are acknowledged.
func TestRoundTripsAreNotHeldUpBehindALoss(t *testing.T) {
	clk := clocktest.New(time.Time{})
	board, lab, mine, peer, msgs := openScripted(t, clk)
	ctx := context.Background()
	board.Send(ctx, []byte("a"))
	a := lab.expect(Data)
	board.Send(ctx, []byte("b"))
	b := lab.expect(Data)
	// a was lost; the lab holds b, and says so at once.
	lab.send(Frame{Kind: Sack, Session: peer, Peer: mine, Ack: 0,
		Payload: binary.AppendUvarint(binary.AppendUvarint(nil, uint64(b.Seq-a.Seq)), uint64(len(b.Payload)))})
	if r := lab.expect(Data); r.Seq != a.Seq || !bytes.Equal(r.Payload, a.Payload) {
		t.Fatalf("resent %+v, want a again at once", r)
	}
	clk.Advance(2 * time.Second)
	// The acknowledgement of both comes with a message, which the board takes once it has taken the acknowledgement.
	lab.send(Frame{Kind: Data, Session: peer, Peer: mine, Ack: b.Seq + uint32(len(b.Payload)), Payload: msg("done")})
	msgs.wait(t, 1, 10*time.Second)
	if st := board.Stats(); st.RTO > 100*time.Millisecond {
		t.Errorf("timeout %v after a round trip of nothing: b's wait behind a was taken for its round trip", st.RTO)
	}
}

// TestTimeoutDoublesOnlyWhileThePeerIsSilent: a lost frame whose peer is heard (it sent a damaged frame, which
// it acknowledges at once) is resent at the measured timeout; with nothing heard the timeout doubles.
func TestTimeoutDoublesOnlyWhileThePeerIsSilent(t *testing.T) {
	clk := clocktest.New(time.Time{})
	board, lab, _, _, _ := openScripted(t, clk)
	board.Send(context.Background(), []byte("request"))
	first := lab.expect(Data)
	<-clk.BlockUntil(1)
	// The lab's answer arrives damaged: the board says at once what it has, and keeps its timeout.
	lab.w.Write([]byte("~FLD!!!!!garbage\n"))
	if ack := lab.expect(Data); len(ack.Payload) != 0 || ack.Ack != 0 {
		t.Fatalf("after a damaged frame the board sent %+v, want an acknowledgement alone", ack)
	}
	<-clk.BlockUntil(1)
	rto := board.Stats().RTO
	clk.Advance(rto)
	if r := lab.expect(Data); r.Seq != first.Seq || len(r.Payload) == 0 {
		t.Fatalf("resend %+v", r)
	}
	<-clk.BlockUntil(1)
	if st := board.Stats(); st.Timeouts != 1 || st.RTO != rto {
		t.Fatalf("after a timeout with the peer heard: %d timeouts, timeout %v, want 1 and %v", st.Timeouts, st.RTO, rto)
	}
	// Nothing from the lab now: each timeout doubles the next, up to MaxRTO.
	for i, want := range []time.Duration{2 * rto, 3 * time.Second, 3 * time.Second} {
		clk.Advance(board.Stats().RTO)
		lab.expect(Data)
		<-clk.BlockUntil(1)
		if got := board.Stats().RTO; got != want {
			t.Fatalf("silent timeout %d: timeout %v, want %v", i+1, got, want)
		}
	}
}
