package store_test

import (
	"errors"
	"fmt"

	"github.com/fleetlab/fleetlab/sim/store"
)

func Example() {
	s := store.NewMemory() // or store.Open(path, store.Options{}) for the on-disk store
	defer s.Close()

	// Executions of a deployment live under its id, so one prefix lists them in order.
	err := s.Update(func(tx store.Tx) error {
		for _, robot := range []string{"r2", "r1", "r3"} {
			if err := tx.Put("executions", "d-1/"+robot, []byte("Queued")); err != nil {
				return err
			}
		}
		n, err := tx.NextSequence("deployments")
		fmt.Println("deployment number", n)
		return err
	})
	if err != nil {
		fmt.Println(err)
	}

	s.View(func(tx store.Tx) error {
		if _, err := tx.Get("executions", "d-1/r9"); errors.Is(err, store.ErrNotFound) {
			fmt.Println("d-1/r9: not found")
		}
		return tx.ForEach("executions", "d-1/", func(key string, value []byte) error {
			fmt.Println(key, string(value))
			return nil
		})
	})
	// Output:
	// deployment number 1
	// d-1/r9: not found
	// d-1/r1 Queued
	// d-1/r2 Queued
	// d-1/r3 Queued
}
