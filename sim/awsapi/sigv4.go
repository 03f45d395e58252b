package awsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// SigV4 verifies AWS Signature Version 4 on requests (`fleetlab serve --auth sigv4`). Only header signatures
// (the Authorization header the SDKs and the CLI send) are accepted; presigned URLs are not.
type SigV4 struct {
	// Keys maps access key ids to secret access keys.
	Keys map[string]string
	// Clock is what X-Amz-Date is compared with (nil: the real clock). It is the wall clock of the caller, not the
	// simulation's clock: clients sign with their wall clock whatever the simulated time.
	Clock clock.Clock
	// MaxSkew is how far X-Amz-Date may be from Clock (zero: 15 minutes, as AWS allows; negative: unchecked).
	MaxSkew time.Duration
}

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDateForm  = "20060102T150405Z"
)

// credential is the parsed Authorization header.
type credential struct {
	AccessKey, Date, Region, Service string
	SignedHeaders                    []string
	Signature                        string
}

// parseAuthorization reads "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/robomaker/aws4_request,
// SignedHeaders=host;x-amz-date, Signature=…". An absent header is a zero credential and no error.
func parseAuthorization(h string) (credential, error) {
	var c credential
	if h == "" {
		return c, nil
	}
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != sigAlgorithm {
		return c, fmt.Errorf("authorization header is not %s", sigAlgorithm)
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "Credential":
			scope := strings.Split(v, "/")
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return credential{}, fmt.Errorf("credential %q is not AK/date/region/service/aws4_request", v)
			}
			c.AccessKey, c.Date, c.Region, c.Service = scope[0], scope[1], scope[2], scope[3]
		case "SignedHeaders":
			c.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			c.Signature = v
		}
	}
	if c.AccessKey == "" || len(c.SignedHeaders) == 0 || c.Signature == "" {
		return credential{}, fmt.Errorf("authorization header lacks Credential, SignedHeaders or Signature")
	}
	return c, nil
}

// Verify checks r's signature over body and returns the error to send, or nil when it is valid.
func (v *SigV4) Verify(r *http.Request, body []byte) *Error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return errMissingAuth()
	}
	c, err := parseAuthorization(h)
	if err != nil {
		return errIncompleteSignature(err.Error())
	}
	secret, ok := v.Keys[c.AccessKey]
	if !ok {
		return errUnknownKey()
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse(amzDateForm, amzDate)
	if err != nil {
		return errIncompleteSignature("X-Amz-Date is missing or not in the form 20060102T150405Z")
	}
	if !strings.HasPrefix(amzDate, c.Date) {
		return errIncompleteSignature("the credential scope date does not match X-Amz-Date")
	}
	if skew := v.maxSkew(); skew > 0 {
		now := clock.Or(v.Clock).Now()
		if d := now.Sub(signedAt); d > skew || d < -skew {
			return NewError("InvalidSignatureException", http.StatusForbidden,
				"Signature expired: %s is now earlier than %s (%s - %s.)", amzDate,
				now.Add(-skew).UTC().Format(amzDateForm), now.UTC().Format(amzDateForm), skew)
		}
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	switch payload {
	case "":
		payload = actual
	case "UNSIGNED-PAYLOAD":
	default:
		if payload != actual {
			return NewError("XAmzContentSHA256Mismatch", http.StatusBadRequest,
				"The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	}
	canonical := canonicalRequest(r, c.SignedHeaders, payload)
	digest := sha256.Sum256([]byte(canonical))
	scope := strings.Join([]string{c.Date, c.Region, c.Service, "aws4_request"}, "/")
	toSign := strings.Join([]string{sigAlgorithm, amzDate, scope, hex.EncodeToString(digest[:])}, "\n")
	key := hmacSHA256([]byte("AWS4"+secret), c.Date)
	key = hmacSHA256(key, c.Region)
	key = hmacSHA256(key, c.Service)
	key = hmacSHA256(key, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(c.Signature)) {
		return errBadSignature()
	}
	return nil
}

func (v *SigV4) maxSkew() time.Duration {
	if v.MaxSkew == 0 {
		return 15 * time.Minute
	}
	return v.MaxSkew
}

// canonicalRequest builds the SigV4 canonical request as the AWS SDKs do for every service but S3: the path is
// the escaped request path escaped once more.
func canonicalRequest(r *http.Request, signed []string, payloadHash string) string {
	uri := r.URL.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	uri = httpbinding.EscapePath(uri, false)

	headers := append([]string(nil), signed...)
	sort.Strings(headers)
	var hb strings.Builder
	for _, name := range headers {
		var values []string
		switch name {
		case "host":
			values = []string{r.Host}
		case "content-length":
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		default:
			values = r.Header.Values(name)
		}
		for i, val := range values {
			values[i] = collapseSpaces(val)
		}
		hb.WriteString(name)
		hb.WriteByte(':')
		hb.WriteString(strings.Join(values, ","))
		hb.WriteByte('\n')
	}
	return strings.Join([]string{r.Method, uri, canonicalQuery(r.URL.Query()), hb.String(),
		strings.Join(headers, ";"), payloadHash}, "\n")
}

// canonicalQuery sorts parameters by key then value, each escaped with %20 for spaces.
func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var params []kv
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	for k, vs := range q {
		for _, v := range vs {
			params = append(params, kv{esc(k), esc(v)})
		}
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// collapseSpaces trims spaces and folds runs of them into one, as the canonical header value requires.
func collapseSpaces(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.Trim(s, " ") {
		if r == ' ' {
			if !space {
				b.WriteRune(r)
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
