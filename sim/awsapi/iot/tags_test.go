package iot

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

func TestTags(t *testing.T) {
	e := newEnv(t)
	g, err := e.c.CreateThingGroup(e.ctx, &iot.CreateThingGroupInput{ThingGroupName: aws.String("site"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := g.ThingGroupArn
	tags := func() map[string]string {
		t.Helper()
		out, err := e.c.ListTagsForResource(e.ctx, &iot.ListTagsForResourceInput{ResourceArn: arn})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, tag := range out.Tags {
			m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		return m
	}
	if got := tags(); len(got) != 1 || got["team"] != "a" {
		t.Fatalf("tags at creation: %v", got)
	}
	if _, err := e.c.TagResource(e.ctx, &iot.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{
		{Key: aws.String("team"), Value: aws.String("b")}, {Key: aws.String("cost"), Value: aws.String("")}}}); err != nil {
		t.Fatal(err)
	}
	if got := tags(); len(got) != 2 || got["team"] != "b" || got["cost"] != "" {
		t.Fatalf("tags after TagResource: %v", got)
	}
	if _, err := e.c.UntagResource(e.ctx, &iot.UntagResourceInput{ResourceArn: arn,
		TagKeys: []string{"team", "absent"}}); err != nil {
		t.Fatal(err)
	}
	if got := tags(); len(got) != 1 || got["cost"] != "" {
		t.Fatalf("tags after UntagResource: %v", got)
	}

	thing := e.thing("r1", nil)
	many := make([]types.Tag, 50)
	for i := range many {
		many[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	missing := aws.String("arn:aws:iot:us-east-1:123456789012:thinggroup/gone")
	for _, tc := range []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"51 tags", func() error {
			_, err := e.c.TagResource(e.ctx, &iot.TagResourceInput{ResourceArn: arn, Tags: many})
			return err
		}, "LimitExceededException", http.StatusGone},
		{"tag a missing group", func() error {
			_, err := e.c.TagResource(e.ctx, &iot.TagResourceInput{ResourceArn: missing, Tags: many[:1]})
			return err
		}, "ResourceNotFoundException", 404},
		{"untag a missing group", func() error {
			_, err := e.c.UntagResource(e.ctx, &iot.UntagResourceInput{ResourceArn: missing, TagKeys: []string{"k"}})
			return err
		}, "ResourceNotFoundException", 404},
		{"list a missing group", func() error {
			_, err := e.c.ListTagsForResource(e.ctx, &iot.ListTagsForResourceInput{ResourceArn: missing})
			return err
		}, "ResourceNotFoundException", 404},
		{"tag a thing", func() error {
			_, err := e.c.TagResource(e.ctx, &iot.TagResourceInput{ResourceArn: thing.ThingArn, Tags: many[:1]})
			return err
		}, "InvalidRequestException", 400},
		{"bad key", func() error {
			_, err := e.c.TagResource(e.ctx, &iot.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{
				{Key: aws.String(""), Value: aws.String("v")}}})
			return err
		}, "InvalidRequestException", 400},
	} {
		t.Run(tc.name, func(t *testing.T) { wantError(t, tc.call(), tc.code, tc.status) })
	}
	if got := tags(); len(got) != 1 {
		t.Fatalf("refused requests changed the tags: %v", got)
	}
	// Deleting the group deletes its tags: a new group of that name has none.
	if _, err := e.c.DeleteThingGroup(e.ctx, &iot.DeleteThingGroupInput{ThingGroupName: aws.String("site")}); err != nil {
		t.Fatal(err)
	}
	e.group("site", "")
	if got := tags(); len(got) != 0 {
		t.Fatalf("a recreated group has the old tags: %v", got)
	}
}
