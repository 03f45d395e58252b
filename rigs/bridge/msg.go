// Package bridge carries the device API over a framed console line (package frame): on the board, a Client
// gives the agent an http.Client whose requests travel as messages, a notify channel, and a way to send its
// events; in the lab, a Bridge answers those messages by calling the service's device API over HTTP and
// streams the answers back, downloads in chunks.
//
// Messages, each one whole in the session's stream: a type byte, the channel (a uvarint naming one request or
// subscription), then the body.
//
//	board → lab   'Q' request   JSON head {m, p, h} + "\n" + the request body
//	              'C' cancel    the board gave up on the channel
//	              'S' subscribe open the notify channel
//	              'V' event     an agent event, as package eventlog writes it
//	lab → board   'A' answer    JSON head {s, h}: the status and headers (for 'S', 101 once subscribed)
//	              'B' body      the next chunk of the answer's body
//	              'E' end       the end of the answer or subscription; a body is the error that ended it
//	              'N' notify    a wire.Notify, as JSON
//
// Only the board's own thing's device API and artifact downloads pass the bridge: the board can reach nothing
// else of the service.
package bridge

import (
	"encoding/binary"
	"errors"
	"net/http"
)

// Message types.
const (
	msgRequest   = 'Q'
	msgCancel    = 'C'
	msgSubscribe = 'S'
	msgEvent     = 'V'
	msgAnswer    = 'A'
	msgBody      = 'B'
	msgEnd       = 'E'
	msgNotify    = 'N'
)

// ChunkSize is the most body bytes one 'B' message carries.
const ChunkSize = 4096

// head is a request's method, path (with query) and headers.
type head struct {
	Method string      `json:"m"`
	Path   string      `json:"p"`
	Header http.Header `json:"h,omitempty"`
}

// answer is an answer's status and headers.
type answer struct {
	Status int         `json:"s"`
	Header http.Header `json:"h,omitempty"`
}

// requestHeaders and answerHeaders are the headers that cross the line; the rest are the HTTP hop's.
var (
	requestHeaders = []string{"Content-Type", "Range", "Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"}
	answerHeaders  = []string{"Content-Type", "Content-Length", "Content-Range", "Etag", "X-Amzn-Errortype", "Accept-Ranges", "Last-Modified"}
)

func pick(h http.Header, names []string) http.Header {
	out := http.Header{}
	for _, n := range names {
		if v := h.Values(n); len(v) > 0 {
			out[http.CanonicalHeaderKey(n)] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func encode(typ byte, ch uint64, body []byte) []byte {
	m := make([]byte, 0, 1+binary.MaxVarintLen64+len(body))
	m = append(m, typ)
	m = binary.AppendUvarint(m, ch)
	return append(m, body...)
}

var errShort = errors.New("bridge: short message")

func decode(m []byte) (typ byte, ch uint64, body []byte, err error) {
	if len(m) < 2 {
		return 0, 0, nil, errShort
	}
	ch, n := binary.Uvarint(m[1:])
	if n <= 0 {
		return 0, 0, nil, errShort
	}
	return m[0], ch, m[1+n:], nil
}
