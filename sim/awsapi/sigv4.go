package awsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/fleetlab/fleetlab/sim/clock"
)

// SigV4 verifies AWS Signature Version 4 on requests (`fleetlab serve --auth sigv4`). Only header signatures
// (the Authorization header the SDKs and the CLI send) are accepted; presigned URLs are not.
//
// Operators and devices hold different keys: Keys sign the control-plane APIs and S3, DeviceKeys the device
// API (the IoT Jobs data plane, the notify channel and artifact downloads), with the credential scope the AWS
// SDKs use for the IoT Jobs data plane (iot-jobs-data, or iotdata), and the few dialect operations a device's own
// software calls (DeviceOperations). A device key opens nothing else, so a robot cannot start a deployment; an
// operator key is not a device's.
//
// The signature is checked on the headers before any of the body is read: the Authorization header, the key,
// X-Amz-Date and its skew, the credential scope's service and, when the request declares its payload hash
// (X-Amz-Content-Sha256, as S3 clients always do), the signature itself. The payload is checked against the
// declared hash as it is read. A request that declares no hash (the SDKs' JSON APIs) is signed over the hash of
// its body, so its signature can only be computed once the body — size-limited — has been read.
type SigV4 struct {
	// Keys maps the operators' access key ids to secret access keys.
	Keys map[string]string
	// DeviceKeys maps the devices' access key ids to secret access keys.
	DeviceKeys map[string]string
	// Clock is what X-Amz-Date is compared with (nil: the real clock). It is the wall clock of the caller, not the
	// simulation's clock: clients sign with their wall clock whatever the simulated time.
	Clock clock.Clock
	// MaxSkew is how far X-Amz-Date may be from Clock (zero: 15 minutes, as AWS allows; negative: unchecked).
	MaxSkew time.Duration
}

// DeviceServices are the credential scopes a device may sign with: the IoT Jobs data plane's signing name, and
// the IoT data plane's, which some device SDKs use for every IoT data-plane call.
var DeviceServices = []string{"iot-jobs-data", "iotdata"}

// DeviceOperations are, by dialect, the operations a device key may call beside the operators' keys, signed with
// the dialect's own scope: the ones a device's own software calls on the cloud. The Greengrass nucleus resolves
// its components with ResolveComponentCandidates under its device certificate; an AppConfig device takes its
// configuration from AppConfigData (StartConfigurationSession, GetLatestConfiguration, scope appconfig) and puts
// its health metric in CloudWatch (PutMetricData, scope monitoring). A device key opens no other operation of the
// dialect.
var DeviceOperations = map[string][]string{
	"greengrassv2": {"ResolveComponentCandidates"},
	"appconfig":    {"StartConfigurationSession", "GetLatestConfiguration", "PutMetricData"},
}

// keysFor returns the keys that may sign a call of a dialect's operation: the operators', and the devices' too
// for a DeviceOperations one.
func (v *SigV4) keysFor(dialect, operation string) map[string]string {
	if len(v.DeviceKeys) == 0 || !slices.Contains(DeviceOperations[dialect], operation) {
		return v.Keys
	}
	keys := make(map[string]string, len(v.Keys)+len(v.DeviceKeys))
	for k, s := range v.Keys {
		keys[k] = s
	}
	for k, s := range v.DeviceKeys {
		keys[k] = s
	}
	return keys
}

// Payload hashes a request may declare instead of the hex SHA-256 of its body.
const (
	unsignedPayload  = "UNSIGNED-PAYLOAD"
	streamingSigned  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingPrefix  = "STREAMING-"
)

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

// signedRequest is a request whose signature was checked as far as its headers allow (SigV4.check); payload
// finishes the check with the body.
type signedRequest struct {
	r         *http.Request
	c         credential
	key       []byte // the signing key of the credential's scope
	amzDate   string
	scope     string
	declared  string // X-Amz-Content-Sha256 as sent; "" when absent
	s3        bool
	signature string // verified when checked, the seed of chunk signatures
	checked   bool   // the signature is verified (declared hash)
}

