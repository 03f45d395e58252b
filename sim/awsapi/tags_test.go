package awsapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// tagModel is a second dialect's tags API on /tags/{arn}, its members cased as AppConfig's are.
const tagModel = `{
 "metadata": {"protocol": "rest-json", "endpointPrefix": "demo", "apiVersion": "2020-01-01"},
 "operations": {
  "TagResource": {"name": "TagResource", "http": {"method": "POST", "requestUri": "/tags/{ResourceArn}", "responseCode": 204},
   "input": {"shape": "TagResourceRequest"}},
  "UntagResource": {"name": "UntagResource", "http": {"method": "DELETE", "requestUri": "/tags/{ResourceArn}", "responseCode": 204},
   "input": {"shape": "UntagResourceRequest"}},
  "ListTagsForResource": {"name": "ListTagsForResource", "http": {"method": "GET", "requestUri": "/tags/{ResourceArn}"},
   "input": {"shape": "ListTagsRequest"}}
 },
 "shapes": {
  "TagResourceRequest": {"type": "structure", "required": ["ResourceArn", "Tags"], "members": {
   "ResourceArn": {"shape": "S", "location": "uri", "locationName": "ResourceArn"}, "Tags": {"shape": "M"}}},
  "UntagResourceRequest": {"type": "structure", "required": ["ResourceArn", "TagKeys"], "members": {
   "ResourceArn": {"shape": "S", "location": "uri", "locationName": "ResourceArn"},
   "TagKeys": {"shape": "L", "location": "querystring", "locationName": "tagKeys"}}},
  "ListTagsRequest": {"type": "structure", "required": ["ResourceArn"], "members": {
   "ResourceArn": {"shape": "S", "location": "uri", "locationName": "ResourceArn"}}},
  "S": {"type": "string", "min": 1},
  "L": {"type": "list", "member": {"shape": "S"}},
  "M": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}}
 }
}`

// One record of each dialect, tagged through the one shared tags API: each ARN reaches its own dialect's
// records, whatever dialect it is, and the tags of one never show in the other.
func TestTagsForAnyDialectsARN(t *testing.T) {
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	h := awsapi.NewHandler(awsapi.Options{})
	notFound := func(arn string) *awsapi.Error {
		return awsapi.NewError("ResourceNotFoundException", http.StatusNotFound, "Resource %s does not exist.", arn)
	}
	dialect := func(name string, members awsapi.TagMembers) (awsapi.Records, awsapi.Tagging) {
		rec := awsapi.NewRecords(name, "us-east-1", "1")
		return rec, awsapi.Tagging{Records: rec, Store: st, Members: members, MaxTags: 3,
			Invalid: invalidParameter,
			Taggable: func(tx store.Tx, arn string) error {
				_, _, found, err := rec.FindByARN(tx, arn)
				if err == nil && !found {
					err = notFound(arn)
				}
				return err
			}}
	}
	rmRec, rmTags := dialect("robomaker", awsapi.TagMembers{})
	demoRec, demoTags := dialect("demo", awsapi.TagMembers{ARN: "ResourceArn", Tags: "Tags", TagKeys: "TagKeys"})
	if err := h.Register(awsapi.Service{Model: rmModel(t), Invalid: invalidParameter}, rmTags.Operations()); err != nil {
		t.Fatal(err)
	}
	if err := h.Register(awsapi.Service{Model: loadModel(t, tagModel), Invalid: invalidParameter},
		demoTags.Operations()); err != nil {
		t.Fatal(err)
	}
	var rmARN, demoARN string
	if err := st.Update(func(tx store.Tx) error {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, d := range []struct {
			rec       awsapi.Records
			resource  string
			arn       *string
			tags      map[string]string
			byNameKey string
		}{
			{rmRec, "deployment-fleet", &rmARN, map[string]string{"team": "arm"}, "fleet/f"},
			{demoRec, "thing", &demoARN, nil, "thing/f"},
		} {
			key, arn, err := d.rec.NewResource(tx, now, d.resource, "f")
			if err != nil {
				return err
			}
			*d.arn = arn
			if err := d.rec.Insert(tx, "test.resources", "kind", key, arn, struct{}{}, d.tags,
				d.byNameKey); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, h)
	c := sdk(srv.URL, "AK", "SK")
	ctx := context.Background()

	if _, err := c.TagResource(ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(rmARN),
		Tags: map[string]string{"site": "lab"}}); err != nil {
		t.Fatal(err)
	}
	if status, _, body := rawCall(t, "POST", srv.URL+"/tags/"+escape(demoARN), `{"Tags":{"a":"1","b":"2"}}`,
		nil); status != 204 {
		t.Fatalf("demo TagResource = %d %s", status, body)
	}
	if status, _, body := rawCall(t, "DELETE", srv.URL+"/tags/"+escape(demoARN)+"?tagKeys=a", "", nil); status != 204 {
		t.Fatalf("demo UntagResource = %d %s", status, body)
	}
	out, err := c.ListTagsForResource(ctx, &robomaker.ListTagsForResourceInput{ResourceArn: aws.String(rmARN)})
	if err != nil || len(out.Tags) != 2 || out.Tags["team"] != "arm" || out.Tags["site"] != "lab" {
		t.Fatalf("robomaker tags %v (%v)", out, err)
	}
	if _, _, body := rawCall(t, "GET", srv.URL+"/tags/"+escape(demoARN), "", nil); body != `{"Tags":{"b":"2"}}` {
		t.Fatalf("demo tags %s", body)
	}

	// An ARN of no record is the dialect's not-found; too many tags its invalid-parameter error, storing nothing.
	var apiErr smithy.APIError
	_, err = c.ListTagsForResource(ctx, &robomaker.ListTagsForResourceInput{
		ResourceArn: aws.String(strings.Replace(rmARN, "/f/", "/g/", 1))})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ResourceNotFoundException" {
		t.Fatalf("tags of a missing fleet: %v", err)
	}
	_, err = c.TagResource(ctx, &robomaker.TagResourceInput{ResourceArn: aws.String(rmARN),
		Tags: map[string]string{"x": "1", "y": "2"}})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidParameterException" {
		t.Fatalf("a fourth tag: %v", err)
	}
	if out, _ := c.ListTagsForResource(ctx, &robomaker.ListTagsForResourceInput{ResourceArn: aws.String(rmARN)}); len(out.Tags) != 2 {
		t.Fatalf("a refused tagging stored tags: %v", out.Tags)
	}
}
