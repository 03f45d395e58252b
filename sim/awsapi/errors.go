package awsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Error is an AWS error response. Operations return one to answer with a modeled error; any other error becomes
// the service's internal error (HTTP 500).
//
// On the wire it is the X-Amzn-ErrorType header carrying Code, and a JSON body with __type, the message under
// the member name the service's model uses ("message" or "Message"), and any extra members: both generations of
// the AWS SDK for Go and the CLI decode that into the typed exception (restJson1 reads the header first,
// awsJson1_1 under SDK v1 reads only __type).
type Error struct {
	// Code is the exception shape name, e.g. "ResourceNotFoundException".
	Code string
	// Status is the HTTP status.
	Status int
	// Message is the human-readable text.
	Message string
	// MessageMember is the body member that carries Message; empty means the service's default.
	MessageMember string
	// Fields are extra modeled members (resourceId, resourceType, quotaCode, …).
	Fields map[string]any
	// Header holds header-bound members such as Retry-After.
	Header http.Header
}

// Error returns "Code: Message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// NewError returns an Error with a formatted message.
func NewError(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// With returns a copy of e with an extra body member.
func (e *Error) With(member string, value any) *Error {
	c := *e
	c.Fields = make(map[string]any, len(e.Fields)+1)
	for k, v := range e.Fields {
		c.Fields[k] = v
	}
	c.Fields[member] = value
	return &c
}

// Write sends e: the one error writer of the service, for every dialect, the device API and the cloud faults.
// The header X-Amzn-ErrorType carries Code; the JSON body carries __type, Message under messageMember (the
// member as the model spells it; "" means "message"), and Fields; the Content-Type is contentType (the
// protocol's; "" means application/json). A zero Status is 400.
func (e *Error) Write(w http.ResponseWriter, messageMember, contentType string) {
	if messageMember == "" {
		messageMember = "message"
	}
	if contentType == "" {
		contentType = "application/json"
	}
	body := make(map[string]any, len(e.Fields)+2)
	for k, v := range e.Fields {
		body[k] = v
	}
	member := e.MessageMember
	if member == "" {
		member = messageMember
	}
	body["__type"] = e.Code
	body[member] = e.Message
	data, err := json.Marshal(body)
	if err != nil {
		// Fields that do not encode are a programming error; keep the code and message.
		data, _ = json.Marshal(map[string]any{"__type": e.Code, member: e.Message})
	}
	h := w.Header()
	for k, vs := range e.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	h.Set("X-Amzn-ErrorType", e.Code)
	h.Set("Content-Type", contentType)
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// Response is e as Write would send it, for answers that are not written to an http.ResponseWriter: a response
// rendered ahead of time onto a raw connection, a frame relayed to a board.
func (e *Error) Response(messageMember, contentType string) *http.Response {
	var rec recorder
	e.Write(&rec, messageMember, contentType)
	return &http.Response{Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)),
		StatusCode: rec.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: rec.header,
		Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), ContentLength: int64(rec.body.Len())}
}

// recorder keeps what Write sends.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *recorder) WriteHeader(status int) { r.status = status }

func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// UnknownOperation is the default answer to a request no operation of a service matches:
// UnknownOperationException with HTTP 404.
func UnknownOperation(method, path string) *Error {
	return NewError("UnknownOperationException", http.StatusNotFound, "No operation matches %s %s",
		method, sanitize(path))
}

// sanitize keeps request text in messages printable and short.
func sanitize(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
