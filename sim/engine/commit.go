package engine

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fleetlab/fleetlab/sim/store"
)

func (e *Engine) saveDeployment(r *rollout) {
	b, err := json.Marshal(&r.d)
	if err != nil {
		panic(fmt.Sprintf("engine: encode deployment: %v", err)) // plain data: cannot fail
	}
	e.queueWrite(bucketDeployments, r.d.ID, b)
}

func (e *Engine) saveExecution(x *Execution) {
	e.queueWrite(bucketExecutions, x.Deployment+"/"+x.Device, appendExecution(make([]byte, 0, 256), x))
}

func (e *Engine) queueWrite(bucket, key string, v []byte) {
	e.pending[bucket+"\x00"+key] = v
	e.pendSeq++
}

// commit writes every queued change to the store and then delivers queued events. Concurrent callers share
// commits: whoever holds commitMu writes everything queued so far, and the others find their writes durable.
func (e *Engine) commit() error {
	e.mu.Lock()
	mine := e.pendSeq
	e.mu.Unlock()
	e.commitMu.Lock()
	var err error
	if e.durable < mine {
		e.mu.Lock()
		batch, upto := e.pending, e.pendSeq
		e.pending = make(map[string][]byte, len(batch))
		e.mu.Unlock()
		err = e.store.Update(func(tx store.Tx) error {
			for k, v := range batch {
				bucket, key, _ := strings.Cut(k, "\x00")
				if err := tx.Put(bucket, key, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			// Put the batch back, under anything newer queued since, so nothing acknowledged is dropped.
			e.mu.Lock()
			for k, v := range batch {
				if _, newer := e.pending[k]; !newer {
					e.pending[k] = v
				}
			}
			e.mu.Unlock()
		} else {
			e.durable = upto
		}
	}
	e.commitMu.Unlock()
	e.deliver()
	return err
}
