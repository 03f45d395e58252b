package iot

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetlab/fleetlab/sim/awsapi"
)

func TestCreateAndDescribeThingGroup(t *testing.T) {
	e := newEnv(t)
	root := e.group("site", "")
	props := &types.ThingGroupProperties{ThingGroupDescription: aws.String("line one"),
		AttributePayload: &types.AttributePayload{Attributes: map[string]string{"floor": "2"}}}
	in := &iot.CreateThingGroupInput{ThingGroupName: aws.String("line-1"), ParentGroupName: aws.String("site"),
		ThingGroupProperties: props, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}
	line, err := e.c.CreateThingGroup(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(line.ThingGroupArn) != "arn:aws:iot:us-east-1:123456789012:thinggroup/line-1" ||
		aws.ToString(line.ThingGroupId) == "" {
		t.Fatalf("create: %+v", line)
	}
	// The same group again succeeds with the same group.
	if again, err := e.c.CreateThingGroup(e.ctx, in); err != nil ||
		aws.ToString(again.ThingGroupId) != aws.ToString(line.ThingGroupId) {
		t.Fatalf("a repeated create: %v %v", again, err)
	}
	e.group("cell-1", "line-1")
	d, err := e.c.DescribeThingGroup(e.ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String("cell-1")})
	if err != nil {
		t.Fatal(err)
	}
	md := d.ThingGroupMetadata
	if d.Version != 1 || aws.ToString(md.ParentGroupName) != "line-1" || len(md.RootToParentThingGroups) != 2 ||
		aws.ToString(md.RootToParentThingGroups[0].GroupArn) != aws.ToString(root.ThingGroupArn) ||
		aws.ToString(md.RootToParentThingGroups[1].GroupName) != "line-1" ||
		!md.CreationDate.Equal(e.clock.Now()) {
		t.Fatalf("describe cell-1: %+v metadata %+v", d, md)
	}
	d, err = e.c.DescribeThingGroup(e.ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String("line-1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.ThingGroupProperties.ThingGroupDescription) != "line one" ||
		d.ThingGroupProperties.AttributePayload.Attributes["floor"] != "2" {
		t.Fatalf("describe line-1 properties: %+v", d.ThingGroupProperties)
	}

	deep := "cell-1"
	for i := range 4 { // depths 4 to 7
		name := fmt.Sprintf("d%d", i+4)
		e.group(name, deep)
		deep = name
	}
	for _, tc := range []struct {
		name   string
		in     *iot.CreateThingGroupInput
		code   string
		status int
	}{
		{"other properties", &iot.CreateThingGroupInput{ThingGroupName: aws.String("line-1")},
			"ResourceAlreadyExistsException", http.StatusConflict},
		{"unknown parent", &iot.CreateThingGroupInput{ThingGroupName: aws.String("x"),
			ParentGroupName: aws.String("nowhere")}, "InvalidRequestException", 400},
		{"its own parent", &iot.CreateThingGroupInput{ThingGroupName: aws.String("x"),
			ParentGroupName: aws.String("x")}, "InvalidRequestException", 400},
		{"depth 8", &iot.CreateThingGroupInput{ThingGroupName: aws.String("d8"), ParentGroupName: aws.String(deep)},
			"InvalidRequestException", 400},
		{"bad name", &iot.CreateThingGroupInput{ThingGroupName: aws.String("a.b")}, "InvalidRequestException", 400},
		{"bad description", &iot.CreateThingGroupInput{ThingGroupName: aws.String("x"),
			ThingGroupProperties: &types.ThingGroupProperties{ThingGroupDescription: aws.String("tab\t")}},
			"InvalidRequestException", 400},
		{"tag key too long", &iot.CreateThingGroupInput{ThingGroupName: aws.String("x"),
			Tags: []types.Tag{{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}}},
			"InvalidRequestException", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.CreateThingGroup(e.ctx, tc.in)
			wantError(t, err, tc.code, tc.status)
			var exists *types.ResourceAlreadyExistsException
			if tc.code == "ResourceAlreadyExistsException" && (!errors.As(err, &exists) ||
				aws.ToString(exists.ResourceArn) != aws.ToString(line.ThingGroupArn) ||
				aws.ToString(exists.ResourceId) != aws.ToString(line.ThingGroupId)) {
				t.Fatalf("already exists: %v", err)
			}
		})
	}
	_, err = e.c.DescribeThingGroup(e.ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String("nowhere")})
	wantError(t, err, "ResourceNotFoundException", http.StatusNotFound)
}

