package awsapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/robomaker"
	"github.com/aws/smithy-go"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
)

// authServer serves three RoboMaker operations that record the access key of each call that reaches them.
func authServer(t *testing.T, auth *awsapi.SigV4) (url string, keys *[]string) {
	t.Helper()
	var seen []string
	h := awsapi.NewHandler(awsapi.Options{Auth: auth})
	ok := func(r *awsapi.Request) (any, error) {
		seen = append(seen, r.AccessKey)
		return map[string]any{}, nil
	}
	if err := h.Register(awsapi.Service{Model: rmModel(t), Invalid: invalidParameter}, map[string]awsapi.Operation{
		"CreateFleet": {Handle: ok}, "UntagResource": {Handle: ok}, "ListTagsForResource": {Handle: ok},
	}); err != nil {
		t.Fatal(err)
	}
	return serve(t, h).URL, &seen
}

func apiCode(err error) (string, int) {
	var api smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &api) || !errors.As(err, &re) {
		return "", 0
	}
	return api.ErrorCode(), re.HTTPStatusCode()
}

func TestSigV4AcceptsSDKSignatures(t *testing.T) {
	url, keys := authServer(t, &awsapi.SigV4{Keys: map[string]string{"AK": "SK"}})
	c := sdk(url, "AK", "SK")
	ctx := context.Background()
	if _, err := c.CreateFleet(ctx, &robomaker.CreateFleetInput{Name: aws.String("f"),
		Tags: map[string]string{"with space": "a  b"}}); err != nil {
		t.Fatalf("CreateFleet: %v", err)
	}
	// An escaped ARN in the path and repeated, escaped query parameters must canonicalise as the SDK signs them.
	arn := "arn:aws:robomaker:us-east-1:123456789012:deployment-fleet/My_Fleet/1539894765711"
	if _, err := c.UntagResource(ctx, &robomaker.UntagResourceInput{ResourceArn: aws.String(arn),
		TagKeys: []string{"b key", "a+key", "a/key", "k=v:w"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	if _, err := c.ListTagsForResource(ctx, &robomaker.ListTagsForResourceInput{ResourceArn: aws.String(arn)}); err != nil {
		t.Fatalf("ListTagsForResource: %v", err)
	}
	if strings.Join(*keys, ",") != "AK,AK,AK" {
		t.Fatalf("calls that reached the operations: %v, want three by AK", *keys)
	}
}

func TestSigV4Rejects(t *testing.T) {
	url, keys := authServer(t, &awsapi.SigV4{Keys: map[string]string{"AK": "SK"}})
	ctx := context.Background()
	in := &robomaker.CreateFleetInput{Name: aws.String("f")}

	_, err := sdk(url, "AK", "wrong").CreateFleet(ctx, in)
	if code, status := apiCode(err); code != "InvalidSignatureException" || status != 403 {
		t.Errorf("wrong secret: %v", err)
	}
	_, err = sdk(url, "NOPE", "SK").CreateFleet(ctx, in)
	if code, status := apiCode(err); code != "UnrecognizedClientException" || status != 403 {
		t.Errorf("unknown key: %v", err)
	}
	status, hdr, _ := rawCall(t, "POST", url+"/createFleet", `{"name":"f"}`, nil)
	if status != 403 || hdr.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: %d %v", status, hdr)
	}
	status, hdr, _ = rawCall(t, "POST", url+"/createFleet", `{"name":"f"}`,
		map[string]string{"Authorization": "Basic dXNlcjpwYXNz"})
	if status != 400 || hdr.Get("X-Amzn-ErrorType") != "IncompleteSignatureException" {
		t.Errorf("not SigV4: %d %v", status, hdr)
	}

	// A body changed after signing no longer matches.
	body := `{"name":"f"}`
	req, _ := http.NewRequest("POST", url+"/createFleet", strings.NewReader(body))
	sum := sha256.Sum256([]byte(body))
	signer := v4.NewSigner()
	if err := signer.SignHTTP(ctx, aws.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"}, req,
		hex.EncodeToString(sum[:]), "robomaker", "us-east-1", clock.Real{}.Now()); err != nil {
		t.Fatal(err)
	}
	req.Body = http.NoBody
	tampered := req.Clone(ctx)
	tampered.Body, tampered.ContentLength = readCloser(`{"name":"g"}`), int64(len(`{"name":"g"}`))
	resp, err := http.DefaultClient.Do(tampered)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidSignatureException" {
		t.Errorf("tampered body: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	// The same signature over the original body passes.
	good := req.Clone(ctx)
	good.Body, good.ContentLength = readCloser(body), int64(len(body))
	resp, err = http.DefaultClient.Do(good)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("hand-signed request: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	if strings.Join(*keys, ",") != "AK" {
		t.Errorf("calls that reached the operation: %v, want one by AK", *keys)
	}
}

func readCloser(s string) *nopCloser { return &nopCloser{bytes.NewReader([]byte(s))} }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func TestSigV4ClockSkew(t *testing.T) {
	// The signer uses the wall clock; the verifier is an hour ahead of it.
	fake := clocktest.New(clock.Real{}.Now().Add(time.Hour))
	url, _ := authServer(t, &awsapi.SigV4{Keys: map[string]string{"AK": "SK"}, Clock: fake})
	_, err := sdk(url, "AK", "SK").CreateFleet(context.Background(), &robomaker.CreateFleetInput{Name: aws.String("f")})
	var api smithy.APIError
	if code, status := apiCode(err); code != "InvalidSignatureException" || status != 403 ||
		!errors.As(err, &api) || !strings.HasPrefix(api.ErrorMessage(), "Signature expired") {
		t.Fatalf("skewed request: %v", err)
	}
	// A negative MaxSkew turns the check off.
	url, _ = authServer(t, &awsapi.SigV4{Keys: map[string]string{"AK": "SK"}, Clock: fake, MaxSkew: -1})
	if _, err := sdk(url, "AK", "SK").CreateFleet(context.Background(), &robomaker.CreateFleetInput{Name: aws.String("f")}); err != nil {
		t.Fatalf("unchecked skew: %v", err)
	}
}

func TestUnsignedAcceptedWithoutAuth(t *testing.T) {
	url, keys := authServer(t, nil)
	if status, _, body := rawCall(t, "POST", url+"/createFleet", `{"name":"f"}`, nil); status != 200 {
		t.Fatalf("unsigned without auth = %d %s", status, body)
	}
	// Without Auth a signature is not checked, but the access key it names is still reported.
	if _, err := sdk(url, "AK", "any").CreateFleet(context.Background(), &robomaker.CreateFleetInput{Name: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(*keys, ",") != ",AK" {
		t.Fatalf("access keys = %q", *keys)
	}
}
