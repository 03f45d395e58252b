package frame

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// Role says which side of the line a Session is.
type Role int

const (
	// Board is the side that opens sessions: it says Hello until it is welcomed, and again after a reset.
	Board Role = iota
	// Lab is the side that answers: it welcomes each new board session and tells a board whose session it does
	// not know to start over.
	Lab
)

// Options configure a Session. Zero fields take the defaults listed; NewSession resolves them.
type Options struct {
	// Role is the side of the line (default Board).
	Role Role
	// Hello is the payload of the board's Hello frames (its thing name, say); the lab side is given it with
	// each new session.
	Hello []byte
	// OnMessage receives every message from the peer, in order, on the session's reader goroutine. It may block
	// for a while (the line waits) but must not call Close.
	OnMessage func(msg []byte)
	// OnConsole receives the console text found between frames, in order, in pieces.
	OnConsole func(text []byte)
	// OnOpen is told when a session with a peer opens: on the lab side with the board's hello payload. Messages
	// sent or received before it belong to no session.
	OnOpen func(hello []byte)
	// OnReset is told when the session ends because the peer started a new one or does not know this one: what
	// was in flight either way is lost, and the callers waiting on it should give up.
	OnReset func()
	// Clock times retransmissions. The line is real, so the default is the real clock whatever the run's.
	Clock clock.Clock
	// Seed picks session identifiers (with the clock's time, so a rebooted board picks a new one).
	Seed uint64
	// Baud is the line's speed in bits a second (8N1: ten bits a byte), 0 when unknown. With it the session paces
	// its writes to the line — it writes the next frame only when the line is about to have sent the last, so
	// the queue is its own and not the port's: an acknowledgement or a resend goes out next instead of behind
	// kilobytes buffered in the port — and it times resends from when a frame has left the line.
	Baud int
	// MaxSegment and MinSegment bound the payload bytes of one data frame (defaults 1024 and 16). Between them
	// the sender picks the size that carries the most payload for the loss it measures (see segmentSize).
	MaxSegment, MinSegment int
	// Window bounds the bytes sent and not yet acknowledged (default 8 KiB); Buffer the bytes Send queues
	// before it blocks (default 64 KiB).
	Window, Buffer int
	// MinRTO and MaxRTO bound the retransmission timeout (defaults 20ms and 3s); see Session for how it is set.
	MinRTO, MaxRTO time.Duration
}

// Stats are a session's counts since it was made.
type Stats struct {
	// FramesSent counts every frame written, acknowledgements and resends included; FramesResent the data
	// frames written again (Timeouts of them because no acknowledgement came in time, the rest because a later
	// frame got through and they did not); BytesSent the bytes written to the line.
	FramesSent, FramesResent, Timeouts, BytesSent uint64
	// PayloadSent counts stream bytes acknowledged by the peer; PayloadReceived stream bytes delivered here.
	PayloadSent, PayloadReceived uint64
	// FramesReceived counts frames decoded; FramesCorrupt lines that looked like frames and were not (a bad
	// checksum, cut short, merged); FramesStale frames of a session that is not this one.
	FramesReceived, FramesCorrupt, FramesStale uint64
	// MessagesSent and MessagesReceived count whole messages.
	MessagesSent, MessagesReceived uint64
	// Sessions counts the sessions opened; Resets those that ended on a reset.
	Sessions, Resets uint64
	// Segment is the payload size of a data frame now, and Loss the share of data frames lost it follows (a
	// moving average); RTO the retransmission timeout now.
	Segment int
	Loss    float64
	RTO     time.Duration
}

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("frame session closed")

// ErrReset is returned by Send when the session ended while the message waited for room.
var ErrReset = errors.New("frame session reset")

// maxMessage bounds one message.
const maxMessage = 1 << 20

