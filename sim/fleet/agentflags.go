package fleet

import (
	"time"

	"github.com/fleetlab/fleetlab/sim/agent"
)

// AgentTimingFlags returns the fleetlab-agent flags that give an agent o's timings — polling, retries, request
// and script timeouts, stop grace — for the backends that run the agent as a program. Zero durations give no
// flag: the agent's defaults hold.
func AgentTimingFlags(o agent.Options) []string {
	var args []string
	for _, fl := range []struct {
		name string
		v    time.Duration
	}{{"poll-min", o.PollMin}, {"poll-max", o.PollMax}, {"retry-base", o.RetryBase},
		{"retry-max", o.RetryMax}, {"request-timeout", o.RequestTimeout},
		{"script-timeout", o.ScriptTimeout}, {"stop-grace", o.StopGrace}} {
		if fl.v != 0 {
			args = append(args, "--"+fl.name, fl.v.String())
		}
	}
	return args
}

// CredentialFlags returns the fleetlab-agent flags that make an agent sign its requests with c; none for nil.
func CredentialFlags(c *agent.Credentials) []string {
	if c == nil {
		return nil
	}
	return []string{"--access-key", c.AccessKey, "--secret-key", c.SecretKey}
}
