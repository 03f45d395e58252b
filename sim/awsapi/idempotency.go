package awsapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/store"
)

// ErrTokenMismatch is returned by Tokens.Lookup when a client token was first used with a different request.
// Each dialect answers it with its own error (RoboMaker: IdempotentParameterMismatchException).
var ErrTokenMismatch = errors.New("client token was used with different parameters")

// Tokens keeps idempotency tokens in a store bucket: each token maps to the hash of the request that first used it
// and the id of the resource that request created. The same token with the same request finds the same resource;
// with another request it is ErrTokenMismatch.
//
// Check and record in one transaction with the creation, or serialise creations, so two concurrent requests with
// one token cannot both create.
type Tokens struct {
	// Bucket is the store bucket; each dialect uses its own.
	Bucket string
	// TTL is how long a token is remembered (zero: until Forget). Greengrass V2 caches for 8 hours.
	TTL time.Duration
	// Clock dates the records (nil: the real clock).
	Clock clock.Clock
}

type tokenRecord struct {
	Hash     string    `json:"hash"`
	Resource string    `json:"resource"`
	At       time.Time `json:"at"`
}

func tokenKey(scope, token string) string { return scope + "\x00" + token }

// Lookup finds the resource a token created in scope (an operation name, say). found is false when the token is
// unknown or expired. A token first used with a different request hash is ErrTokenMismatch.
func (t Tokens) Lookup(tx store.Tx, scope, token, hash string) (resource string, found bool, err error) {
	data, err := tx.Get(t.Bucket, tokenKey(scope, token))
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read token: %w", err)
	}
	var rec tokenRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return "", false, fmt.Errorf("decode token: %w", err)
	}
	if t.TTL > 0 && clock.Or(t.Clock).Now().Sub(rec.At) >= t.TTL {
		return "", false, nil
	}
	if rec.Hash != hash {
		return "", false, ErrTokenMismatch
	}
	return rec.Resource, true, nil
}

// Record remembers that token, used with a request of the given hash, created resource.
func (t Tokens) Record(tx store.Tx, scope, token, hash, resource string) error {
	data, err := json.Marshal(tokenRecord{Hash: hash, Resource: resource, At: clock.Or(t.Clock).Now()})
	if err != nil {
		return fmt.Errorf("encode token: %w", err)
	}
	if err := tx.Put(t.Bucket, tokenKey(scope, token), data); err != nil {
		return fmt.Errorf("write token: %w", err)
	}
	return nil
}

// Forget removes a token, as when the resource it created is rolled back.
func (t Tokens) Forget(tx store.Tx, scope, token string) error {
	if err := tx.Delete(t.Bucket, tokenKey(scope, token)); err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	return nil
}

// RequestHash is the hash of a request's canonical form: its input document with the named members (the token
// itself, usually) left out, encoded as JSON with sorted keys.
func RequestHash(input map[string]any, exclude ...string) string {
	doc := make(map[string]any, len(input))
	for k, v := range input {
		doc[k] = v
	}
	for _, k := range exclude {
		delete(doc, k)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		// A validated input document always encodes; fall back to its printed form rather than failing.
		data = []byte(fmt.Sprint(doc))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