// Session is one side of a framed link over a console line: messages sent on one side arrive on the other
// whole, once and in order, whatever the line loses or corrupts, as long as the session lasts. A session ends
// when the board starts a new one (it rebooted) or the lab no longer knows it (the lab side restarted): both
// sides are told through OnReset and start afresh from empty streams.
//
// Sequence numbers count payload bytes (as TCP's do); the receiver acknowledges cumulatively, keeps segments
// that arrive out of order and lists them in a Sack frame. A serial line is not a network, and the rest follows
// from that:
//
//   - The line keeps order: a segment sent before one the peer holds, and not itself held, was lost. It is sent
//     again at once, without waiting for a timeout.
//   - The line has a known speed (Options.Baud): the writer paces itself to it, so a frame's time on the line is
//     known, and round trips are measured from when the frame has left the line, not from when it was queued.
//   - Round trips are sampled only from segments sent once (Karn), and when the peer first says it holds them —
//     by a Sack or an acknowledgement — so a segment held up behind a lost one does not count the resend's wait
//     as its round trip. The timeout is the measured one (RFC 6298: srtt + 4·rttvar), never less than MinRTO
//     plus the time of one longest frame on the line (the peer's acknowledgement can be queued behind a frame
//     of its own that it has begun); before any sample it is 1s, or on a paced line 250ms plus two longest frames.
//   - Losses are noise, not congestion: the timeout doubles only while nothing at all — no frame, not even a
//     damaged one — has come from the peer since the last timeout (the board is off, the cable out). A receiver
//     that finds a damaged frame acknowledges at once (at most once a round trip), so a sender of a frame that
//     was lost hears the peer and resends at the measured timeout.
//   - The segment size follows the measured loss: with a fraction f of frames of mean length L lost, each byte
//     is changed with rate λ = -ln(1-f)/L, and the size that carries the most payload per byte of line is the
//     root of a quadratic (see segmentSize) — about 32 bytes at 1 % of bytes changed, the most at none.
//
// A Session owns a reader and a writer goroutine until Close.
type Session struct {
	rw   io.ReadWriter
	opts Options
	clk  clock.Clock
	rnd  *rand.Rand

	mu     sync.Mutex
	wake   chan struct{} // the writer has something to do
	room   chan struct{} // closed when Send may find room; replaced after
	closed bool
	stats  Stats

	// session
	open     bool
	mine     uint16
	peer     uint16
	gen      uint64 // bumped at every reset, so Send knows its message was lost
	helloAt  time.Time
	helloGap time.Duration
	welcome  bool // a Welcome is due
	resetTo  uint16
	resetDue bool

	// sending: buf holds the stream from una on; sent is how much of it was sent at least once.
	buf     []byte
	una     uint32
	sent    int
	segs    []segment // sent and unacknowledged, in stream order
	xmit    uint64    // counts transmissions, to order them
	seg     int
	srtt    time.Duration
	rttvar  time.Duration
	backoff uint    // timeouts in a row with nothing heard from the peer: the timeout doubles with each
	heard   bool    // a frame (good or damaged) came from the peer since the last timeout
	loss    float64 // moving average of the data frames lost (1) or delivered (0)
	lineLen float64 // moving average of the data frames' line lengths
	ackDue  bool
	nakAt   time.Time // when a damaged frame last made this side acknowledge
	// pacing
	byteTime time.Duration // one byte's time on the line; 0: unpaced
	lineFree time.Time     // when the line will have sent everything written
	// receiving
	recvNext uint32
	ooo      map[uint32][]byte // out-of-order segments by offset
	inbox    []byte            // received stream bytes not yet a whole message

	lineErr error
	down    chan struct{}

	done   chan struct{}
	wg     sync.WaitGroup
	splitr Splitter
}

// segment is a piece of the stream sent and not yet acknowledged cumulatively.
type segment struct {
	seq  uint32
	n    int
	left time.Time // when its last transmission has left the line
	line int       // the bytes of its last transmission's frame
	xmit uint64    // when it was last sent, in transmission order
	// resent: sent more than once, so its acknowledgement times no round trip (Karn); sacked: the peer has it,
	// out of order; lost: known lost, to be sent again; counted: its last transmission's fate went into loss.
	resent, sacked, lost, counted bool
}

