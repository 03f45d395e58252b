// Package agenttest provides what tests of the device agent need: Service, a fake device API with
// per-thing job queues, an artifact store and the notify channel, served over HTTP or in memory, recording
// every update and armed with faults; CheckGoroutines and LeakTest, the module's goroutine leak check; and
// Eventually, a wait on a condition with a deadline.
//
// Service is a second implementation of the data plane beside sim/deviceapi, kept because the agent's
// tests arm it with faults the service has no place for (a cut or corrupted download, refused notify
// connections, refused updates) and drive executions without an engine. TestContract holds it to the
// service: the same conversation, through the agent's own transports, must get the same answers from both.
package agenttest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/gorilla/websocket"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// Service is a fake device API. It keeps, per thing, an ordered list of executions with the IoT Jobs data
// plane's semantics (QUEUED → IN_PROGRESS → terminal; StartNext returns the IN_PROGRESS one first, then the
// oldest QUEUED), an artifact store with ETags and ranges, and notify subscribers. It is safe for
// concurrent use.
type Service struct {
	clock clock.Clock

	mu      sync.Mutex
	things  map[string][]*execution
	objects map[string][]byte
	fetches []Fetch
	subs    map[string]map[*subscriber]struct{}

	updateFaults []APIFault
	cuts         map[string]int64
	corrupt      map[string]bool
	refuseNotify bool
}

type execution struct {
	wire.JobExecution
	updates []wire.UpdateJobExecutionRequest
}

// Fetch records one artifact request.
type Fetch struct {
	Bucket, Key string
	Offset      int64
}

// APIFault is an error answer the service gives instead of doing the call.
type APIFault struct {
	Status int
	Code   string
}

// New returns an empty service whose timestamps come from c (nil: the real clock).
func New(c clock.Clock) *Service {
	return &Service{
		clock:   clock.Or(c),
		things:  map[string][]*execution{},
		objects: map[string][]byte{},
		subs:    map[string]map[*subscriber]struct{}{},
		cuts:    map[string]int64{},
		corrupt: map[string]bool{},
	}
}

// ETag returns the ETag the service gives an object with body b: its quoted hex MD5.
func ETag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// Doc returns a job document in its envelope: payload, of the job kind named kind.
func Doc(kind string, payload any) []byte {
	p, err := json.Marshal(payload)
	if err != nil {
		panic(err) // the document is plain data
	}
	b, err := json.Marshal(wire.Document{Kind: kind, Payload: p})
	if err != nil {
		panic(err)
	}
	return b
}

// PutObject stores an artifact and returns its ETag.
func (s *Service) PutObject(bucket, key string, body []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[bucket+"/"+key] = bytes.Clone(body)
	return ETag(body)
}

// Enqueue queues an execution of jobID for thing with the job document doc and notifies the thing.
// Enqueuing a job again (after it ended) queues a new execution with the next execution number.
func (s *Service) Enqueue(thing, jobID string, doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(1)
	for _, e := range s.things[thing] {
		if e.JobID == jobID {
			n = e.ExecutionNumber + 1
		}
	}
	now := s.clock.Now().Unix()
	s.things[thing] = append(s.things[thing], &execution{JobExecution: wire.JobExecution{
		JobID: jobID, ThingName: thing, Status: wire.StatusQueued, QueuedAt: now, LastUpdatedAt: now,
		VersionNumber: 1, ExecutionNumber: n, JobDocument: string(doc),
	}})
	s.notifyLocked(thing, wire.Notify{Kind: wire.NotifyPending, JobID: jobID})
}

// End moves an execution to a terminal status from the service side (CANCELED, TIMED_OUT, REMOVED) and,
// for a cancel or a removal, notifies the thing (a "canceled" notify, as the device API sends for both).
func (s *Service) End(thing, jobID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.latestLocked(thing, jobID); e != nil {
		e.Status = status
		e.VersionNumber++
		if status == wire.StatusCanceled || status == wire.StatusRemoved {
			s.notifyLocked(thing, wire.Notify{Kind: wire.NotifyCanceled, JobID: jobID})
		}
	}
}

