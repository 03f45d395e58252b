package artifacts

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// BenchmarkPut measures storing a 1 MiB object through the Go API: hashing, writing, syncing and renaming.
func BenchmarkPut(b *testing.B) {
	s := openStore(b, Options{})
	if err := s.CreateBucket("bench"); err != nil {
		b.Fatal(err)
	}
	body := randomBytes(1, 1<<20)
	b.SetBytes(int64(len(body)))
	for i := 0; b.Loop(); i++ {
		if _, err := s.Put("bench", fmt.Sprintf("k/%d", i%64), bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeviceDownload measures devices downloading a 4 MiB bundle through DeviceHandler over loopback HTTP,
// several at once.
func BenchmarkDeviceDownload(b *testing.B) {
	s := openStore(b, Options{})
	if err := s.CreateBucket("bench"); err != nil {
		b.Fatal(err)
	}
	body := randomBytes(2, 4<<20)
	if _, err := s.Put("bench", "bundle.tar", bytes.NewReader(body)); err != nil {
		b.Fatal(err)
	}
	srv := serve(b, s.DeviceHandler(), false)
	client := srv.Client()
	b.SetBytes(int64(len(body)))
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(srv.URL + "/bench/bundle.tar")
			if err != nil {
				b.Error(err)
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != int64(len(body)) {
				b.Errorf("%d bytes: %v", n, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "downloads/s")
}
