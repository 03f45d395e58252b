package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestBoltReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "fleetlab.db") // the directory is created too
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "robots", "r1", "v:r1")
	if err := s.Update(func(tx Tx) error { _, err := tx.NextSequence("robots"); return err }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode %v, want 0600", mode)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := get(t, s, "robots", "r1"); err != nil || v != "v:r1" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	var seq uint64
	if err := s.Update(func(tx Tx) (err error) { seq, err = tx.NextSequence("robots"); return err }); err != nil || seq != 2 {
		t.Fatalf("sequence after reopen: %d, %v; want 2", seq, err)
	}
}

func TestBoltSecondOpenIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleetlab.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// flock locks belong to an open file, so a second Open in this process contends exactly as another process
	// would.
	_, err = Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	if !strings.Contains(err.Error(), "data directory is in use by another fleetlab") || !strings.Contains(err.Error(), path) {
		t.Fatalf("unclear error: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	s2.Close()
}

// The crash test runs this test binary again as a child that writes to a bbolt store and prints one line per
// acknowledged (committed) write; the parent kills it with SIGKILL mid-stream and checks that every acknowledged
// write survived, that each write is whole or absent, and that the file is consistent.
const (
	crashChildEnv = "FLEETLAB_STORE_CRASH_CHILD" // the store's path, set only in the child
	crashWriters  = 4                            // two use Update, two Batch
)

func TestBoltCrashKeepsAcknowledgedWrites(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBoltCrashKeepsAcknowledgedWrites$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	acked := map[string]bool{}
	lines := bufio.NewScanner(out)
	const killAfter = 400
	for lines.Scan() {
		key, ok := strings.CutPrefix(lines.Text(), "ack ")
		if !ok {
			continue // the test framework's own output
		}
		acked[key] = true
		if len(acked) == killAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Lines already written when the signal landed are acknowledgements too: the scanner reads them all to EOF.
	err = cmd.Wait()
	if len(acked) < killAfter {
		t.Fatalf("child stopped after %d acknowledgements: %v", len(acked), err)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v", err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("consistency: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	s := &boltStore{db: db}
	present := 0
	err = s.View(func(tx Tx) error {
		for key := range acked {
			if _, err := tx.Get("crash", key); err != nil {
				return fmt.Errorf("acknowledged write %s: %w", key, err)
			}
		}
		return tx.ForEach("crash", "", func(k string, v []byte) error {
			present++
			if want := crashValue(k); string(v) != want {
				return fmt.Errorf("write %s is torn: %d bytes, want %d", k, len(v), len(want))
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes acknowledged, %d on disk after SIGKILL", len(acked), present)
}

// crashChild writes until it is killed. Each writer puts keys w<writer>/<n>; a key's value is derived from the
// key and spans several pages, so a torn write would show.
func crashChild(path string) {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex // one ack per line
	var wg sync.WaitGroup
	for w := range crashWriters {
		commit := s.Update
		if w%2 == 1 {
			commit = s.Batch
		}
		wg.Go(func() {
			for n := 0; ; n++ {
				key := fmt.Sprintf("w%d/%08d", w, n)
				if err := commit(func(tx Tx) error { return tx.Put("crash", key, []byte(crashValue(key))) }); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", key)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func crashValue(key string) string {
	return strings.Repeat(key+strconv.Itoa(len(key)), 1+20000/len(key))
}