// NewSession starts a session over rw: the reader goroutine reads rw until it fails or Close, the writer writes
// frames to it.
func NewSession(rw io.ReadWriter, opts Options) *Session {
	if opts.MaxSegment <= 0 || opts.MaxSegment > MaxPayload {
		opts.MaxSegment = 1024
	}
	if opts.MinSegment <= 0 {
		opts.MinSegment = 16
	}
	opts.MinSegment = min(opts.MinSegment, opts.MaxSegment)
	if opts.Window <= 0 {
		opts.Window = 8 << 10
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64 << 10
	}
	opts.Buffer = max(opts.Buffer, opts.Window)
	if opts.MinRTO <= 0 {
		opts.MinRTO = 20 * time.Millisecond
	}
	if opts.MaxRTO <= 0 {
		opts.MaxRTO = 3 * time.Second
	}
	clk := clock.Or(opts.Clock)
	s := &Session{rw: rw, opts: opts, clk: clk, wake: make(chan struct{}, 1), room: make(chan struct{}),
		done: make(chan struct{}), down: make(chan struct{}), ooo: map[uint32][]byte{}, seg: opts.MaxSegment,
		rnd: rand.New(rand.NewPCG(opts.Seed, uint64(clk.Now().UnixNano())))}
	if opts.Baud > 0 {
		s.byteTime = 10 * time.Second / time.Duration(opts.Baud)
	}
	s.mine = s.newID(0)
	s.helloGap = 100 * time.Millisecond
	s.splitr = Splitter{Console: opts.OnConsole, Frame: s.frame, Damaged: func() {
		s.mu.Lock()
		s.damaged()
		s.mu.Unlock()
	}}
	s.wg.Add(2)
	go s.reader()
	go s.writer()
	return s
}

// newID returns a session id that is neither 0 nor not.
func (s *Session) newID(not uint16) uint16 {
	for {
		id := uint16(s.rnd.Uint32())
		if id != 0 && id != not {
			return id
		}
	}
}

// Stats returns the counts so far.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Segment, st.Loss, st.RTO = s.seg, s.loss, s.rto()
	return st
}

// Down is closed when reading the line failed for good (the port was closed or hung up); Err says why.
func (s *Session) Down() <-chan struct{} { return s.down }

// Err returns the read error that took the line down, or nil.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lineErr
}

// Open reports whether a session with the peer is open.
func (s *Session) Open() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Close stops the goroutines; it closes rw when rw is an io.Closer (a blocked read returns only then).
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.signalRoom()
	s.mu.Unlock()
	var err error
	if c, ok := s.rw.(io.Closer); ok {
		err = c.Close()
	}
	s.wg.Wait()
	return err
}

// Send queues msg for the peer. It blocks while the send buffer is full, until ctx ends, the session resets
// (ErrReset: the message is lost with everything else in flight) or Close (ErrClosed). Messages queued before a
// session is open go out once it is.
func (s *Session) Send(ctx context.Context, msg []byte) error {
	if len(msg) > maxMessage {
		return fmt.Errorf("send: message of %d bytes exceeds %d", len(msg), maxMessage)
	}
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(len(msg)))
	s.mu.Lock()
	gen := s.gen
	for !s.closed && s.gen == gen && len(s.buf)+h+len(msg) > s.opts.Buffer && len(s.buf) > 0 {
		room := s.room
		s.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.gen != gen:
		return ErrReset
	}
	s.buf = append(s.buf, hdr[:h]...)
	s.buf = append(s.buf, msg...)
	s.stats.MessagesSent++
	s.kick()
	return nil
}

