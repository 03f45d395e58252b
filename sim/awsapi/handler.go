// Package awsapi is the wire layer every AWS dialect of the deployment service shares: one http.Handler serving
// all of them on one listener, routing, the one error writer (Error.Write), body limits, model-driven request
// validation, optional SigV4 verification, the cloud-fault intercept, and what each dialect needs beside its own
// semantics: the record, ARN, tag, index and idempotency store (Records), the shared tags API (Tagging),
// timestamps and pagination tokens. A dialect is a Dialect to the service, which builds each one of its list;
// the thing registry one dialect keeps (IoT's) is a Registry to the others.
//
// A dialect describes itself with a Service (its botocore model and how it spells its errors) and a map from
// operation name to Operation. Methods, paths, success statuses and where each input member travels all come from
// the model, so a dialect's code is the semantics only:
//
//	h := awsapi.NewHandler(awsapi.Options{})
//	err := h.Register(awsapi.Service{Model: m, Invalid: invalidParameter}, map[string]awsapi.Operation{
//		"CreateFleet": {Handle: svc.createFleet},
//	})
//
// One endpoint serves everything, as users know it from LocalStack. Routing, in order:
//  1. A request signed for S3 (credential scope s3, in the Authorization header or a presigned query) goes to
//     the S3 handler (Options.S3), whatever its path: S3's path-style /{bucket}/{key} collides with every path.
//  2. A mounted prefix (the device API's /things/, /artifacts/) takes the request as is, unless it is signed for
//     a dialect (IoT's control plane shares /things/{thingName} with the device API, which devices sign for
//     iot-jobs-data or iotdata, or do not sign).
//  3. POST / with X-Amz-Target goes to the awsJson1_1 service whose target prefix it names.
//  4. Otherwise the method and path pick the operation. When several services serve the path (/tags/{arn} is
//     robomaker's, greengrass's and appconfig's), the SigV4 credential scope's service decides; an unsigned
//     request is routed by the service field of an ARN in the path.
//  5. An unsigned request that no operation's method and path match is S3's.
//
// Once routed, a request is shown to Options.Intercept (a cloud fault), with its dialect and operation; a mounted
// handler's request is too when the handler names its operations (OperationNamer). An answer the intercept gives
// is written in the serving API's own error form.
//
// With Options.Auth set, every request is signed (SigV4): the signature is checked on the headers before the
// body is read, and the payload after (see SigV4). Then the body is read (size-limited), the input document bound
// and validated against the model, and the operation called. Every response carries x-amzn-RequestId.
package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/fleetlab/fleetlab/sim/awsapi/model"
)

// DefaultMaxBody is the request body limit when neither the operation, the service nor the handler sets one.
const DefaultMaxBody = 1 << 20

// Options configure a Handler.
type Options struct {
	// Auth, when set, requires a valid SigV4 signature by one of its keys on every AWS request. When nil,
	// signatures are not checked and unsigned requests are accepted.
	Auth *SigV4
	// MaxBody is the default request body limit in bytes (DefaultMaxBody when zero).
	MaxBody int64
	// IDs makes the request ids (nil: RandomIDs).
	IDs *IDs
	// S3 serves the S3 REST API (the artifact store): requests signed for s3, and unsigned requests that match
	// no operation. Nil: such requests get the dialects' unknown-operation answer.
	S3 http.Handler
	// Intercept, when set, is asked about every request routed to an operation of a dialect, before its
	// signature is checked: an answer it gives (a cloud fault) is sent in the dialect's error form instead of,
	// or after, the operation's (see Fault).
	Intercept Intercept
}

// Service describes a dialect to the Handler.
type Service struct {
	// Model is the service's botocore model; routes, input bindings and validation come from it. Required.
	Model *model.Model
	// Name is the SigV4 signing name (default: the model's signingName or endpointPrefix).
	Name string
	// Aliases are other signing names clients sign the dialect's requests with (the AWS CLI signs IoT with
	// execute-api); they route and verify as Name does.
	Aliases []string
	// Dialect is the dialect's name as the service lists it and an Intercept sees it (default: Name); two
	// dialects that sign alike (Greengrass V1 and V2) differ here.
	Dialect string
	// ARNService is the service field of the dialect's ARNs, used to route unsigned requests on shared paths
	// (default: Name).
	ARNService string
	// MessageMember is the error body member that carries the message, as the model spells it (default
	// "message").
	MessageMember string
	// Invalid returns the dialect's validation error (a body too large, malformed JSON, a broken constraint).
	// Required.
	Invalid func(msg string) *Error
	// Unknown returns the dialect's answer to a request that names no operation (default UnknownOperation).
	Unknown func(method, path string) *Error
	// Internal returns the dialect's internal error for an unexpected failure (default
	// InternalServerException, HTTP 500, without the failure's text).
	Internal func(err error) *Error
	// Unavailable and Throttled return the dialect's server error and throttling error, as an injected fault
	// answers (defaults: InternalServerException, HTTP 500; ThrottlingException, HTTP 429).
	Unavailable, Throttled func(msg string) *Error
	// MaxBody is the body limit for the service's operations (zero: the handler's).
	MaxBody int64
}

