package store

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// value is about the size of an encoded execution record.
var benchValue = make([]byte, 256)

func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkUpdate measures one writer committing one Put per transaction.
func BenchmarkUpdate(b *testing.B) {
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.open(b)
			for i := 0; b.Loop(); i++ {
				key := fmt.Sprintf("exec/%09d", i)
				if err := s.Update(func(tx Tx) error { return tx.Put("e", key, benchValue) }); err != nil {
					b.Fatal(err)
				}
			}
			reportOps(b)
		})
	}
}

// BenchmarkBatch measures many concurrent writers (64 per CPU: devices reporting at once), each committing one
// Put per Batch.
func BenchmarkBatch(b *testing.B) {
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.open(b)
			var n atomic.Int64
			b.SetParallelism(64)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := fmt.Sprintf("exec/%09d", n.Add(1))
					if err := s.Batch(func(tx Tx) error { return tx.Put("e", key, benchValue) }); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportOps(b)
		})
	}
}

// BenchmarkForEach100k measures a full scan of 100,000 executions, as the engine does when it recounts a large
// deployment.
func BenchmarkForEach100k(b *testing.B) {
	const n = 100_000
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.open(b)
			err := s.Update(func(tx Tx) error {
				for i := range n {
					if err := tx.Put("e", fmt.Sprintf("d1/exec/%09d", i), benchValue); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				count := 0
				err := s.View(func(tx Tx) error {
					return tx.ForEach("e", "d1/", func(string, []byte) error { count++; return nil })
				})
				if err != nil || count != n {
					b.Fatalf("visited %d: %v", count, err)
				}
			}
			b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