func TestDeleteThingGroup(t *testing.T) {
	e := newEnv(t)
	e.group("site", "")
	e.group("line", "site")
	e.thing("r1", nil)
	e.add("line", "r1")
	_, err := e.c.DeleteThingGroup(e.ctx, &iot.DeleteThingGroupInput{ThingGroupName: aws.String("site")})
	wantError(t, err, "InvalidRequestException", 400) // it has a child group
	_, err = e.c.DeleteThingGroup(e.ctx, &iot.DeleteThingGroupInput{ThingGroupName: aws.String("line"),
		ExpectedVersion: aws.Int64(2)})
	wantError(t, err, "VersionConflictException", http.StatusConflict)
	if _, err := e.c.DeleteThingGroup(e.ctx, &iot.DeleteThingGroupInput{ThingGroupName: aws.String("line"),
		ExpectedVersion: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	groups, err := e.c.ListThingGroupsForThing(e.ctx, &iot.ListThingGroupsForThingInput{ThingName: aws.String("r1")})
	if err != nil || len(groups.ThingGroups) != 0 {
		t.Fatalf("the thing is still in a deleted group: %v %v", groups, err)
	}
	// Now childless, site goes; a group that does not exist is deleted already.
	for range 2 {
		if _, err := e.c.DeleteThingGroup(e.ctx, &iot.DeleteThingGroupInput{ThingGroupName: aws.String("site")}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.c.DescribeThingGroup(e.ctx, &iot.DescribeThingGroupInput{ThingGroupName: aws.String("site")})
	wantError(t, err, "ResourceNotFoundException", 404)
}

func TestMembership(t *testing.T) {
	e := newEnv(t)
	site := e.group("site", "")
	e.group("line-1", "site")
	e.group("line-2", "site")
	other := e.group("other", "")
	for i := range 5 {
		e.thing(fmt.Sprintf("r%d", i), nil)
	}
	e.add("site", "r0")
	e.add("line-1", "r1")
	e.add("line-1", "r2")
	e.add("line-2", "r3")
	r4 := e.thing("r4", nil)
	// By ARN on both sides, and again (a no-op).
	for range 2 {
		if _, err := e.c.AddThingToThingGroup(e.ctx, &iot.AddThingToThingGroupInput{ThingGroupArn: other.ThingGroupArn,
			ThingArn: r4.ThingArn}); err != nil {
			t.Fatal(err)
		}
	}
	e.add("line-2", "r4")

	members := func(group string, recursive bool, max int32) []string {
		t.Helper()
		var out []string
		p := iot.NewListThingsInThingGroupPaginator(e.c, &iot.ListThingsInThingGroupInput{
			ThingGroupName: aws.String(group), Recursive: recursive, MaxResults: aws.Int32(max)})
		for p.HasMorePages() {
			page, err := p.NextPage(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page.Things...)
		}
		return out
	}
	for _, tc := range []struct {
		group     string
		recursive bool
		want      []string
	}{
		{"site", false, []string{"r0"}},
		{"site", true, []string{"r0", "r1", "r2", "r3", "r4"}},
		{"line-1", true, []string{"r1", "r2"}},
		{"other", false, []string{"r4"}},
	} {
		if got := members(tc.group, tc.recursive, 2); !slices.Equal(got, tc.want) {
			t.Errorf("members of %s (recursive %v): %v, want %v", tc.group, tc.recursive, got, tc.want)
		}
	}
	groups, err := e.c.ListThingGroupsForThing(e.ctx, &iot.ListThingGroupsForThingInput{ThingName: aws.String("r4")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range groups.ThingGroups {
		names = append(names, aws.ToString(g.GroupName)+"="+aws.ToString(g.GroupArn))
	}
	if want := []string{"line-2=arn:aws:iot:us-east-1:123456789012:thinggroup/line-2",
		"other=" + aws.ToString(other.ThingGroupArn)}; !slices.Equal(names, want) {
		t.Fatalf("groups of r4: %v, want %v", names, want)
	}

	// Remove by name and by ARN; removing a thing that is not a member succeeds.
	if _, err := e.c.RemoveThingFromThingGroup(e.ctx, &iot.RemoveThingFromThingGroupInput{
		ThingGroupName: aws.String("line-2"), ThingArn: r4.ThingArn}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.RemoveThingFromThingGroup(e.ctx, &iot.RemoveThingFromThingGroupInput{
		ThingGroupArn: site.ThingGroupArn, ThingName: aws.String("r4")}); err != nil {
		t.Fatal(err)
	}
	if got := members("site", true, 250); !slices.Equal(got, []string{"r0", "r1", "r2", "r3"}) {
		t.Fatalf("after removing r4: %v", got)
	}

	add := func(in *iot.AddThingToThingGroupInput) error {
		_, err := e.c.AddThingToThingGroup(e.ctx, in)
		return err
	}
	remove := func(in *iot.AddThingToThingGroupInput) error {
		_, err := e.c.RemoveThingFromThingGroup(e.ctx, &iot.RemoveThingFromThingGroupInput{
			ThingGroupName: in.ThingGroupName, ThingGroupArn: in.ThingGroupArn, ThingName: in.ThingName,
			ThingArn: in.ThingArn})
		return err
	}
	for _, tc := range []struct {
		name   string
		in     *iot.AddThingToThingGroupInput
		code   string
		status int
		both   bool // RemoveThingFromThingGroup answers the same
	}{
		{"no group", &iot.AddThingToThingGroupInput{ThingName: aws.String("r1")}, "InvalidRequestException", 400, true},
		{"no thing", &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("site")}, "InvalidRequestException",
			400, true},
		{"unknown group", &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("x"), ThingName: aws.String("r1")},
			"ResourceNotFoundException", 404, true},
		{"unknown thing", &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("site"), ThingName: aws.String("x")},
			"ResourceNotFoundException", 404, true},
		{"unknown group ARN", &iot.AddThingToThingGroupInput{ThingGroupArn: aws.String(
			"arn:aws:iot:us-east-1:123456789012:thinggroup/x"), ThingName: aws.String("r1")},
			"ResourceNotFoundException", 404, true},
		{"name and ARN disagree", &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("site"),
			ThingGroupArn: other.ThingGroupArn, ThingName: aws.String("r1")}, "ResourceNotFoundException", 404, true},
		{"same hierarchy", &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("line-2"),
			ThingName: aws.String("r1")}, "InvalidRequestException", 400, false},
		{"bad thing name", &iot.AddThingToThingGroupInput{ThingGroupName: aws.String("site"),
			ThingName: aws.String("r 1")}, "InvalidRequestException", 400, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, add(tc.in), tc.code, tc.status)
			if tc.both {
				wantError(t, remove(tc.in), tc.code, tc.status)
			}
		})
	}

	// A thing is in at most ten groups.
	for i := range MaxGroupsPerThing - 1 {
		e.group(fmt.Sprintf("g%d", i), "")
		e.add(fmt.Sprintf("g%d", i), "r4")
	}
	e.group("g-last", "")
	wantError(t, add(&iot.AddThingToThingGroupInput{ThingGroupName: aws.String("g-last"), ThingName: aws.String("r4")}),
		"InvalidRequestException", 400)

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"things in an unknown group", func() error {
			_, err := e.c.ListThingsInThingGroup(e.ctx, &iot.ListThingsInThingGroupInput{ThingGroupName: aws.String("x")})
			return err
		}},
		{"groups of an unknown thing", func() error {
			_, err := e.c.ListThingGroupsForThing(e.ctx, &iot.ListThingGroupsForThingInput{ThingName: aws.String("x")})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantError(t, tc.call(), "ResourceNotFoundException", 404) })
	}
	_, err = e.c.ListThingsInThingGroup(e.ctx, &iot.ListThingsInThingGroupInput{ThingGroupName: aws.String("site"),
		MaxResults: aws.Int32(300)})
	wantError(t, err, "InvalidRequestException", 400)
}

