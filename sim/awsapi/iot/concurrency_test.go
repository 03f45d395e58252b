package iot

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetlab/fleetlab/sim/awsapi"
)

// Concurrent membership changes reach a watcher in the order they were stored: replaying the changes it saw
// gives the membership the registry has.
func TestConcurrentMembershipChanges(t *testing.T) {
	e := newEnv(t)
	e.group("site", "")
	const things, rounds = 6, 8
	for i := range things {
		e.thing(fmt.Sprintf("r%d", i), nil)
	}
	var mu sync.Mutex
	in := map[string]bool{}
	stop := e.svc.WatchMembership(func(c awsapi.MembershipChange) {
		mu.Lock()
		defer mu.Unlock()
		if in[c.Thing] == c.Joined {
			t.Errorf("%s: joined %v twice in a row", c.Thing, c.Joined)
		}
		in[c.Thing] = c.Joined
	})
	defer stop()
	var wg sync.WaitGroup
	for i := range things {
		wg.Go(func() {
			name := aws.String(fmt.Sprintf("r%d", i))
			for j := range rounds + i%2 {
				var err error
				if j%2 == 0 {
					_, err = e.c.AddThingToThingGroup(e.ctx, &iot.AddThingToThingGroupInput{
						ThingGroupName: aws.String("site"), ThingName: name})
				} else {
					_, err = e.c.RemoveThingFromThingGroup(e.ctx, &iot.RemoveThingFromThingGroupInput{
						ThingGroupName: aws.String("site"), ThingName: name})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	members, _, err := e.svc.GroupMembers("site", false)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var replayed []string
	for name, joined := range in {
		if joined {
			replayed = append(replayed, name)
		}
	}
	slices.Sort(replayed)
	if want := []string{"r1", "r3", "r5"}; !slices.Equal(members, want) || !slices.Equal(replayed, want) {
		t.Fatalf("members %v, replayed from the changes %v, want %v", members, replayed, want)
	}
}
