package rigs

import (
	"math/rand/v2"
	"sync"

	"github.com/fleetlab/fleetlab/rigs/serial"
)

// faultPort is a board's console port as the lab sees it, with the line faults a rig can do for real: noise
// that changes a fraction of the bytes each way, and an unplugged cable through which nothing passes.
type faultPort struct {
	serial.Port

	mu        sync.Mutex
	rate      float64
	rnd       *rand.Rand
	unplugged bool
	changed   uint64
}

func (p *faultPort) setNoise(rate float64, seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate, p.rnd = rate, rand.New(rand.NewPCG(seed, seed^0x5eed))
}

func (p *faultPort) setUnplugged(u bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unplugged = u
}

// corrupt changes bytes of b in place, each with the noise's probability, to a random other byte.
func (p *faultPort) corrupt(b []byte) {
	if p.rate <= 0 {
		return
	}
	for i := range b {
		if p.rnd.Float64() < p.rate {
			b[i] ^= byte(1 + p.rnd.UintN(255))
			p.changed++
		}
	}
}

// Read reads what came down the line; while unplugged, what arrives is lost.
func (p *faultPort) Read(b []byte) (int, error) {
	for {
		n, err := p.Port.Read(b)
		p.mu.Lock()
		if p.unplugged {
			p.mu.Unlock()
			if err != nil {
				return 0, err
			}
			continue
		}
		p.corrupt(b[:n])
		p.mu.Unlock()
		return n, err
	}
}

// Write sends b down the line; while unplugged, it is lost.
func (p *faultPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.unplugged {
		p.mu.Unlock()
		return len(b), nil
	}
	if p.rate > 0 {
		c := append([]byte(nil), b...)
		p.corrupt(c)
		p.mu.Unlock()
		return p.Port.Write(c)
	}
	p.mu.Unlock()
	return p.Port.Write(b)
}

// Changed counts the bytes the noise changed.
func (p *faultPort) Changed() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}