// Execution returns the latest execution of jobID for thing.
func (s *Service) Execution(thing, jobID string) (wire.JobExecution, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.latestLocked(thing, jobID)
	if e == nil {
		return wire.JobExecution{}, false
	}
	out := e.JobExecution
	out.StatusDetails = cloneMap(e.StatusDetails)
	return out, true
}

// Updates returns the UpdateJobExecution requests the service accepted for the latest execution of jobID.
func (s *Service) Updates(thing, jobID string) []wire.UpdateJobExecutionRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.latestLocked(thing, jobID)
	if e == nil {
		return nil
	}
	out := make([]wire.UpdateJobExecutionRequest, len(e.updates))
	for i, u := range e.updates {
		u.StatusDetails = cloneMap(u.StatusDetails)
		out[i] = u
	}
	return out
}

// Steps returns the statusDetails step of each accepted update of jobID, with consecutive repeats (retries,
// progress reports) folded, and the final status appended.
func (s *Service) Steps(thing, jobID string) []string {
	var out []string
	for _, u := range s.Updates(thing, jobID) {
		step := u.StatusDetails[wire.DetailStep]
		if u.Status != wire.StatusInProgress {
			step = u.Status + "(" + step + ")"
		}
		if len(out) == 0 || out[len(out)-1] != step {
			out = append(out, step)
		}
	}
	return out
}

// FailUpdates makes the next len(faults) UpdateJobExecution calls, of any thing, answer with the faults in
// order instead of being applied.
func (s *Service) FailUpdates(faults ...APIFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateFaults = append(s.updateFaults, faults...)
}

// CutObject makes the next fetch of bucket/key drop the connection after sending n bytes of its body.
func (s *Service) CutObject(bucket, key string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cuts[bucket+"/"+key] = n
}

// CorruptObject makes every fetch of bucket/key deliver its bytes with the first one flipped, under the
// object's true ETag: a transfer corrupted on the way.
func (s *Service) CorruptObject(bucket, key string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt[bucket+"/"+key] = on
}

// Fetches returns the artifact requests received, in order.
func (s *Service) Fetches() []Fetch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Fetch(nil), s.fetches...)
}

// RefuseNotify makes new notify connections fail with 503 while on.
func (s *Service) RefuseNotify(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseNotify = on
}

// Subscribers returns how many notify connections thing has open.
func (s *Service) Subscribers(thing string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs[thing])
}

// DropSubscribers closes every notify connection, as a service restart does.
func (s *Service) DropSubscribers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for thing, set := range s.subs {
		for sub := range set {
			sub.close()
		}
		delete(s.subs, thing)
	}
}

// Close drops every notify connection; the handlers serving them return.
func (s *Service) Close() { s.DropSubscribers() }

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Service) latestLocked(thing, jobID string) *execution {
	list := s.things[thing]
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].JobID == jobID {
			return list[i]
		}
	}
	return nil
}

// The data plane, shared by the HTTP handler and the in-memory transport.

func (s *Service) pending(thing string) wire.GetPendingJobExecutionsResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := wire.GetPendingJobExecutionsResponse{InProgressJobs: []wire.JobExecutionSummary{}, QueuedJobs: []wire.JobExecutionSummary{}}
	for _, e := range s.things[thing] {
		sum := wire.JobExecutionSummary{JobID: e.JobID, QueuedAt: e.QueuedAt, StartedAt: e.StartedAt, LastUpdatedAt: e.LastUpdatedAt,
			VersionNumber: e.VersionNumber, ExecutionNumber: e.ExecutionNumber}
		switch e.Status {
		case wire.StatusInProgress:
			out.InProgressJobs = append(out.InProgressJobs, sum)
		case wire.StatusQueued:
			out.QueuedJobs = append(out.QueuedJobs, sum)
		}
	}
	return out
}

