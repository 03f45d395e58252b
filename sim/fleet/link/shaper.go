// Package link shapes the link between one device and the service as a fleet.Link says: cut it, slow it, make it
// lossy, throttle it. A Shaper holds the link's state and decides the fate of each request; the in-memory
// transport consults it directly, a Proxy — a loopback reverse proxy between an agent and the service, for
// agents that speak HTTP — applies it to real connections, and Shaper.Transport applies it to the requests of an
// http.Client, such as one whose requests InProcess serves without a socket. Both backends of package fleet use
// the same code, so a link fault means the same thing whichever way the agent is hosted.
//
// Time is the device's clock: latency and bandwidth are measured on it, so a fake clock makes them exact and a
// virtual-time world's clock makes them cost no wall time.
package link

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/fleet"
)

// Errors of a shaped link.
var (
	// ErrPartitioned: the link is cut; the request never reached the service.
	ErrPartitioned = errors.New("link partitioned")
	// ErrDropped: the request was lost on the way, as a reset connection loses it.
	ErrDropped = errors.New("request dropped")
)

// Shaper is the state of one device's link. The zero Link it starts with lets everything through untouched. It
// is safe for concurrent use.
type Shaper struct {
	clock clock.Clock

	mu       sync.Mutex
	link     fleet.Link
	rnd      *rand.Rand
	cut      chan struct{} // closed while the link is partitioned; a new one after it heals
	watchers map[int]func(fleet.Link)
	nextID   int
	admitted uint64
	dropped  uint64
}

// NewShaper returns a healthy link timed by c (nil: the real clock).
func NewShaper(c clock.Clock) *Shaper {
	return &Shaper{clock: clock.Or(c), rnd: rand.New(rand.NewPCG(0, 0)), cut: make(chan struct{}),
		watchers: map[int]func(fleet.Link){}}
}

// Set changes the link for every request admitted from now on. It reseeds the drop decisions from l.Seed, so the
// same Link followed by the same sequence of requests drops the same ones. When l starts a partition, Cut's
// channel closes and the watchers are told, so open connections and streams end.
func (s *Shaper) Set(l fleet.Link) {
	s.mu.Lock()
	was := s.link.Partition
	s.link = l
	s.rnd = rand.New(rand.NewPCG(l.Seed, l.Seed^0x9e3779b97f4a7c15))
	switch {
	case l.Partition && !was:
		close(s.cut)
	case !l.Partition && was:
		s.cut = make(chan struct{})
	}
	watchers := make([]func(fleet.Link), 0, len(s.watchers))
	for _, w := range s.watchers {
		watchers = append(watchers, w)
	}
	s.mu.Unlock()
	for _, w := range watchers {
		w(l)
	}
}

// Link returns the link in force.
func (s *Shaper) Link() fleet.Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link
}

// Cut returns a channel that is closed while the link is partitioned: already closed during a partition, closed
// when the next one starts otherwise. Long-lived streams select on it to end when the link is cut.
func (s *Shaper) Cut() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cut
}

// Watch calls fn, synchronously, with the new Link after every Set, until the returned stop is called. fn must not
// call Set.
func (s *Shaper) Watch(fn func(fleet.Link)) (stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID
	s.nextID++
	s.watchers[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.watchers, id)
	}
}

// Admit decides the fate of one request before it is sent. During a partition it fails at once with
// ErrPartitioned. Otherwise it waits the link's latency on the clock — failing with ErrPartitioned if the link is
// cut meanwhile, or with ctx's error — and then drops the request with the link's drop rate (ErrDropped), drawing
// from the seeded source. It returns nil when the request may go.
func (s *Shaper) Admit(ctx context.Context) error {
	l, cut := s.Link(), s.Cut()
	if l.Partition {
		return ErrPartitioned
	}
	if l.Latency > 0 {
		switch i, err := clock.Wait(ctx, s.clock, l.Latency, clock.Done(cut)); {
		case err != nil:
			return err
		case i == 0:
			return ErrPartitioned
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link.Partition {
		return ErrPartitioned
	}
	s.admitted++
	if s.link.DropRate > 0 && s.rnd.Float64() < s.link.DropRate {
		s.dropped++
		return ErrDropped
	}
	return nil
}

// Counts returns how many requests Admit has decided on (past a partition and latency) and how many of them it
// dropped.
func (s *Shaper) Counts() (admitted, dropped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admitted, s.dropped
}

// Body wraps a response body so that it arrives no faster than the link's BytesPerSecond (read afresh at every
// Read, so a throttle can start or end mid-body) on the clock, and fails with ErrPartitioned once the link is cut.
// Reads end with ctx's error when ctx ends while they wait. The wrapper closes rc when closed.
func (s *Shaper) Body(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	return &throttled{s: s, ctx: ctx, rc: rc, cut: s.Cut(), closed: make(chan struct{})}
}

// throttled is a response body under the link's bandwidth limit: the bytes up to any point are delivered no
// sooner than start + bytes/rate, in chunks of a tenth of a second's worth.
type throttled struct {
	s    *Shaper
	ctx  context.Context
	rc   io.ReadCloser
	cut  <-chan struct{} // the partition that cuts this body: a later partition, not one that healed before
	rate int64
	// start and sent are the pace's origin: reset whenever the rate changes.
	start time.Time
	sent  int64

	closed    chan struct{}
	closeOnce sync.Once
}

func (b *throttled) Read(p []byte) (int, error) {
	select {
	case <-b.cut:
		return 0, ErrPartitioned
	default:
	}
	rate := b.s.Link().BytesPerSecond
	if rate <= 0 {
		b.rate = 0
		return b.rc.Read(p)
	}
	if rate != b.rate {
		b.rate, b.start, b.sent = rate, b.s.clock.Now(), 0
	}
	if chunk := max(rate/10, 1); int64(len(p)) > chunk {
		p = p[:chunk]
	}
	n, err := b.rc.Read(p)
	if n == 0 {
		return 0, err
	}
	b.sent += int64(n)
	due := b.start.Add(time.Duration(float64(b.sent) / float64(rate) * float64(time.Second)))
	if wait := due.Sub(b.s.clock.Now()); wait > 0 {
		switch i, err := clock.Wait(b.ctx, b.s.clock, wait, clock.Done(b.cut), clock.Done(b.closed)); {
		case err != nil:
			return 0, err
		case i == 0:
			return 0, ErrPartitioned
		case i == 1:
			return 0, io.ErrClosedPipe
		}
	}
	return n, err
}

func (b *throttled) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return b.rc.Close()
}
