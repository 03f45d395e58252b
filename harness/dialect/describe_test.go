package dialect_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/fleetlab/fleetlab/harness/dialect"
)

// describer answers Describe with its errors in turn, then with a job.
type describer struct {
	dialect.Session
	errs  []error
	calls int
}

func (d *describer) Describe(context.Context, string) (dialect.Job, error) {
	d.calls++
	if len(d.errs) > 0 {
		err := d.errs[0]
		d.errs = d.errs[1:]
		return dialect.Job{}, err
	}
	return dialect.Job{Status: "Succeeded"}, nil
}

func call() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }

// TestDescribeJobAsksAgainOnlyWhenItsOwnConnectionClosed: a describe whose answer was lost to the caller's own
// closed connection is asked once more; any other error, or a second loss, stands.
func TestDescribeJobAsksAgainOnlyWhenItsOwnConnectionClosed(t *testing.T) {
	closed := fmt.Errorf("read tcp: %w", net.ErrClosed)
	other := errors.New("ResourceNotFoundException")
	for _, tc := range []struct {
		name      string
		errs      []error
		calls     int
		wantErr   error
		wantAgain int
	}{
		{"answered", nil, 1, nil, 0},
		{"closed once", []error{closed}, 2, nil, 1},
		{"closed twice", []error{closed, closed}, 2, net.ErrClosed, 1},
		{"the service's error", []error{other}, 1, other, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &describer{errs: tc.errs}
			again := 0
			j, err := dialect.DescribeJob(d, call, "job", func(error) { again++ })
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && j.Status != "Succeeded" {
				t.Fatalf("job %+v, want the answer", j)
			}
			if d.calls != tc.calls || again != tc.wantAgain {
				t.Fatalf("%d calls and %d told again, want %d and %d", d.calls, again, tc.calls, tc.wantAgain)
			}
		})
	}
}