// kick wakes the writer. The caller holds mu.
func (s *Session) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// signalRoom wakes senders waiting for room. The caller holds mu.
func (s *Session) signalRoom() {
	close(s.room)
	s.room = make(chan struct{})
}

// reader reads the line until it fails.
func (s *Session) reader() {
	defer s.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := s.rw.Read(buf)
		if n > 0 {
			s.splitr.Write(buf[:n])
		}
		if err != nil {
			// A port that fails a read (closed, hung up, a socket reset) gives nothing more: the line is down.
			s.mu.Lock()
			if s.lineErr == nil {
				s.lineErr = err
				close(s.down)
			}
			s.mu.Unlock()
			return
		}
	}
}

// frame handles one frame line.
func (s *Session) frame(line []byte) {
	f, err := Decode(line)
	s.mu.Lock()
	if err != nil {
		s.damaged()
		s.mu.Unlock()
		return
	}
	s.stats.FramesReceived++
	s.hear()
	var deliver [][]byte
	var opened, reset bool
	var hello []byte
	switch f.Kind {
	case Hello:
		if s.opts.Role != Lab {
			break
		}
		if !s.open || f.Session != s.peer {
			if s.open { // the board started over: the old session's streams are gone
				reset = true
				s.restart()
			}
			// Messages queued while no session was open go to this one.
			s.open, s.peer = true, f.Session
			s.stats.Sessions++
			opened, hello = true, f.Payload
		}
		s.welcome = true
	case Welcome:
		if s.opts.Role != Board || f.Peer != s.mine || s.open {
			break
		}
		s.open, s.peer = true, f.Session
		s.stats.Sessions++
		opened, hello = true, f.Payload
	case Reset:
		if f.Peer != s.mine || !s.open || f.Session != s.peer && s.opts.Role == Lab {
			s.stats.FramesStale++
			break
		}
		reset = true
		s.restart()
		s.mine = s.newID(s.mine)
	case Data, Sack:
		if !s.open || f.Session != s.peer || f.Peer != s.mine {
			s.stats.FramesStale++
			if s.opts.Role == Lab {
				s.resetTo, s.resetDue = f.Session, true // the board must start over: this side lost its session
			}
			break
		}
		s.acked(f.Ack)
		if f.Kind == Sack {
			s.sacked(f.Ack, f.Payload)
		} else {
			deliver = s.received(f.Seq, f.Payload)
		}
	}
	if reset {
		s.stats.Resets++
	}
	s.kick()
	s.mu.Unlock()
	if reset && s.opts.OnReset != nil {
		s.opts.OnReset()
	}
	if opened && s.opts.OnOpen != nil {
		s.opts.OnOpen(hello)
	}
	for _, m := range deliver {
		if s.opts.OnMessage != nil {
			s.opts.OnMessage(m)
		}
	}
}

// hear notes that something came from the peer: the line is alive, and losses on it are noise. The caller
// holds mu.
func (s *Session) hear() {
	s.heard = true
	s.backoff = 0
}

// damaged counts a frame that arrived damaged and, once a round trip at most, acknowledges at once: the peer
// whose frame it was then hears this side and resends without backing off. The caller holds mu.
func (s *Session) damaged() {
	s.stats.FramesCorrupt++
	s.hear()
	if !s.open {
		return
	}
	if now := s.clk.Now(); s.nakAt.IsZero() || now.Sub(s.nakAt) >= max(s.srtt, s.opts.MinRTO) {
		s.nakAt, s.ackDue = now, true
		s.kick()
	}
}

// restart forgets the session's streams: what was queued, in flight or half received. The caller holds mu.
func (s *Session) restart() {
	s.open = false
	s.gen++
	s.buf, s.sent, s.segs, s.una = nil, 0, nil, 0
	s.recvNext, s.inbox = 0, nil
	clear(s.ooo)
	s.ackDue, s.welcome = false, false
	s.seg, s.srtt, s.rttvar, s.backoff, s.loss, s.lineLen = s.opts.MaxSegment, 0, 0, 0, 0, 0
	s.nakAt = time.Time{}
	s.helloAt, s.helloGap = time.Time{}, 100*time.Millisecond
	s.signalRoom()
}