// check checks r's signature on its headers against keys, for a route whose credential scope must be one of
// services; s3 selects S3's canonical form (the path is not escaped again) and S3's requirement that the payload
// hash be declared. When the payload hash is declared, the signature is verified here, before the body is read.
func (v *SigV4) check(r *http.Request, keys map[string]string, services []string, s3 bool) (*signedRequest, *authError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, &authError{kind: authMissing}
	}
	c, err := parseAuthorization(h)
	if err != nil {
		return nil, &authError{kind: authMalformed, msg: err.Error()}
	}
	secret, ok := keys[c.AccessKey]
	if !ok {
		return nil, &authError{kind: authUnknownKey}
	}
	if !slices.Contains(services, c.Service) {
		return nil, &authError{kind: authScope, msg: fmt.Sprintf("Credential should be scoped to correct "+
			"service: '%s'.", services[0])}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse(amzDateForm, amzDate)
	if err != nil {
		return nil, &authError{kind: authMalformed, msg: "X-Amz-Date is missing or not in the form 20060102T150405Z"}
	}
	if !strings.HasPrefix(amzDate, c.Date) {
		return nil, &authError{kind: authMalformed, msg: "the credential scope date does not match X-Amz-Date"}
	}
	if skew := v.maxSkew(); skew > 0 {
		now := clock.Or(v.Clock).Now()
		if d := now.Sub(signedAt); d > skew || d < -skew {
			return nil, &authError{kind: authExpired, msg: fmt.Sprintf(
				"Signature expired: %s is now earlier than %s (%s - %s.)", amzDate,
				now.Add(-skew).UTC().Format(amzDateForm), now.UTC().Format(amzDateForm), skew)}
		}
	}
	key := hmacSHA256([]byte("AWS4"+secret), c.Date)
	key = hmacSHA256(key, c.Region)
	key = hmacSHA256(key, c.Service)
	key = hmacSHA256(key, "aws4_request")
	s := &signedRequest{r: r, c: c, key: key, amzDate: amzDate, s3: s3,
		scope:    strings.Join([]string{c.Date, c.Region, c.Service, "aws4_request"}, "/"),
		declared: r.Header.Get("X-Amz-Content-Sha256")}
	switch {
	case s.declared != "":
		if !s.verify(s.declared) {
			return nil, &authError{kind: authBadSignature}
		}
		s.checked = true
	case s3:
		return nil, &authError{kind: authMalformed, msg: "Missing required header for this request: x-amz-content-sha256"}
	}
	return s, nil
}

// needsBody reports whether the signature can only be checked with the body's hash (none was declared).
func (s *signedRequest) needsBody() bool { return !s.checked }

// payload finishes the check with the whole body: its hash must be the declared one, or, when none was
// declared, the signature must be over it. Unsigned and streaming payloads are not hashed here.
func (s *signedRequest) payload(body []byte) *authError {
	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	switch {
	case !s.checked:
		if !s.verify(actual) {
			return &authError{kind: authBadSignature}
		}
		s.checked = true
	case s.declared == unsignedPayload || strings.HasPrefix(s.declared, streamingPrefix):
	case s.declared != actual:
		return &authError{kind: authPayload}
	}
	return nil
}

// verify computes the signature over payloadHash and compares it with the request's.
func (s *signedRequest) verify(payloadHash string) bool {
	canonical := canonicalRequest(s.r, s.c.SignedHeaders, payloadHash, s.s3)
	digest := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{sigAlgorithm, s.amzDate, s.scope, hex.EncodeToString(digest[:])}, "\n")
	want := hex.EncodeToString(hmacSHA256(s.key, toSign))
	if !hmac.Equal([]byte(want), []byte(s.c.Signature)) {
		return false
	}
	s.signature = want
	return true
}

// ChunkSigner checks the signatures of an aws-chunked body whose chunks are signed one by one
// (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, and its -TRAILER variant), each signature chained to
// the one before, the first to the request's. The S3 handler gets one with the request (ChunkSignerOf) when the
// service checks signatures.
type ChunkSigner interface {
	// Chunk checks the signature of the next chunk, whose data has the SHA-256 sum (the final, empty chunk
	// included).
	Chunk(sum [sha256.Size]byte, signature string) bool
	// Trailer checks the signature of the trailers, given as they are signed: "name:value\n" for each.
	Trailer(canonical []byte, signature string) bool
}

// chunkSigner chains chunk signatures from the request's seed signature.
type chunkSigner struct {
	s    *signedRequest
	prev string
}

func (c *chunkSigner) Chunk(sum [sha256.Size]byte, signature string) bool {
	empty := sha256.Sum256(nil)
	toSign := strings.Join([]string{sigAlgorithm + "-PAYLOAD", c.s.amzDate, c.s.scope, c.prev,
		hex.EncodeToString(empty[:]), hex.EncodeToString(sum[:])}, "\n")
	return c.next(toSign, signature)
}

func (c *chunkSigner) Trailer(canonical []byte, signature string) bool {
	sum := sha256.Sum256(canonical)
	toSign := strings.Join([]string{sigAlgorithm + "-TRAILER", c.s.amzDate, c.s.scope, c.prev,
		hex.EncodeToString(sum[:])}, "\n")
	return c.next(toSign, signature)
}

func (c *chunkSigner) next(toSign, signature string) bool {
	want := hex.EncodeToString(hmacSHA256(c.s.key, toSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return false
	}
	c.prev = want
	return true
}

func (v *SigV4) maxSkew() time.Duration {
	if v.MaxSkew == 0 {
		return 15 * time.Minute
	}
	return v.MaxSkew
}

// canonicalRequest builds the SigV4 canonical request as the AWS SDKs do: for every service but S3 the path is
// the escaped request path escaped once more; for S3 it is the escaped path as sent.
func canonicalRequest(r *http.Request, signed []string, payloadHash string, s3 bool) string {
	uri := r.URL.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	if !s3 {
		uri = httpbinding.EscapePath(uri, false)
	}

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
