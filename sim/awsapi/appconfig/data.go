package appconfig

import (
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strconv"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	wire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/appconfig"
	"github.com/fleetlab/fleetlab/sim/store"
)

// ClientIDHeader is the header a device may send with StartConfigurationSession to be bucketed by its own
// identifier (its thing name) rather than by its session, so it sees the same side of a rollout across
// sessions. The AWS SDKs do not send it; their clients are bucketed by session.
const ClientIDHeader = wire.ClientIDHeader

// TokenLifetime is how long a configuration token can be used.
const TokenLifetime = 24 * time.Hour

const bucketSessions = "appconfig.sessions" // session id

// session is an AppConfigData configuration session.
type session struct {
	ID            string `json:"ID"`
	ApplicationId string `json:"ApplicationId"`
	EnvironmentId string `json:"EnvironmentId"`
	ProfileId     string `json:"ProfileId"`
	Client        string `json:"Client"`
	Interval      int    `json:"Interval"`
	// Seq is the number of the one token of the session that is valid now.
	Seq int `json:"Seq"`
	// Served is the deployment (app/env/number) whose configuration the client last received ("" none yet).
	Served string `json:"Served,omitempty"`
}

// token is what a configuration token carries.
type token struct {
	Session string `json:"s"`
	Seq     int    `json:"n"`
	Issued  int64  `json:"t"` // unix ms
	Polled  bool   `json:"p,omitempty"`
}

func encodeToken(t token) string {
	data, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(data)
}

func dataBadRequest(msg string) *awsapi.Error {
	return awsapi.NewError("BadRequestException", http.StatusBadRequest, "%s", msg)
}

func tokenProblem(problem, msg string) *awsapi.Error {
	return dataBadRequest(msg).With("Reason", "InvalidParameters").With("Details", map[string]any{
		"InvalidParameters": map[string]any{"ConfigurationToken": map[string]string{"Problem": problem}}})
}

func dataNotFound(resourceType, format string, args ...any) *awsapi.Error {
	return awsapi.NewError("ResourceNotFoundException", http.StatusNotFound, format, args...).
		With("ResourceType", resourceType)
}

// resolve finds an application, environment and profile by id or by name.
func (s *Service) resolve(tx store.Tx, appIdent, envIdent, profIdent string) (app, env, prof string, err error) {
	err = awsapi.Each(tx, bucketApps, func(a *appRec) error {
		if app == "" && (a.Id == appIdent || a.Name == appIdent) {
			app = a.Id
		}
		return nil
	})
	if err != nil {
		return
	}
	if app == "" {
		return "", "", "", dataNotFound("Application", "Application %s not found", appIdent)
	}
	err = tx.ForEach(bucketEnvs, app+"/", func(k string, _ []byte) error {
		e, err := awsapi.LoadKey[envRec](tx, bucketEnvs, k)
		if err == nil && env == "" && (e.Id == envIdent || e.Name == envIdent) {
			env = e.Id
		}
		return err
	})
	if err != nil {
		return
	}
	if env == "" {
		return "", "", "", dataNotFound("Environment", "Environment %s not found", envIdent)
	}
	err = tx.ForEach(bucketProfiles, app+"/", func(k string, _ []byte) error {
		p, err := awsapi.LoadKey[profileRec](tx, bucketProfiles, k)
		if err == nil && prof == "" && (p.Id == profIdent || p.Name == profIdent) {
			prof = p.Id
		}
		return err
	})
	if err == nil && prof == "" {
		err = dataNotFound("ConfigurationProfile", "Configuration profile %s not found", profIdent)
	}
	return
}