// before reports whether stream offset a comes before b (serial number arithmetic: offsets wrap).
func before(a, b uint32) bool { return int32(a-b) < 0 }

// acked handles the peer's cumulative acknowledgement. The caller holds mu.
func (s *Session) acked(ack uint32) {
	sentEnd := s.una + uint32(s.sent)
	if !before(s.una, ack) || before(sentEnd, ack) {
		return
	}
	n := int(ack - s.una)
	now := s.clk.Now()
	for len(s.segs) > 0 && !before(ack, s.segs[0].seq+uint32(s.segs[0].n)) {
		s.delivered(&s.segs[0], now)
		s.segs = s.segs[1:]
	}
	if len(s.segs) > 0 && before(s.segs[0].seq, ack) { // acknowledged in part
		cut := int(ack - s.segs[0].seq)
		s.segs[0].seq, s.segs[0].n = ack, s.segs[0].n-cut
	}
	s.buf = s.buf[n:]
	s.sent -= n
	s.una = ack
	s.stats.PayloadSent += uint64(n)
	s.signalRoom()
}

// delivered notes that the peer holds sg, first known now: a round trip when it was sent once, and a frame
// that got through. The caller holds mu.
func (s *Session) delivered(sg *segment, now time.Time) {
	if sg.sacked {
		return // known since its Sack
	}
	if !sg.resent {
		s.sample(now.Sub(sg.left))
	}
	s.fate(sg, false)
}

// fate folds the fate of sg's last transmission into the measured loss, once, and sizes segments by it. The
// caller holds mu.
func (s *Session) fate(sg *segment, lost bool) {
	if sg.counted {
		return
	}
	sg.counted = true
	const weight = 1.0 / 8
	v := 0.0
	if lost {
		v = 1
	}
	if s.lineLen == 0 {
		s.lineLen = float64(sg.line)
	}
	s.loss += weight * (v - s.loss)
	s.lineLen += weight * (float64(sg.line) - s.lineLen)
	s.seg = segmentSize(s.loss, s.lineLen, s.opts.MinSegment, s.opts.MaxSegment)
}

// segmentSize is the payload size that carries the most payload per byte of line when a fraction loss of
// frames of mean line length lineLen is lost, each byte being changed independently: at a rate λ = -ln(1-loss)
// / lineLen a frame of line length a + b·s (a the bytes it takes besides its payload, b the line bytes a
// payload byte takes) gets through with probability e^(-λ(a+b·s)), and s·e^(-λ(a+b·s)) / (a+b·s) is greatest
// where b²λs² + abλs - a = 0, at s = (√(a² + 4a/λ) - a) / 2b. It is clamped to [lo, hi].
func segmentSize(loss, lineLen float64, lo, hi int) int {
	if loss <= 0 || lineLen <= 0 {
		return hi
	}
	loss = min(loss, 0.999)
	lambda := -math.Log1p(-loss) / lineLen
	const b = 5.0 / 4 // ascii85
	a := float64(lineOverhead) + b*bodyOverhead
	s := (math.Sqrt(a*a+4*a/lambda) - a) / (2 * b)
	return int(min(max(s, float64(lo)), float64(hi)))
}