// Operation is a dialect's implementation of one modeled operation.
type Operation struct {
	// Handle serves the operation. It returns the output (JSON-encoded with the operation's success status),
	// a *Response for full control, or an error: an *Error is sent as is, anything else as the service's
	// internal error.
	Handle func(*Request) (any, error)
	// MaxBody overrides the body limit for this operation (zero: the service's).
	MaxBody int64
}

// Handle is an Operation served by f with the service's body limit.
func Handle(f func(*Request) (any, error)) Operation { return Operation{Handle: f} }

// Request is one validated call of an operation.
type Request struct {
	// Operation is the model's operation name; Service the signing name of the service serving it.
	Operation string
	Service   string
	// ID is the request id sent back in x-amzn-RequestId.
	ID string
	// HTTP is the underlying request; its body has been read into Body.
	HTTP *http.Request
	Body []byte
	// Input is the input document, validated against the model: body members plus members bound to the URI,
	// the query string and headers, under their member names. Numbers are json.Number.
	Input map[string]any
	// AccessKey is the access key id of a signed request (verified when the handler checks signatures).
	AccessKey string

	invalid func(string) *Error
}

// Context returns the request's context.
func (r *Request) Context() context.Context { return r.HTTP.Context() }

// Decode fills v (a pointer to a struct with JSON tags named after the model's members) from the input document.
func (r *Request) Decode(v any) error {
	data, err := json.Marshal(r.Input)
	if err != nil {
		return fmt.Errorf("encode input: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return r.invalid("request does not decode: " + err.Error())
	}
	return nil
}

// Response is an operation result with an explicit status and headers.
type Response struct {
	// Status is the HTTP status (zero: the operation's success status).
	Status int
	Header http.Header
	// Body is JSON-encoded, unless it is []byte, which is sent as is; nil sends no body.
	Body any
}

// Handler serves every registered dialect and mounted handler on one listener. Register and Mount before
// serving; a Handler is safe for concurrent use.
type Handler struct {
	opts Options

	mu       sync.RWMutex
	services []*service
	routes   []*route
	targets  map[string]*route
	mounts   []mount
}

type service struct {
	Service
	contentType string
}

// signs reports whether name is a signing name of the service.
func (s *service) signs(name string) bool { return name == s.Name || slices.Contains(s.Aliases, name) }

type route struct {
	svc *service
	op  *model.Operation
	uri model.URI
	Operation
}

type mount struct {
	prefix  string
	handler http.Handler
	opts    MountOptions
}

// MountOptions say how a mounted handler's requests are signed when the Handler checks signatures
// (Options.Auth). The zero value is the device API's rule (Mount): a device key under a device scope
// (DeviceServices).
type MountOptions struct {
	// Services, when set, make the mount an AWS API of its own signing names (CloudWatch's "monitoring"): its
	// requests are signed under one of them, with an operator's key, or with a device's key for the operations
	// of DeviceOperations[Dialect] — the operation of a request is what Operation names.
	Services  []string
	Dialect   string
	Operation func(*http.Request) string
	// MaxBody bounds a body read for its signature (one that declares no hash; default 64 KiB, the device API's).
	MaxBody int64
	// WriteError writes a refused request's error as the API spells its errors (default: the JSON form).
	WriteError func(w http.ResponseWriter, status int, code, message string)
}

// NewHandler returns an empty Handler.
func NewHandler(opts Options) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.IDs == nil {
		opts.IDs = RandomIDs()
	}
	return &Handler{opts: opts, targets: map[string]*route{}}
}