// The registry tells its watchers each membership change once stored, in order, and answers for things and
// groups.
func TestRegistry(t *testing.T) {
	e := newEnv(t)
	var got []string
	stop := e.svc.WatchMembership(func(c awsapi.MembershipChange) {
		// A watcher may read the registry.
		things, _, err := e.svc.GroupMembers(c.GroupARN, false)
		if err != nil {
			t.Error(err)
		}
		got = append(got, fmt.Sprintf("%s %s %v %d %v", c.Group, c.Thing, c.Joined, len(things), c.Ancestors))
	})
	e.group("site", "")
	line := e.group("line", "site")
	e.thing("r1", nil)
	e.thing("r2", nil)
	e.add("line", "r1")
	e.add("line", "r2")
	e.add("line", "r2") // a member already: no change
	if _, err := e.c.RemoveThingFromThingGroup(e.ctx, &iot.RemoveThingFromThingGroupInput{
		ThingGroupName: aws.String("line"), ThingName: aws.String("r1")}); err != nil {
		t.Fatal(err)
	}
	e.add("site", "r1")
	if _, err := e.c.DeleteThing(e.ctx, &iot.DeleteThingInput{ThingName: aws.String("r1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.DeleteThingGroup(e.ctx, &iot.DeleteThingGroupInput{ThingGroupName: aws.String("line")}); err != nil {
		t.Fatal(err)
	}
	site := "[arn:aws:iot:us-east-1:123456789012:thinggroup/site]"
	want := []string{"line r1 true 1 " + site, "line r2 true 2 " + site, "line r1 false 1 " + site,
		"site r1 true 1 []", "site r1 false 0 []", "line r2 false 0 " + site}
	if !slices.Equal(got, want) {
		t.Fatalf("changes %q, want %q", got, want)
	}
	stop()
	e.thing("r3", nil)
	e.add("site", "r3")
	if len(got) != len(want) {
		t.Fatalf("a stopped watcher was called: %q", got[len(want):])
	}

	if th, ok, err := e.svc.Thing("r2"); err != nil || !ok || th.ARN != "arn:aws:iot:us-east-1:123456789012:thing/r2" {
		t.Fatalf("Thing(r2) = %+v %v %v", th, ok, err)
	}
	if _, ok, _ := e.svc.Thing("r1"); ok || e.svc.KnowsThing("r1") || !e.svc.KnowsThing("r2") {
		t.Fatal("a deleted thing is known, or an existing one is not")
	}
	e.group("line", "site")
	e.add("line", "r2")
	for _, ref := range []string{"site", "arn:aws:iot:us-east-1:123456789012:thinggroup/site"} {
		things, ok, err := e.svc.GroupMembers(ref, true)
		if err != nil || !ok || !slices.Equal(things, []string{"r2", "r3"}) {
			t.Fatalf("GroupMembers(%s, recursive) = %v %v %v", ref, things, ok, err)
		}
	}
	if things, ok, err := e.svc.GroupMembers("site", false); err != nil || !ok || !slices.Equal(things, []string{"r3"}) {
		t.Fatalf("GroupMembers(site) = %v %v %v", things, ok, err)
	}
	for _, ref := range []string{"gone", aws.ToString(line.ThingGroupArn) + "x",
		"arn:aws:iot:eu-west-1:123456789012:thinggroup/site"} {
		if _, ok, err := e.svc.GroupMembers(ref, true); ok || err != nil {
			t.Fatalf("GroupMembers(%s) found a group: %v", ref, err)
		}
	}
}