func (s *Service) startNext(thing string, req wire.StartNextPendingJobExecutionRequest) *wire.JobExecution {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next *execution
	for _, e := range s.things[thing] {
		if e.Status == wire.StatusInProgress {
			next = e
			break
		}
		if e.Status == wire.StatusQueued && next == nil {
			next = e
		}
	}
	if next == nil {
		return nil
	}
	if next.Status == wire.StatusQueued {
		now := s.clock.Now().Unix()
		next.Status, next.StartedAt, next.LastUpdatedAt = wire.StatusInProgress, now, now
		next.VersionNumber++
		if req.StatusDetails != nil {
			next.StatusDetails = cloneMap(req.StatusDetails)
		}
	}
	out := next.JobExecution
	out.StatusDetails = cloneMap(next.StatusDetails)
	return &out
}

func (s *Service) describe(thing, jobID string) (*wire.JobExecution, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.latestLocked(thing, jobID)
	if e == nil {
		return nil, apiErr(404, wire.ErrResourceNotFound, "no execution of job "+jobID+" for "+thing)
	}
	out := e.JobExecution
	out.StatusDetails = cloneMap(e.StatusDetails)
	return &out, nil
}

var detailKey = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)

func (s *Service) update(thing, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.updateFaults) > 0 {
		f := s.updateFaults[0]
		s.updateFaults = s.updateFaults[1:]
		return wire.UpdateJobExecutionResponse{}, apiErr(f.Status, f.Code, "injected")
	}
	e := s.latestLocked(thing, jobID)
	if e == nil {
		return wire.UpdateJobExecutionResponse{}, apiErr(404, wire.ErrResourceNotFound, "no execution of job "+jobID+" for "+thing)
	}
	switch req.Status {
	case wire.StatusInProgress, wire.StatusSucceeded, wire.StatusFailed, wire.StatusRejected:
	default:
		return wire.UpdateJobExecutionResponse{}, apiErr(400, wire.ErrInvalidRequest, "status "+req.Status+" cannot be set by a device")
	}
	for k, v := range req.StatusDetails {
		if !detailKey.MatchString(k) {
			return wire.UpdateJobExecutionResponse{}, apiErr(400, wire.ErrInvalidRequest, "statusDetails key "+strconv.Quote(k))
		}
		if n := len(v); n < 1 || n > 1024 || strings.IndexFunc(v, func(r rune) bool { return unicode.Is(unicode.C, r) }) >= 0 {
			return wire.UpdateJobExecutionResponse{}, apiErr(400, wire.ErrInvalidRequest, "statusDetails value of "+k)
		}
	}
	if req.ExecutionNumber != nil && *req.ExecutionNumber != e.ExecutionNumber {
		return wire.UpdateJobExecutionResponse{}, apiErr(404, wire.ErrResourceNotFound, "no such execution number")
	}
	if e.Status != wire.StatusQueued && e.Status != wire.StatusInProgress {
		return wire.UpdateJobExecutionResponse{}, apiErr(410, wire.ErrTerminalState, "execution is "+e.Status)
	}
	e.Status = req.Status
	if req.StatusDetails != nil {
		e.StatusDetails = cloneMap(req.StatusDetails)
	}
	e.VersionNumber++
	e.LastUpdatedAt = s.clock.Now().Unix()
	req.StatusDetails = cloneMap(req.StatusDetails)
	e.updates = append(e.updates, req)
	return wire.UpdateJobExecutionResponse{ExecutionState: &wire.JobExecutionState{Status: e.Status, StatusDetails: cloneMap(e.StatusDetails), VersionNumber: e.VersionNumber}}, nil
}

// object returns the bytes to serve for a fetch from offset, and how many of them to send before the
// connection drops (-1: all).
func (s *Service) object(bucket, key string, offset int64) (body []byte, size int64, etag string, cut int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := bucket + "/" + key
	s.fetches = append(s.fetches, Fetch{Bucket: bucket, Key: key, Offset: offset})
	b, ok := s.objects[id]
	if !ok {
		return nil, 0, "", 0, apiErr(404, "NoSuchKey", "no object "+id)
	}
	etag, size = ETag(b), int64(len(b))
	if s.corrupt[id] && len(b) > 0 {
		b = bytes.Clone(b)
		b[0] ^= 0xff
	}
	if offset >= size && size > 0 {
		return nil, size, etag, 0, apiErr(416, "InvalidRange", "range not satisfiable")
	}
	cut = -1
	if n, ok := s.cuts[id]; ok {
		cut = n
		delete(s.cuts, id)
	}
	return b[offset:], size, etag, cut, nil
}

