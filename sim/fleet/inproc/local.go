package inproc

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/deviceapi"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/fleet/link"
)

// localTransport is TransportInProcess: the agent's own HTTP transport, over a client whose requests pass the
// robot's link and are served in process, and a notify channel taken in process through the same client, so
// that the service's middleware sees the notify request as it sees a websocket's.
type localTransport struct {
	*agent.HTTPTransport
	client    *http.Client
	notifyURL string
	shaper    *link.Shaper
}

var _ agent.Transport = (*localTransport)(nil)

func newLocalTransport(endpoint, thing string, rt http.RoundTripper, s *link.Shaper) (*localTransport, error) {
	client := &http.Client{Transport: s.Transport(rt)}
	ht, err := agent.NewHTTPTransport(endpoint, thing, client)
	if err != nil {
		return nil, err
	}
	url := strings.TrimRight(endpoint, "/") + fmt.Sprintf(wire.PathNotify, thing)
	return &localTransport{HTTPTransport: ht, client: client, notifyURL: url, shaper: s}, nil
}

// Subscribe implements agent.Transport: a GET of the notify path that the device API answers by subscribing
// in process. The stream ends when ctx ends, the service closes, or the link is cut.
func (t *localTransport) Subscribe(ctx context.Context) (agent.Notifications, error) {
	l := &deviceapi.LocalNotify{}
	req, err := http.NewRequestWithContext(deviceapi.WithLocalNotify(ctx, l), http.MethodGet, t.notifyURL, nil)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		l.Close()
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, agent.Transient(fmt.Errorf("notify: %w", err))
	}
	resp.Body.Close()
	q := l.Queue()
	if resp.StatusCode != http.StatusOK || q == nil {
		l.Close()
		code := resp.Header.Get("X-Amzn-ErrorType")
		if code == "" {
			code = http.StatusText(resp.StatusCode)
		}
		return nil, &agent.APIError{Status: resp.StatusCode, Code: code, Message: "notify refused"}
	}
	return newLinkStream(q, l.Close, t.shaper), nil
}