// Register adds a dialect and its operations. Every name in ops must be an operation of the model; a service
// registered twice, or a route the service already has, is an error.
func (h *Handler) Register(s Service, ops map[string]Operation) error {
	if s.Model == nil {
		return errors.New("register service: no model")
	}
	if s.Invalid == nil {
		return errors.New("register service: no Invalid error")
	}
	if s.Name == "" {
		s.Name = s.Model.Metadata.Signing()
	}
	if s.ARNService == "" {
		s.ARNService = s.Name
	}
	if s.Dialect == "" {
		s.Dialect = s.Name
	}
	if s.Unavailable == nil {
		s.Unavailable = func(msg string) *Error {
			return NewError("InternalServerException", http.StatusInternalServerError, "%s", msg)
		}
	}
	if s.Throttled == nil {
		s.Throttled = func(msg string) *Error {
			return NewError("ThrottlingException", http.StatusTooManyRequests, "%s", msg)
		}
	}
	if s.MessageMember == "" {
		s.MessageMember = "message"
	}
	if s.Unknown == nil {
		s.Unknown = UnknownOperation
	}
	if s.Internal == nil {
		s.Internal = func(error) *Error {
			return NewError("InternalServerException", http.StatusInternalServerError, "Internal server error")
		}
	}
	svc := &service{Service: s, contentType: "application/json"}
	jsonRPC := s.Model.Metadata.Protocol == model.ProtocolJSON
	if jsonRPC {
		svc.contentType = "application/x-amz-json-" + s.Model.Metadata.JSONVersion
		if s.Model.Metadata.JSONVersion == "" {
			svc.contentType = "application/x-amz-json-1.1"
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, other := range h.services {
		if other.Model == s.Model || (other.Name == s.Name && other.Model.Metadata.APIVersion == s.Model.Metadata.APIVersion) {
			return fmt.Errorf("register service %s: already registered", s.Name)
		}
	}
	names := make([]string, 0, len(ops))
	for name := range ops {
		names = append(names, name)
	}
	sort.Strings(names)
	var routes []*route
	targets := map[string]*route{}
	for _, name := range names {
		o := ops[name]
		op := s.Model.Operation(name)
		if op == nil {
			return fmt.Errorf("register service %s: operation %s is not in the model", s.Name, name)
		}
		if o.Handle == nil {
			return fmt.Errorf("register service %s: operation %s has no handler", s.Name, name)
		}
		rt := &route{svc: svc, op: op, Operation: o}
		if jsonRPC {
			target := s.Model.Metadata.TargetPrefix + "." + name
			if _, dup := h.targets[target]; dup {
				return fmt.Errorf("register service %s: target %s is taken", s.Name, target)
			}
			targets[target] = rt
			continue
		}
		uri, err := model.ParseURI(op.HTTP.RequestURI)
		if err != nil {
			return fmt.Errorf("register service %s: operation %s: %w", s.Name, name, err)
		}
		rt.uri = uri
		for _, other := range append(h.routes, routes...) {
			if other.svc.Name == s.Name && other.op.HTTP.Method == op.HTTP.Method &&
				other.op.HTTP.RequestURI == op.HTTP.RequestURI {
				return fmt.Errorf("register service %s: %s %s is already served by %s", s.Name,
					op.HTTP.Method, op.HTTP.RequestURI, other.op.Name)
			}
		}
		routes = append(routes, rt)
	}
	h.services = append(h.services, svc)
	h.routes = append(h.routes, routes...)
	for t, rt := range targets {
		h.targets[t] = rt
	}
	return nil
}

// Mount serves every request whose path starts with prefix (which must begin and end with '/') by handler,
// before the AWS routing: the device API and the artifact downloads live beside the AWS APIs this way. A request
// under prefix signed for a registered dialect is the dialect's, not the mount's. With Options.Auth set, a
// mounted request must be signed by one of Auth's DeviceKeys with a device scope (DeviceServices); unsigned ones
// are refused.
func (h *Handler) Mount(prefix string, handler http.Handler) error {
	return h.MountWith(prefix, handler, MountOptions{})
}

// MountWith is Mount with the signing rule of opts.
func (h *Handler) MountWith(prefix string, handler http.Handler, opts MountOptions) error {
	if !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") || prefix == "/" {
		return fmt.Errorf("mount %q: prefix must be /name/", prefix)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.mounts {
		if m.prefix == prefix {
			return fmt.Errorf("mount %q: already mounted", prefix)
		}
	}
	h.mounts = append(h.mounts, mount{prefix: prefix, handler: handler, opts: opts})
	// Longest prefix first, so /things/x/ can be mounted inside /things/.
	sort.Slice(h.mounts, func(i, j int) bool { return len(h.mounts[i].prefix) > len(h.mounts[j].prefix) })
	return nil
}

// ServeHTTP routes and serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.RoutesToS3(r) {
		h.serveS3(w, r)
		return
	}
	if m := h.mountOf(r); m != nil && !h.signedForDialect(r) {
		serve := func(w http.ResponseWriter) { h.serveMounted(w, r, m) }
		if f := h.interceptedMount(m.handler, r); f != nil {
			writeFault(w, f, mountedErrors, serve)
			return
		}
		serve(w)
		return
	}

	id := h.opts.IDs.UUID()
	w.Header().Set("x-amzn-RequestId", id)
	cred, _ := parseAuthorization(r.Header.Get("Authorization"))

	rt, labels, svc, aerr := h.route(r, cred.Service)
	if aerr != nil {
		member, ctype := "message", "application/json"
		if svc != nil {
			member, ctype = svc.MessageMember, svc.contentType
		}
		aerr.Write(w, member, ctype)
		return
	}
	serve := func(w http.ResponseWriter) { h.serve(w, r, rt, labels, id, cred.AccessKey) }
	if f := h.intercepted(rt, r); f != nil {
		writeFault(w, f, rt.svc, serve)
		return
	}
	serve(w)
}

