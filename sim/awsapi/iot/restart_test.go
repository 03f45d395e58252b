package iot

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetlab/fleetlab/sim/store"
)

// A restarted service, over the same store file, has every thing, group, membership and tag it had.
func TestRestartKeepsTheRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleetlab.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, st)
	r1 := e.thing("r1", map[string]string{"color": "red"})
	e.thing("r2", nil)
	site := e.group("site", "")
	if _, err := e.c.CreateThingGroup(e.ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String("line"),
		ParentGroupName: aws.String("site"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Fatal(err)
	}
	e.add("line", "r1")
	e.add("site", "r2")

	e.srv.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if e.store, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.start()

	d, err := e.c.DescribeThing(e.ctx, &iot.DescribeThingInput{ThingName: aws.String("r1")})
	if err != nil || aws.ToString(d.ThingId) != aws.ToString(r1.ThingId) || d.Attributes["color"] != "red" {
		t.Fatalf("r1 after a restart: %+v %v", d, err)
	}
	g, err := e.c.DescribeThingGroup(e.ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String("line")})
	if err != nil || aws.ToString(g.ThingGroupMetadata.ParentGroupName) != "site" {
		t.Fatalf("line after a restart: %+v %v", g, err)
	}
	in, err := e.c.ListThingsInThingGroup(e.ctx, &iot.ListThingsInThingGroupInput{ThingGroupName: aws.String("site"),
		Recursive: true})
	if err != nil || !slices.Equal(in.Things, []string{"r1", "r2"}) {
		t.Fatalf("site's things after a restart: %v %v", in, err)
	}
	tags, err := e.c.ListTagsForResource(e.ctx, &iot.ListTagsForResourceInput{ResourceArn: g.ThingGroupArn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "k" {
		t.Fatalf("line's tags after a restart: %v %v", tags, err)
	}
	if things, ok, err := e.svc.GroupMembers(aws.ToString(site.ThingGroupArn), true); err != nil || !ok ||
		!slices.Equal(things, []string{"r1", "r2"}) || !e.svc.KnowsThing("r2") {
		t.Fatalf("the registry after a restart: %v %v %v", things, ok, err)
	}
	// The hierarchy rules still hold: r1 is in site's hierarchy through line.
	_, err = e.c.AddThingToThingGroup(e.ctx, &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("site"),
		ThingName: aws.String("r1")})
	wantError(t, err, "InvalidRequestException", 400)
}
