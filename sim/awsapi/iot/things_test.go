package iot

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

func TestCreateAndDescribeThing(t *testing.T) {
	e := newEnv(t)
	out := e.thing("robot-1", map[string]string{"color": "red"})
	if aws.ToString(out.ThingArn) != "arn:aws:iot:us-east-1:123456789012:thing/robot-1" ||
		aws.ToString(out.ThingName) != "robot-1" || aws.ToString(out.ThingId) == "" {
		t.Fatalf("create: %+v", out)
	}
	// The same name and configuration again succeeds with the same thing.
	again := e.thing("robot-1", map[string]string{"color": "red"})
	if aws.ToString(again.ThingId) != aws.ToString(out.ThingId) {
		t.Fatalf("a repeated create gave another thing: %v vs %v", *again.ThingId, *out.ThingId)
	}
	d, err := e.c.DescribeThing(e.ctx, &iot.DescribeThingInput{ThingName: aws.String("robot-1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.ThingArn) != aws.ToString(out.ThingArn) || aws.ToString(d.ThingId) != aws.ToString(out.ThingId) ||
		aws.ToString(d.DefaultClientId) != "robot-1" || d.Version != 1 || d.Attributes["color"] != "red" ||
		d.ThingTypeName != nil {
		t.Fatalf("describe: %+v", d)
	}

	for _, tc := range []struct {
		name   string
		in     *iot.CreateThingInput
		code   string
		status int
	}{
		{"other attributes", &iot.CreateThingInput{ThingName: aws.String("robot-1"),
			AttributePayload: &types.AttributePayload{Attributes: map[string]string{"color": "blue"}}},
			"ResourceAlreadyExistsException", http.StatusConflict},
		{"bad name", &iot.CreateThingInput{ThingName: aws.String("robot 1")}, "InvalidRequestException", 400},
		{"name too long", &iot.CreateThingInput{ThingName: aws.String(string(make([]byte, 129)))},
			"InvalidRequestException", 400},
		{"four attributes", &iot.CreateThingInput{ThingName: aws.String("r4"), AttributePayload: &types.AttributePayload{
			Attributes: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}}}, "InvalidRequestException", 400},
		{"bad attribute name", &iot.CreateThingInput{ThingName: aws.String("r5"), AttributePayload: &types.AttributePayload{
			Attributes: map[string]string{"a b": "1"}}}, "InvalidRequestException", 400},
		{"unknown thing type", &iot.CreateThingInput{ThingName: aws.String("r6"), ThingTypeName: aws.String("arm")},
			"ResourceNotFoundException", http.StatusNotFound},
		{"unknown billing group", &iot.CreateThingInput{ThingName: aws.String("r7"),
			BillingGroupName: aws.String("b")}, "ResourceNotFoundException", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.CreateThing(e.ctx, tc.in)
			wantError(t, err, tc.code, tc.status)
			if tc.code == "ResourceAlreadyExistsException" {
				var exists *types.ResourceAlreadyExistsException
				if !errors.As(err, &exists) || aws.ToString(exists.ResourceId) != aws.ToString(out.ThingId) ||
					aws.ToString(exists.ResourceArn) != aws.ToString(out.ThingArn) {
					t.Fatalf("already exists: %v", err)
				}
			}
		})
	}
	_, err = e.c.DescribeThing(e.ctx, &iot.DescribeThingInput{ThingName: aws.String("nobody")})
	var nf *types.ResourceNotFoundException
	if wantError(t, err, "ResourceNotFoundException", http.StatusNotFound); !errors.As(err, &nf) {
		t.Fatalf("not a typed ResourceNotFoundException: %T", err)
	}
}

func TestUpdateThing(t *testing.T) {
	e := newEnv(t)
	e.thing("r1", map[string]string{"a": "1", "b": "2"})
	update := func(in *iot.UpdateThingInput) error {
		in.ThingName = aws.String("r1")
		_, err := e.c.UpdateThing(e.ctx, in)
		return err
	}
	if err := update(&iot.UpdateThingInput{ExpectedVersion: aws.Int64(1), AttributePayload: &types.AttributePayload{
		Merge: true, Attributes: map[string]string{"a": "", "c": "3"}}}); err != nil {
		t.Fatal(err)
	}
	d, err := e.c.DescribeThing(e.ctx, &iot.DescribeThingInput{ThingName: aws.String("r1")})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"b": "2", "c": "3"}; !maps.Equal(d.Attributes, want) || d.Version != 2 {
		t.Fatalf("after a merge: %v version %d, want %v version 2", d.Attributes, d.Version, want)
	}
	if err := update(&iot.UpdateThingInput{AttributePayload: &types.AttributePayload{
		Attributes: map[string]string{"z": "9"}}}); err != nil {
		t.Fatal(err)
	}
	d, _ = e.c.DescribeThing(e.ctx, &iot.DescribeThingInput{ThingName: aws.String("r1")})
	if want := map[string]string{"z": "9"}; !maps.Equal(d.Attributes, want) || d.Version != 3 {
		t.Fatalf("after a replace: %v version %d", d.Attributes, d.Version)
	}
	for _, tc := range []struct {
		name   string
		in     *iot.UpdateThingInput
		code   string
		status int
	}{
		{"stale version", &iot.UpdateThingInput{ExpectedVersion: aws.Int64(1)}, "VersionConflictException", 409},
		{"thing type", &iot.UpdateThingInput{ThingTypeName: aws.String("t")}, "ResourceNotFoundException", 404},
		{"type and remove", &iot.UpdateThingInput{ThingTypeName: aws.String("t"), RemoveThingType: true},
			"InvalidRequestException", 400},
		{"too many attributes", &iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Merge: true,
			Attributes: map[string]string{"a": "1", "b": "2", "c": "3"}}}, "InvalidRequestException", 400},
	} {
		t.Run(tc.name, func(t *testing.T) { wantError(t, update(tc.in), tc.code, tc.status) })
	}
	_, err = e.c.UpdateThing(e.ctx, &iot.UpdateThingInput{ThingName: aws.String("nobody")})
	wantError(t, err, "ResourceNotFoundException", 404)
	if d, _ := e.c.DescribeThing(e.ctx, &iot.DescribeThingInput{ThingName: aws.String("r1")}); d.Version != 3 {
		t.Fatalf("refused updates changed the version to %d", d.Version)
	}
}