// sacked marks the segments the peer holds out of order, as its Sack payload lists them, and the ones that must
// have been lost: the line keeps order, so a segment sent before one that arrived, and not itself arrived, was
// lost. Only segments below the end of the last block listed are judged: a Sack lists at most 32 blocks, and
// what lies beyond them may have arrived. The caller holds mu.
func (s *Session) sacked(ack uint32, blocks []byte) {
	var newest uint64
	covered := ack
	for len(blocks) > 0 {
		off, n1 := binary.Uvarint(blocks)
		if n1 <= 0 {
			return
		}
		ln, n2 := binary.Uvarint(blocks[n1:])
		if n2 <= 0 {
			return
		}
		blocks = blocks[n1+n2:]
		lo := ack + uint32(off)
		hi := lo + uint32(ln)
		if before(covered, hi) {
			covered = hi
		}
		now := s.clk.Now()
		for i := range s.segs {
			sg := &s.segs[i]
			if !before(sg.seq, lo) && !before(hi, sg.seq+uint32(sg.n)) && !sg.sacked {
				s.delivered(sg, now)
				sg.sacked, sg.lost = true, false
			}
			if sg.sacked && sg.xmit > newest {
				newest = sg.xmit
			}
		}
	}
	for i := range s.segs {
		if sg := &s.segs[i]; !sg.sacked && !sg.lost && sg.xmit < newest && before(sg.seq, covered) {
			sg.lost = true
			s.fate(sg, true)
		}
	}
}

// sackBlocks lists the out-of-order ranges held, relative to recvNext, for a Sack frame. The caller holds mu.
func (s *Session) sackBlocks() []byte {
	if len(s.ooo) == 0 {
		return nil
	}
	offs := make([]uint32, 0, len(s.ooo))
	for off := range s.ooo {
		offs = append(offs, off-s.recvNext)
	}
	slices.Sort(offs)
	var out []byte
	lo, hi := offs[0], offs[0]+uint32(len(s.ooo[offs[0]+s.recvNext]))
	flush := func() {
		out = binary.AppendUvarint(out, uint64(lo))
		out = binary.AppendUvarint(out, uint64(hi-lo))
	}
	blocks := 0
	for _, o := range offs[1:] {
		end := o + uint32(len(s.ooo[o+s.recvNext]))
		if o <= hi {
			hi = max(hi, end)
			continue
		}
		flush()
		if blocks++; blocks == 32 {
			return out
		}
		lo, hi = o, end
	}
	flush()
	return out
}

// rto is the retransmission timeout: the measured round trip (RFC 6298) with its floor and backoff (see
// Session). The caller holds mu.
func (s *Session) rto() time.Duration {
	longest := time.Duration(EncodedLen(s.opts.MaxSegment)) * s.byteTime
	var d time.Duration
	switch {
	case s.srtt != 0:
		d = max(s.srtt+4*s.rttvar, s.opts.MinRTO+longest)
	case s.byteTime > 0:
		d = 250*time.Millisecond + 2*longest
	default:
		d = time.Second
	}
	return min(d<<min(s.backoff, 8), s.opts.MaxRTO)
}

// sample folds one round trip into the timeout (RFC 6298). The caller holds mu.
func (s *Session) sample(rtt time.Duration) {
	rtt = max(rtt, time.Microsecond) // the line ran ahead of the pacing's reckoning
	if s.srtt == 0 {
		s.srtt, s.rttvar = rtt, rtt/2
	} else {
		d := s.srtt - rtt
		if d < 0 {
			d = -d
		}
		s.rttvar = (3*s.rttvar + d) / 4
		s.srtt = (7*s.srtt + rtt) / 8
	}
}

// received takes a data segment and returns the messages it completes. The caller holds mu.
func (s *Session) received(seq uint32, p []byte) [][]byte {
	if len(p) == 0 {
		return nil
	}
	s.ackDue = true
	switch {
	case before(s.recvNext, seq):
		if _, dup := s.ooo[seq]; !dup && len(s.ooo) < 1024 && int(seq-s.recvNext) < 4*s.opts.Buffer {
			s.ooo[seq] = append([]byte(nil), p...)
		}
	default:
		// From the next byte expected or before: whatever is new in it is taken, the rest was had already (an
		// acknowledgement was lost, or a resend raced the original).
		if end := seq + uint32(len(p)); before(s.recvNext, end) {
			s.take(p[s.recvNext-seq:])
			s.drain()
		}
	}
	return s.messages()
}