func apiErr(status int, code, msg string) error {
	return &agent.APIError{Status: status, Code: code, Message: msg}
}

// notifyLocked sends n to thing's subscribers; a subscriber too slow to take it misses it (polling covers).
func (s *Service) notifyLocked(thing string, n wire.Notify) {
	for sub := range s.subs[thing] {
		select {
		case sub.ch <- n:
		default:
		}
	}
}

type subscriber struct {
	ch   chan wire.Notify
	once sync.Once
}

func (sub *subscriber) close() { sub.once.Do(func() { close(sub.ch) }) }

// subscribe registers a subscriber and greets it; it is closed by unsubscribe or DropSubscribers.
func (s *Service) subscribe(thing string) (*subscriber, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuseNotify {
		return nil, apiErr(503, wire.ErrServiceUnavailable, "notify refused")
	}
	sub := &subscriber{ch: make(chan wire.Notify, 16)}
	if s.subs[thing] == nil {
		s.subs[thing] = map[*subscriber]struct{}{}
	}
	s.subs[thing][sub] = struct{}{}
	sub.ch <- wire.Notify{Kind: wire.NotifyHello}
	return sub, nil
}

func (s *Service) unsubscribe(thing string, sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs[thing], sub)
	sub.close()
}

// Handler serves the data plane, the artifact store and the notify channel over HTTP, with errors encoded
// as the device API does (X-Amzn-ErrorType and a JSON body with __type and message).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{thing}/jobs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.pending(r.PathValue("thing")))
	})
	mux.HandleFunc("PUT /things/{thing}/jobs/{job}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("job") != "$next" {
			writeErr(w, apiErr(405, wire.ErrInvalidRequest, "PUT is for $next only"))
			return
		}
		var req wire.StartNextPendingJobExecutionRequest
		if !readJSON(w, r, &req) {
			return
		}
		writeJSON(w, wire.StartNextPendingJobExecutionResponse{Execution: s.startNext(r.PathValue("thing"), req)})
	})
	mux.HandleFunc("GET /things/{thing}/jobs/{job}", func(w http.ResponseWriter, r *http.Request) {
		e, err := s.describe(r.PathValue("thing"), r.PathValue("job"))
		if err != nil {
			writeErr(w, err)
			return
		}
		if r.URL.Query().Get("includeJobDocument") != "true" {
			e.JobDocument = ""
		}
		writeJSON(w, wire.DescribeJobExecutionResponse{Execution: e})
	})
	mux.HandleFunc("POST /things/{thing}/jobs/{job}", func(w http.ResponseWriter, r *http.Request) {
		var req wire.UpdateJobExecutionRequest
		if !readJSON(w, r, &req) {
			return
		}
		out, err := s.update(r.PathValue("thing"), r.PathValue("job"), req)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /things/{thing}/notify", s.serveNotify)
	mux.HandleFunc("GET /artifacts/{bucket}/{key...}", s.serveObject)
	return mux
}

func (s *Service) serveObject(w http.ResponseWriter, r *http.Request) {
	var offset int64
	if rng := r.Header.Get("Range"); rng != "" {
		v, ok := strings.CutPrefix(rng, "bytes=")
		v, ok2 := strings.CutSuffix(v, "-")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || !ok2 || err != nil || n < 0 {
			writeErr(w, apiErr(416, "InvalidRange", "unsupported range "+rng))
			return
		}
		offset = n
	}
	body, size, etag, cut, err := s.object(r.PathValue("bucket"), r.PathValue("key"), offset)
	if err != nil {
		if size > 0 {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		}
		writeErr(w, err)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if offset > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", offset, size-1, size))
		w.WriteHeader(http.StatusPartialContent)
	}
	if cut >= 0 && cut < int64(len(body)) {
		w.Write(body[:cut])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	w.Write(body)
}

func (s *Service) serveNotify(w http.ResponseWriter, r *http.Request) {
	thing := r.PathValue("thing")
	sub, err := s.subscribe(thing)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer s.unsubscribe(thing, sub)
	var up websocket.Upgrader
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	gone := make(chan struct{})
	go func() { // reads only to notice the agent going away
		defer close(gone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for {
		select {
		case n, ok := <-sub.ch:
			if !ok {
				conn.Close()
				<-gone
				return
			}
			if err := conn.WriteJSON(n); err != nil {
				conn.Close()
				<-gone
				return
			}
		case <-gone:
			return
		}
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil && len(b) > 0 {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		writeErr(w, apiErr(400, wire.ErrInvalidRequest, "body: "+err.Error()))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	ae, ok := err.(*agent.APIError)
	if !ok {
		ae = &agent.APIError{Status: 500, Code: "InternalFailure", Message: err.Error()}
	}
	w.Header().Set("X-Amzn-ErrorType", ae.Code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.Status)
	json.NewEncoder(w).Encode(wire.Error{Type: ae.Code, Message: ae.Message})
}

// Transport returns an in-memory Transport for thing over the same queues, artifacts and notify channel
// as the HTTP handler, with the same faults.
func (s *Service) Transport(thing string) agent.Transport { return &memTransport{s: s, thing: thing} }

type memTransport struct {
	s     *Service
	thing string
}

func (t *memTransport) Pending(ctx context.Context) (wire.GetPendingJobExecutionsResponse, error) {
	if err := ctx.Err(); err != nil {
		return wire.GetPendingJobExecutionsResponse{}, err
	}
	return t.s.pending(t.thing), nil
}

func (t *memTransport) StartNext(ctx context.Context, req wire.StartNextPendingJobExecutionRequest) (*wire.JobExecution, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return t.s.startNext(t.thing, req), nil
}

func (t *memTransport) Describe(ctx context.Context, jobID string) (*wire.JobExecution, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return t.s.describe(t.thing, jobID)
}

func (t *memTransport) Update(ctx context.Context, jobID string, req wire.UpdateJobExecutionRequest) (wire.UpdateJobExecutionResponse, error) {
	if err := ctx.Err(); err != nil {
		return wire.UpdateJobExecutionResponse{}, err
	}
	return t.s.update(t.thing, jobID, req)
}

func (t *memTransport) Fetch(ctx context.Context, bucket, key string, offset int64) (*agent.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	body, size, etag, cut, err := t.s.object(bucket, key, offset)
	if err != nil {
		return nil, err
	}
	var r io.Reader = bytes.NewReader(body)
	if cut >= 0 && cut < int64(len(body)) {
		r = io.MultiReader(bytes.NewReader(body[:cut]), errReader{agent.Transient(io.ErrUnexpectedEOF)})
	}
	return &agent.Object{Body: io.NopCloser(r), Offset: offset, Size: size, ETag: etag}, nil
}

func (t *memTransport) Subscribe(ctx context.Context) (agent.Notifications, error) {
	sub, err := t.s.subscribe(t.thing)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	unsubscribe := func() { once.Do(func() { t.s.unsubscribe(t.thing, sub) }) }
	context.AfterFunc(ctx, unsubscribe)
	return &chanStream{ch: sub.ch, close: unsubscribe}, nil
}

// chanStream is a notify channel read from a Go channel, which is closed when the connection ends.
type chanStream struct {
	ch    <-chan wire.Notify
	close func()
}

func (s *chanStream) Next(ctx context.Context) (wire.Notify, error) {
	select {
	case n, ok := <-s.ch:
		if !ok {
			return n, errors.New("notify channel closed")
		}
		return n, nil
	case <-ctx.Done():
		return wire.Notify{}, ctx.Err()
	}
}

func (s *chanStream) Close() { s.close() }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