func TestDeleteThing(t *testing.T) {
	e := newEnv(t)
	e.thing("r1", nil)
	e.group("g", "")
	e.add("g", "r1")
	_, err := e.c.DeleteThing(e.ctx, &iot.DeleteThingInput{ThingName: aws.String("r1"), ExpectedVersion: aws.Int64(7)})
	wantError(t, err, "VersionConflictException", http.StatusConflict)
	if _, err := e.c.DeleteThing(e.ctx, &iot.DeleteThingInput{ThingName: aws.String("r1"),
		ExpectedVersion: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.DescribeThing(e.ctx, &iot.DescribeThingInput{ThingName: aws.String("r1")})
	wantError(t, err, "ResourceNotFoundException", 404)
	in, err := e.c.ListThingsInThingGroup(e.ctx, &iot.ListThingsInThingGroupInput{ThingGroupName: aws.String("g")})
	if err != nil || len(in.Things) != 0 {
		t.Fatalf("the group still lists a deleted thing: %v %v", in, err)
	}
	// A thing that does not exist is deleted already.
	if _, err := e.c.DeleteThing(e.ctx, &iot.DeleteThingInput{ThingName: aws.String("r1")}); err != nil {
		t.Fatalf("deleting a deleted thing: %v", err)
	}
	_, err = e.c.DeleteThing(e.ctx, &iot.DeleteThingInput{ThingName: aws.String("a/b")})
	wantError(t, err, "InvalidRequestException", 400)
	// The name is free again, with a new id and the same ARN.
	again := e.thing("r1", nil)
	if aws.ToString(again.ThingArn) != "arn:aws:iot:us-east-1:123456789012:thing/r1" {
		t.Fatalf("recreated: %+v", again)
	}
}

func TestListThings(t *testing.T) {
	e := newEnv(t)
	for i := range 7 {
		color := "red"
		if i%2 == 1 {
			color = "blue"
		}
		e.thing(fmt.Sprintf("r%d", i), map[string]string{"color": color, "site": fmt.Sprintf("lab-%d", i/4)})
	}
	list := func(in *iot.ListThingsInput) []string {
		t.Helper()
		var names []string
		p := iot.NewListThingsPaginator(e.c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if in.MaxResults != nil && len(page.Things) > int(*in.MaxResults) {
				t.Fatalf("a page of %d things, max %d", len(page.Things), *in.MaxResults)
			}
			for _, th := range page.Things {
				if th.Version != 1 || aws.ToString(th.ThingArn) == "" || th.Attributes["color"] == "" {
					t.Fatalf("thing %+v", th)
				}
				names = append(names, aws.ToString(th.ThingName))
			}
		}
		return names
	}
	for _, tc := range []struct {
		name string
		in   *iot.ListThingsInput
		want []string
	}{
		{"all, paged", &iot.ListThingsInput{MaxResults: aws.Int32(2)},
			[]string{"r0", "r1", "r2", "r3", "r4", "r5", "r6"}},
		{"by value", &iot.ListThingsInput{AttributeName: aws.String("color"), AttributeValue: aws.String("blue")},
			[]string{"r1", "r3", "r5"}},
		{"by prefix", &iot.ListThingsInput{AttributeName: aws.String("site"), AttributeValue: aws.String("lab-1"),
			UsePrefixAttributeValue: true, MaxResults: aws.Int32(1)}, []string{"r4", "r5", "r6"}},
		{"having the attribute", &iot.ListThingsInput{AttributeName: aws.String("site")},
			[]string{"r0", "r1", "r2", "r3", "r4", "r5", "r6"}},
		{"no match", &iot.ListThingsInput{AttributeName: aws.String("color"), AttributeValue: aws.String("green")}, nil},
		{"by thing type", &iot.ListThingsInput{ThingTypeName: aws.String("arm")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := list(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		in   *iot.ListThingsInput
	}{
		{"value without name", &iot.ListThingsInput{AttributeValue: aws.String("red")}},
		{"maxResults 0", &iot.ListThingsInput{MaxResults: aws.Int32(0)}},
		{"maxResults 251", &iot.ListThingsInput{MaxResults: aws.Int32(251)}},
		{"foreign token", &iot.ListThingsInput{NextToken: aws.String("bm90LW91cnM")}},
		{"bad attribute name", &iot.ListThingsInput{AttributeName: aws.String("a b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.ListThings(e.ctx, tc.in)
			wantError(t, err, "InvalidRequestException", 400)
		})
	}
	// A token of one listing does not resume another.
	page, err := e.c.ListThings(e.ctx, &iot.ListThingsInput{MaxResults: aws.Int32(1)})
	if err != nil || page.NextToken == nil {
		t.Fatalf("first page: %v %v", page, err)
	}
	_, err = e.c.ListThings(e.ctx, &iot.ListThingsInput{NextToken: page.NextToken, AttributeName: aws.String("color")})
	wantError(t, err, "InvalidRequestException", 400)
}