// drain takes the out-of-order segments that the stream has now reached. The caller holds mu.
func (s *Session) drain() {
	for progressed := true; progressed; {
		progressed = false
		for off, p := range s.ooo {
			if before(s.recvNext, off) {
				continue
			}
			delete(s.ooo, off)
			if end := off + uint32(len(p)); before(s.recvNext, end) {
				s.take(p[s.recvNext-off:])
				progressed = true
			}
		}
	}
}

// take appends in-order stream bytes. The caller holds mu.
func (s *Session) take(p []byte) {
	s.inbox = append(s.inbox, p...)
	s.recvNext += uint32(len(p))
	s.stats.PayloadReceived += uint64(len(p))
}

// messages cuts the whole messages off the inbox. The caller holds mu.
func (s *Session) messages() [][]byte {
	var out [][]byte
	for {
		n, h := binary.Uvarint(s.inbox)
		if h <= 0 || uint64(len(s.inbox)-h) < n {
			if h < 0 || n > maxMessage {
				s.inbox = nil // cannot happen with a peer of this package; drop rather than grow
			}
			break
		}
		out = append(out, append([]byte(nil), s.inbox[h:h+int(n)]...))
		s.inbox = s.inbox[h+int(n):]
		s.stats.MessagesReceived++
	}
	if len(s.inbox) == 0 {
		s.inbox = nil
	}
	return out
}

// paceLead is how much of the line's time a paced writer keeps written ahead: enough that a late wake-up on a
// loaded machine does not leave the line idle, little enough that a frame chosen next is not held up behind it.
const paceLead = 10 * time.Millisecond