// serve calls the operation of a routed request: the signature check, the body, binding and validation, the
// operation, and its answer.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt *route, labels map[string]string, id,
	accessKey string) {
	svc := rt.svc
	fail := func(e *Error) { e.Write(w, svc.MessageMember, svc.contentType) }

	// The signature first, on the headers, so an unsigned or badly signed request costs no body read.
	var signed *signedRequest
	if a := h.opts.Auth; a != nil {
		var e *authError
		if signed, e = a.check(r, a.keysFor(svc.Dialect, rt.op.Name), append([]string{svc.Name}, svc.Aliases...), false); e != nil {
			fail(e.json())
			return
		}
	}
	limit := firstPositive(rt.MaxBody, svc.MaxBody, h.opts.MaxBody)
	if r.ContentLength > limit {
		fail(svc.Invalid(fmt.Sprintf("request body is larger than the limit of %d bytes", limit)))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		fail(svc.Invalid("request body could not be read: " + err.Error()))
		return
	}
	if int64(len(body)) > limit {
		fail(svc.Invalid(fmt.Sprintf("request body is larger than the limit of %d bytes", limit)))
		return
	}
	if signed != nil {
		if e := signed.payload(body); e != nil {
			fail(e.json())
			return
		}
	}
	input, err := svc.Model.Bind(rt.op, r, labels, body)
	if err != nil {
		fail(svc.Invalid(err.Error()))
		return
	}
	if err := svc.Model.ValidateInput(rt.op.Name, input); err != nil {
		fail(svc.Invalid(err.Error()))
		return
	}
	req := &Request{Operation: rt.op.Name, Service: svc.Name, ID: id, HTTP: r, Body: body, Input: input,
		AccessKey: accessKey, invalid: svc.Invalid}
	out, err := rt.Handle(req)
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) {
			ae = svc.Internal(err)
		}
		fail(ae)
		return
	}
	writeOutput(w, out, rt.op.HTTP.Status(), svc.contentType)
}

// signedForDialect reports whether r is signed (in its Authorization header or a presigned query) with the
// credential scope of a registered dialect; a device scope is never a dialect's.
func (h *Handler) signedForDialect(r *http.Request) bool {
	var scope string
	if auth := r.Header.Get("Authorization"); auth != "" {
		cred, err := parseAuthorization(auth)
		if err != nil {
			return false
		}
		scope = cred.Service
	} else if c := strings.Split(r.URL.Query().Get("X-Amz-Credential"), "/"); len(c) == 5 {
		scope = c[3]
	}
	if scope == "" || slices.Contains(DeviceServices, scope) {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, s := range h.services {
		if s.signs(scope) {
			return true
		}
	}
	return false
}

// mounted returns the handler mounted at r's path, or nil.
func (h *Handler) mounted(r *http.Request) http.Handler {
	if m := h.mountOf(r); m != nil {
		return m.handler
	}
	return nil
}

// mountOf returns the mount of r's path, or nil.
func (h *Handler) mountOf(r *http.Request) *mount {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for i := range h.mounts {
		if strings.HasPrefix(r.URL.Path, h.mounts[i].prefix) {
			m := h.mounts[i]
			return &m
		}
	}
	return nil
}

// RoutesToS3 reports whether r is an S3 request (routing rules 1 and 5 of the package comment): signed for s3,
// or unsigned and matching no mount and no operation. It is false when there is no S3 handler.
func (h *Handler) RoutesToS3(r *http.Request) bool {
	if h.opts.S3 == nil {
		return false
	}
	auth := r.Header.Get("Authorization")
	if auth != "" {
		cred, err := parseAuthorization(auth)
		return err == nil && cred.Service == "s3"
	}
	if c := r.URL.Query().Get("X-Amz-Credential"); c != "" {
		scope := strings.Split(c, "/")
		return len(scope) == 5 && scope[3] == "s3"
	}
	if h.mounted(r) != nil || (r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") != "") {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	path, query := r.URL.EscapedPath(), r.URL.Query()
	for _, rt := range h.routes {
		if _, ok := rt.uri.Match(path); ok && rt.uri.MatchQuery(query) && rt.op.HTTP.Method == r.Method {
			return false
		}
	}
	return true
}

// S3 returns the S3 side of the handler alone, with its signature check: for a listener of its own.
func (h *Handler) S3() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.opts.S3 == nil {
			http.NotFound(w, r)
			return
		}
		h.serveS3(w, r)
	})
}