func (s *Service) startSession(r *awsapi.Request) (any, error) {
	var in struct {
		ApplicationIdentifier                string `json:"ApplicationIdentifier"`
		EnvironmentIdentifier                string `json:"EnvironmentIdentifier"`
		ConfigurationProfileIdentifier       string `json:"ConfigurationProfileIdentifier"`
		RequiredMinimumPollIntervalInSeconds int    `json:"RequiredMinimumPollIntervalInSeconds"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	se := session{ID: s.ids.UUID(), Interval: cmpOr(in.RequiredMinimumPollIntervalInSeconds, 60)}
	se.Client = r.HTTP.Header.Get(ClientIDHeader)
	if se.Client == "" {
		se.Client = se.ID
	}
	err := s.store.Batch(func(tx store.Tx) (err error) {
		se.ApplicationId, se.EnvironmentId, se.ProfileId, err = s.resolve(tx, in.ApplicationIdentifier,
			in.EnvironmentIdentifier, in.ConfigurationProfileIdentifier)
		if err != nil {
			return err
		}
		se.Seq = 1
		return awsapi.PutJSON(tx, bucketSessions, se.ID, &se)
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"InitialConfigurationToken": encodeToken(token{Session: se.ID, Seq: 1,
		Issued: now.UnixMilli()})}, nil
}

func (s *Service) getLatestConfiguration(r *awsapi.Request) (any, error) {
	raw, _ := r.Input["ConfigurationToken"].(string)
	now := s.clock.Now()
	var t token
	data, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || json.Unmarshal(data, &t) != nil || t.Session == "" {
		return nil, tokenProblem("Corrupted", "The configuration token is corrupted")
	}
	if now.Sub(time.UnixMilli(t.Issued)) > TokenLifetime {
		return nil, tokenProblem("Expired", "The configuration token has expired")
	}
	s.watch()
	var se *session
	err = s.store.View(func(tx store.Tx) (err error) {
		se, err = awsapi.LoadKey[session](tx, bucketSessions, t.Session)
		return err
	})
	if err != nil {
		return nil, err
	}
	if se == nil {
		return nil, tokenProblem("Corrupted", "The configuration token names no session")
	}
	if t.Seq != se.Seq {
		return nil, tokenProblem("Expired", "The configuration token has already been used")
	}
	if t.Polled && now.Before(time.UnixMilli(t.Issued).Add(time.Duration(se.Interval)*time.Second)) {
		return nil, tokenProblem("PollIntervalNotSatisfied",
			"The configuration was polled before the session's minimum poll interval of "+
				strconv.Itoa(se.Interval)+" seconds")
	}
	d, err := s.served(se.ApplicationId, se.EnvironmentId, se.ProfileId, se.Client)
	if err != nil {
		return nil, err
	}
	served := ""
	if d != nil {
		served = d.key()
	}
	body, ctype, label := []byte{}, "", ""
	if served != se.Served && d != nil {
		body, ctype, label = d.Content, d.ContentType, d.VersionLabel
		if d.ProfileType == TypeFeatureFlags {
			body, ctype = flagValues(d.Content), "application/json"
		}
	}
	next := se.Seq + 1
	err = s.store.Batch(func(tx store.Tx) error {
		cur, err := awsapi.LoadKey[session](tx, bucketSessions, se.ID)
		if err != nil {
			return err
		}
		if cur == nil || cur.Seq != t.Seq {
			return tokenProblem("Expired", "The configuration token has already been used")
		}
		cur.Seq, cur.Served = next, served
		return awsapi.PutJSON(tx, bucketSessions, se.ID, cur)
	})
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Next-Poll-Configuration-Token", encodeToken(token{Session: se.ID, Seq: next, Issued: now.UnixMilli(),
		Polled: true}))
	h.Set("Next-Poll-Interval-In-Seconds", strconv.Itoa(se.Interval))
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	if label != "" {
		h.Set("Version-Label", label)
	}
	return &awsapi.Response{Header: h, Body: body}, nil
}

// Bucket is where a client falls in a rollout, in [0, 100): it sees a deployment that has reached a percentage
// above its bucket. It is a hash of the client's identifier, so a client keeps its place.
func Bucket(client string) float64 {
	h := fnv.New32a()
	h.Write([]byte(client))
	return float64(h.Sum32()%10000) / 100
}

// served returns the deployment whose configuration a client of an environment sees now: the environment's
// deployments of the profile, in order, each COMPLETE one replacing the one before, a rolled-back or reverted
// one replacing nothing, and one in progress seen by the clients whose bucket its percentage has reached. nil:
// nothing was ever deployed to the client.
func (s *Service) served(app, env, prof, client string) (*deploymentRec, error) {
	var ds []*deploymentRec
	err := s.store.View(func(tx store.Tx) (err error) { ds, err = deploymentsOf(tx, app, env); return err })
	if err != nil {
		return nil, err
	}
	var cur *deploymentRec
	b := Bucket(client)
	for _, d := range ds {
		if d.ConfigurationProfileId != prof {
			continue
		}
		ed, err := s.engine.Deployment(d.EngineID)
		if err != nil {
			continue
		}
		p := d.read(ed, s.clock.Now())
		switch p.State {
		case StateComplete:
			cur = d
		case StateDeploying, StateBaking:
			if b < p.Percentage {
				cur = d
			}
		}
	}
	return cur, nil
}
