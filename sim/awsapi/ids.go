package awsapi

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
)

// IDs makes the identifiers the service hands out — deployment job ids, request ids, revision ids, upload ids —
// at random, so that, as AWS's, they are unique across service instances and data directories rather than a
// permutation of a counter every fresh service repeats.
//
// Each IDs is a stream of its own (ChaCha8) keyed from a source when it is made: crypto/rand by default, or a
// seeded source (NewSeededSource) for runs that must repeat. Keying a stream per consumer keeps a consumer's ids
// independent of how many ids the others drew, so with a seeded source the nth job id of a run is the same
// whatever the interleaving of requests. IDs is safe for concurrent use, and is itself an io.Reader for packages
// that take a random source.
type IDs struct {
	mu sync.Mutex
	r  *mrand.ChaCha8
}

var _ io.Reader = (*IDs)(nil)

// NewIDs returns a stream keyed with 32 bytes read from src (nil: crypto/rand).
func NewIDs(src io.Reader) (*IDs, error) {
	if src == nil {
		return RandomIDs(), nil
	}
	var key [32]byte
	if _, err := io.ReadFull(src, key[:]); err != nil {
		return nil, fmt.Errorf("id source: %w", err)
	}
	return &IDs{r: mrand.NewChaCha8(key)}, nil
}

// RandomIDs returns a stream keyed from crypto/rand (which does not fail), the default of every consumer.
func RandomIDs() *IDs {
	var key [32]byte
	rand.Read(key[:])
	return &IDs{r: mrand.NewChaCha8(key)}
}

// NewSeededSource returns a deterministic source for seed, to pass where a random source is taken (the service's
// Options.Random) so a run with the same seed hands out the same ids. It is safe for concurrent use.
func NewSeededSource(seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "fleetlab ids")
	return &IDs{r: mrand.NewChaCha8(key)}
}

// Read fills p; it never fails.
func (g *IDs) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.r.Read(p)
}

// Base36 returns n characters of [0-9a-z], each uniform (RoboMaker's job ids are twelve of them).
func (g *IDs) Base36(n int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, n)
	var b [1]byte
	for len(out) < n {
		g.Read(b[:])
		if b[0] < 252 { // 252 = 7·36: keep the draw uniform
			out = append(out, digits[b[0]%36])
		}
	}
	return string(out)
}

// Hex returns n random bytes as lower-case hex.
func (g *IDs) Hex(n int) string {
	b := make([]byte, n)
	g.Read(b)
	return hex.EncodeToString(b)
}

// UUID returns a random (version 4) UUID, the form AWS request and revision ids take.
func (g *IDs) UUID() string {
	var b [16]byte
	g.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