// route finds the operation for r. On failure it returns the error to send and the service whose spelling it
// should use (nil for the generic one).
func (h *Handler) route(r *http.Request, signing string) (*route, map[string]string, *service, *Error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	byName := func(name string) *service {
		for _, s := range h.services {
			if s.signs(name) {
				return s
			}
		}
		return nil
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" && r.Method == http.MethodPost && r.URL.Path == "/" {
		if rt, ok := h.targets[target]; ok {
			return rt, nil, nil, nil
		}
		prefix, _, _ := strings.Cut(target, ".")
		for _, s := range h.services {
			if s.Model.Metadata.Protocol == model.ProtocolJSON && s.Model.Metadata.TargetPrefix == prefix {
				return nil, nil, s, s.Unknown(r.Method, target)
			}
		}
		return nil, nil, byName(signing), UnknownOperation(r.Method, target)
	}

	type match struct {
		rt     *route
		labels map[string]string
	}
	var onPath, matches []match
	path := r.URL.EscapedPath()
	query := r.URL.Query()
	for _, rt := range h.routes {
		labels, ok := rt.uri.Match(path)
		if !ok || !rt.uri.MatchQuery(query) {
			continue
		}
		onPath = append(onPath, match{rt, labels})
		if rt.op.HTTP.Method == r.Method {
			matches = append(matches, match{rt, labels})
		}
	}
	if len(matches) == 0 {
		svc := byName(signing)
		if svc == nil && len(onPath) > 0 {
			svc = onPath[0].rt.svc
		}
		if svc != nil {
			return nil, nil, svc, svc.Unknown(r.Method, r.URL.Path)
		}
		return nil, nil, nil, UnknownOperation(r.Method, r.URL.Path)
	}
	keep := func(pred func(match) bool) {
		var kept []match
		for _, m := range matches {
			if pred(m) {
				kept = append(kept, m)
			}
		}
		if len(kept) > 0 {
			matches = kept
		}
	}
	if signing != "" {
		keep(func(m match) bool { return m.rt.svc.signs(signing) })
	} else {
		keep(func(m match) bool {
			for _, v := range m.labels {
				if a, err := ParseARN(v); err == nil && a.Service == m.rt.svc.ARNService {
					return true
				}
			}
			return false
		})
	}
	// Among what is left, the first registered service, then its most specific route.
	first := func() *service {
		for _, s := range h.services {
			for _, m := range matches {
				if m.rt.svc == s {
					return s
				}
			}
		}
		return matches[0].rt.svc
	}()
	keep(func(m match) bool { return m.rt.svc == first })
	best := matches[0]
	for _, m := range matches[1:] {
		if specificity(m.rt.uri) > specificity(best.rt.uri) {
			best = m
		}
	}
	return best.rt, best.labels, nil, nil
}

// specificity orders routes matching the same path: more literal segments win, and a greedy label loses.
func specificity(u model.URI) int {
	n := u.Literals() * 2
	if len(u.Segments) > 0 && !u.Segments[len(u.Segments)-1].Greedy {
		n++
	}
	return n
}

func writeOutput(w http.ResponseWriter, out any, status int, contentType string) {
	var header http.Header
	body := out
	if resp, ok := out.(*Response); ok {
		header, body = resp.Header, resp.Body
		if resp.Status != 0 {
			status = resp.Status
		}
	}
	for k, vs := range header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	var data []byte
	switch b := body.(type) {
	case nil:
		if status != http.StatusNoContent {
			data = []byte("{}")
		}
	case []byte:
		data = b
	default:
		var err error
		data, err = json.Marshal(b)
		if err != nil {
			NewError("InternalServerException", http.StatusInternalServerError, "response does not encode").
				Write(w, "message", contentType)
			return
		}
	}
	if data != nil && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func firstPositive(vs ...int64) int64 {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return DefaultMaxBody
}