// writer writes frames as the state asks for them, paced to the line when its speed is known.
func (s *Session) writer() {
	defer s.wg.Done()
	var out []byte
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		out = out[:0]
		var wait time.Duration
		if busy := s.lineFree.Sub(s.clk.Now()); s.byteTime > 0 && busy > paceLead {
			wait = busy - paceLead // the line is busy with what was written: choose the next frame later
		} else {
			out, wait = s.next(out)
		}
		s.mu.Unlock()
		if len(out) > 0 {
			if _, err := s.rw.Write(out); err != nil {
				// A port that fails a write (unplugged, closed) is tried again shortly; frames are resent.
				if !clock.Sleep(s.clk, 10*time.Millisecond, s.done) {
					return
				}
			}
			continue
		}
		var timeout <-chan time.Time
		var t clock.Timer
		if wait > 0 {
			t = s.clk.NewTimer(wait)
			timeout = t.C()
		}
		select {
		case <-s.wake:
		case <-timeout:
		case <-s.done:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// next appends the next frame to write to out; when there is none it returns how long to wait before there may
// be one (0: until woken). The caller holds mu.
func (s *Session) next(out []byte) ([]byte, time.Duration) {
	now := s.clk.Now()
	// emit appends f and returns when it will have left the line.
	emit := func(f Frame) time.Time {
		n := len(out)
		out = Append(out, f)
		s.stats.FramesSent++
		s.stats.BytesSent += uint64(len(out) - n)
		s.lineFree = now.Add(time.Duration(len(out)-n) * s.byteTime)
		return s.lineFree
	}
	if s.byteTime > 0 && s.lineFree.After(now) {
		// Written while the line was still busy: the frame leaves after what is ahead of it.
		now = s.lineFree
	}
	if s.resetDue {
		s.resetDue = false
		emit(Frame{Kind: Reset, Session: s.mine, Peer: s.resetTo})
		return out, 0
	}
	if s.welcome {
		s.welcome = false
		emit(Frame{Kind: Welcome, Session: s.mine, Peer: s.peer})
		return out, 0
	}
	if !s.open {
		if s.opts.Role != Board {
			return out, 0
		}
		if wait := s.helloAt.Sub(now); wait > 0 {
			return out, wait
		}
		s.helloAt = now.Add(s.helloGap)
		s.helloGap = min(2*s.helloGap, 2*time.Second)
		emit(Frame{Kind: Hello, Session: s.mine, Payload: s.opts.Hello})
		return out, 0
	}
	data := func(sg *segment, p []byte) {
		s.ackDue = false
		n := len(out)
		sg.left = emit(Frame{Kind: Data, Session: s.mine, Peer: s.peer, Seq: sg.seq, Ack: s.recvNext, Payload: p})
		sg.line, sg.counted = len(out)-n, false
		s.xmit++
		sg.xmit = s.xmit
	}
	// The peer holds segments out of order: say which, so the sender resends only what was lost.
	if s.ackDue && len(s.ooo) > 0 {
		s.ackDue = false
		emit(Frame{Kind: Sack, Session: s.mine, Peer: s.peer, Ack: s.recvNext, Payload: s.sackBlocks()})
		return out, 0
	}
	// A resend: the first segment known lost, else the oldest one whose time is up.
	if i, timedOut := s.resend(now); i >= 0 {
		sg := &s.segs[i]
		if timedOut {
			s.stats.Timeouts++
			s.fate(sg, true)
			if !s.heard {
				s.backoff++ // nothing from the peer since the last timeout: it may be gone
			}
			s.heard = false
		}
		if sg.n > s.seg { // resend in the smaller size: split the segment
			rest := *sg
			rest.seq, rest.n = sg.seq+uint32(s.seg), sg.n-s.seg
			sg.n = s.seg
			s.segs = slices.Insert(s.segs, i+1, rest)
			sg = &s.segs[i]
		}
		sg.resent, sg.lost = true, false
		s.stats.FramesResent++
		off := int(sg.seq - s.una)
		data(sg, s.buf[off:off+sg.n])
		return out, 0
	}
	// New data, within the window.
	if unsent := len(s.buf) - s.sent; unsent > 0 && s.sent < s.opts.Window {
		n := min(unsent, s.seg, s.opts.Window-s.sent)
		s.segs = append(s.segs, segment{seq: s.una + uint32(s.sent), n: n})
		p := s.buf[s.sent : s.sent+n]
		s.sent += n
		data(&s.segs[len(s.segs)-1], p)
		return out, 0
	}
	if s.ackDue {
		s.ackDue = false
		emit(Frame{Kind: Data, Session: s.mine, Peer: s.peer, Seq: s.una + uint32(s.sent), Ack: s.recvNext})
		return out, 0
	}
	if due, ok := s.nextTimeout(); ok {
		return out, max(due.Sub(s.clk.Now()), time.Millisecond)
	}
	return out, 0
}

// resend picks the segment to send again: the first one known lost, else the oldest unacknowledged one whose
// timeout has passed (its frame or the acknowledgement was lost at the tail, where no later frame reveals it).
// It returns -1 when none is due. The caller holds mu.
func (s *Session) resend(now time.Time) (i int, timedOut bool) {
	oldest := -1
	for i := range s.segs {
		sg := &s.segs[i]
		if sg.sacked {
			continue
		}
		if sg.lost {
			return i, false
		}
		if oldest < 0 || sg.left.Before(s.segs[oldest].left) {
			oldest = i
		}
	}
	if oldest >= 0 && !now.Before(s.segs[oldest].left.Add(s.rto())) {
		return oldest, true
	}
	return -1, false
}

// nextTimeout is when the oldest unacknowledged segment times out. The caller holds mu.
func (s *Session) nextTimeout() (time.Time, bool) {
	var due time.Time
	found := false
	rto := s.rto()
	for _, sg := range s.segs {
		if sg.sacked {
			continue
		}
		if t := sg.left.Add(rto); !found || t.Before(due) {
			due, found = t, true
		}
	}
	return due, found
}
