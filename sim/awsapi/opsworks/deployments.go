package opsworks

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	owwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/opsworks"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Deployment and command statuses.
const (
	statusRunning    = "running"
	statusPending    = "pending"
	statusSuccessful = "successful"
	statusFailed     = "failed"
	statusSkipped    = "skipped"
)

type command struct {
	Name string              `json:"Name"`
	Args map[string][]string `json:"Args,omitempty"`
}

// deployment is a deployment as the store keeps it.
type deployment struct {
	ID          string          `json:"id"`
	StackID     string          `json:"stackId"`
	AppID       string          `json:"appId,omitempty"`
	Command     command         `json:"command"`
	Comment     string          `json:"comment,omitempty"`
	CustomJSON  string          `json:"customJson,omitempty"`
	InstanceIDs []string        `json:"instanceIds"`
	Created     time.Time       `json:"created"`
	Commands    []commandRecord `json:"commands"`
	Source      *owwire.Object  `json:"source,omitempty"` // a deploy's release
	Key         string          `json:"key"`
}

type commandRecord struct {
	ID         string `json:"id"`
	InstanceID string `json:"instanceId"`
	Hostname   string `json:"hostname"`
	Skipped    bool   `json:"skipped,omitempty"`
}

func (s *Service) createDeployment(r *awsapi.Request) (any, error) {
	var in struct {
		StackID     string   `json:"StackId"`
		AppID       string   `json:"AppId"`
		InstanceIDs []string `json:"InstanceIds"`
		LayerIDs    []string `json:"LayerIds"`
		Command     command  `json:"Command"`
		Comment     string   `json:"Comment"`
		CustomJSON  string   `json:"CustomJson"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if err := checkCustomJSON("CustomJson", in.CustomJSON); err != nil {
		return nil, err
	}
	if err := checkArgs(in.Command); err != nil {
		return nil, err
	}
	isApp := slices.Contains(owwire.AppCommands, in.Command.Name)
	if isApp && in.AppID == "" {
		return nil, validation("The %s command needs an AppId", in.Command.Name)
	}
	if !isApp && in.AppID != "" {
		return nil, validation("The %s command is a stack command: it takes no AppId", in.Command.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &deployment{ID: s.ids.UUID(), StackID: in.StackID, AppID: in.AppID, Command: in.Command, Comment: in.Comment,
		CustomJSON: in.CustomJSON, Created: time.Time(s.now())}
	doc := owwire.Document{DeploymentID: d.ID, StackID: in.StackID, Command: in.Command.Name, Args: in.Command.Args,
		CustomJSON: in.CustomJSON, Layers: map[string]owwire.Recipes{}, Instances: map[string][]string{}}
	var targets []string
	err := s.store.View(func(tx store.Tx) error {
		st, err := load[stack](tx, bucketStacks, in.StackID, "stack")
		if err != nil {
			return err
		}
		if st.UseCustomCookbooks && st.CustomCookbooksSource != nil {
			obj, err := parseSource("CustomCookbooksSource", st.CustomCookbooksSource)
			if err != nil {
				return err
			}
			doc.Cookbooks = s.withETag(obj)
		}
		if doc.CustomJSON == "" {
			doc.CustomJSON = st.CustomJSON
		}
		if isApp {
			a, err := load[app](tx, bucketApps, in.AppID, "app")
			if err != nil {
				return err
			}
			if a.StackID != in.StackID {
				return validation("App %s is not in stack %s", in.AppID, in.StackID)
			}
			doc.App = &owwire.App{ID: a.AppID, Shortname: a.Shortname, Type: a.Type, Environment: map[string]string{},
				DocumentRoot: a.Attributes["DocumentRoot"]}
			for _, e := range a.Environment {
				doc.App.Environment[e.Key] = e.Value
			}
			if in.Command.Name == owwire.Deploy {
				if a.AppSource == nil {
					return validation("App %s has no AppSource to deploy", a.AppID)
				}
				obj, err := parseSource("AppSource", a.AppSource)
				if err != nil {
					return err
				}
				d.Source = s.withETag(obj)
				doc.App.Releases = append(doc.App.Releases, owwire.Release{DeploymentID: d.ID, Source: *d.Source})
			}
			prev, err := s.releases(tx, a.AppID)
			if err != nil {
				return err
			}
			doc.App.Releases = append(doc.App.Releases, prev...)
			if len(doc.App.Releases) > owwire.MaxReleases {
				doc.App.Releases = doc.App.Releases[:owwire.MaxReleases]
			}
		}
		instances, err := all(tx, bucketInstances, func(i *instance) bool { return i.StackID == in.StackID })
		if err != nil {
			return err
		}
		byID := map[string]instance{}
		for _, i := range instances {
			byID[i.InstanceID] = i
		}
		for _, id := range in.InstanceIDs {
			if _, ok := byID[id]; !ok {
				if _, err := load[instance](tx, bucketInstances, id, "instance"); err != nil {
					return err
				}
				return validation("Instance %s is not in stack %s", id, in.StackID)
			}
		}
		if err := checkLayers(tx, in.StackID, in.LayerIDs); err != nil {
			return err
		}
		var chosen []instance
		add := func(i instance) {
			for _, c := range chosen {
				if c.InstanceID == i.InstanceID {
					return
				}
			}
			chosen = append(chosen, i)
		}
		for _, id := range in.InstanceIDs {
			add(byID[id])
		}
		for _, l := range in.LayerIDs {
			for _, i := range instances {
				if slices.Contains(i.LayerIDs, l) {
					add(i)
				}
			}
		}
		if len(in.InstanceIDs) == 0 && len(in.LayerIDs) == 0 {
			for _, i := range instances {
				if i.Status == statusOnline {
					add(i)
				}
			}
		}
		if len(chosen) == 0 {
			return validation("The deployment has no instance to run on: no instance is listed and none of stack %s is online",
				in.StackID)
		}
		for _, i := range chosen {
			rec := commandRecord{ID: s.ids.UUID(), InstanceID: i.InstanceID, Hostname: i.Hostname,
				Skipped: i.Status != statusOnline}
			d.Commands = append(d.Commands, rec)
			d.InstanceIDs = append(d.InstanceIDs, i.InstanceID)
			if rec.Skipped {
				continue
			}
			targets = append(targets, i.Hostname)
			doc.Instances[i.Hostname] = i.LayerIDs
			for _, l := range i.LayerIDs {
				if _, ok := doc.Layers[l]; ok {
					continue
				}
				ly, err := load[layer](tx, bucketLayers, l, "layer")
				if err != nil {
					return err
				}
				if c := ly.CustomRecipes; c != nil {
					doc.Layers[l] = owwire.Recipes{Setup: c.Setup, Configure: c.Configure, Deploy: c.Deploy,
						Undeploy: c.Undeploy, Shutdown: c.Shutdown}
				} else {
					doc.Layers[l] = owwire.Recipes{}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	write := func(tx store.Tx) error {
		n, err := tx.NextSequence(bucketMeta)
		if err != nil {
			return err
		}
		d.Key = fmt.Sprintf("%016d", n)
		return awsapi.PutJSON(tx, bucketDeployments, d.Key, d)
	}
	if len(targets) == 0 {
		err = s.store.Update(write)
	} else {
		env, eerr := doc.Envelope()
		if eerr != nil {
			return nil, eerr
		}
		raw, jerr := json.Marshal(env)
		if jerr != nil {
			return nil, jerr
		}
		_, err = s.engine.CreateWith(engine.Spec{ID: d.ID, Kind: Kind, Group: d.StackID, OnActive: engine.Allow,
			Targets: targets, Document: raw}, write)
	}
	if err != nil {
		return nil, fmt.Errorf("create deployment: %w", err)
	}
	return map[string]any{"DeploymentId": d.ID}, nil
}

func (s *Service) withETag(o owwire.Object) *owwire.Object {
	if s.objects != nil {
		if etag, err := s.objects.ETag(o.Bucket, o.Key); err == nil {
			o.ETag = etag
		}
	}
	return &o
}

// releases returns an app's earlier releases: its successful deploys, newest first.
func (s *Service) releases(tx store.Tx, appID string) ([]owwire.Release, error) {
	var out []owwire.Release
	err := awsapi.Each(tx, bucketDeployments, func(d *deployment) error {
		if d.AppID == appID && d.Command.Name == owwire.Deploy && d.Source != nil && s.deploymentStatus(d) == statusSuccessful {
			out = append([]owwire.Release{{DeploymentID: d.ID, Source: *d.Source}}, out...)
		}
		return nil
	})
	return out, err
}

// checkArgs checks a command's Args as §6.2 of the commands gives them.
func checkArgs(c command) error {
	for k, v := range c.Args {
		switch {
		case c.Name == owwire.ExecuteRecipes && k == "recipes":
			for _, r := range v {
				if cb, rec, ok := cutRecipe(r); !ok || cb == "" || rec == "" {
					return validation("Recipe %q is not cookbook::recipe", r)
				}
			}
		case c.Name == owwire.Deploy && k == "migrate":
			if len(v) != 1 || (v[0] != "true" && v[0] != "false") {
				return validation("Args migrate must be [\"true\"] or [\"false\"]")
			}
		case c.Name == owwire.UpdateDependencies && (k == "upgrade_os_to" || k == "allow_reboot"):
		default:
			return validation("The %s command takes no argument %s", c.Name, k)
		}
	}
	if c.Name == owwire.ExecuteRecipes && len(c.Args["recipes"]) == 0 {
		return validation("The execute_recipes command needs Args recipes")
	}
	return nil
}

func cutRecipe(r string) (cookbook, recipe string, ok bool) {
	for i := 0; i+1 < len(r); i++ {
		if r[i] == ':' && r[i+1] == ':' {
			return r[:i], r[i+2:], true
		}
	}
	return r, "default", r != ""
}

// commandStatus is a command as the engine's execution tells it.
type commandStatus struct {
	Status       string
	Acknowledged time.Time
	Completed    time.Time
	ExitCode     *int
	Log          string
}

func (s *Service) commandOf(d *deployment, c commandRecord) commandStatus {
	if c.Skipped {
		return commandStatus{Status: statusSkipped, Completed: d.Created}
	}
	x, err := s.engine.Execution(d.ID, c.Hostname)
	if err != nil {
		return commandStatus{Status: statusPending}
	}
	out := commandStatus{Status: statusPending, Acknowledged: x.StartedAt}
	if n, err := strconv.Atoi(x.Details[owwire.DetailExitCode]); err == nil {
		out.ExitCode = &n
	}
	if raw, err := base64.StdEncoding.DecodeString(x.Details[owwire.DetailLog]); err == nil {
		out.Log = string(raw)
	}
	switch {
	case x.Status == engine.ExecSucceeded:
		out.Status, out.Completed = statusSuccessful, x.UpdatedAt
	case x.Status.Terminal():
		out.Status, out.Completed = statusFailed, x.UpdatedAt
		if out.Log == "" {
			reason := x.Details[wire.DetailReason]
			if reason == "" {
				reason = x.Reason
			}
			out.Log = "[" + x.UpdatedAt.UTC().Format(time.RFC3339) + "] command ended " + string(x.Status) + ": " + reason + "\n"
		}
	}
	return out
}

// deploymentStatus is running until every command ended, then failed when any failed, else successful.
func (s *Service) deploymentStatus(d *deployment) string {
	st, _ := s.deploymentEnd(d)
	return st
}

func (s *Service) deploymentEnd(d *deployment) (string, time.Time) {
	status := statusSuccessful
	var end time.Time
	for _, c := range d.Commands {
		cs := s.commandOf(d, c)
		switch cs.Status {
		case statusPending:
			return statusRunning, time.Time{}
		case statusFailed:
			status = statusFailed
		}
		if cs.Completed.After(end) {
			end = cs.Completed
		}
	}
	return status, end
}

type deploymentOut struct {
	DeploymentID string           `json:"DeploymentId"`
	StackID      string           `json:"StackId"`
	AppID        string           `json:"AppId,omitempty"`
	CreatedAt    awsapi.DateTime  `json:"CreatedAt"`
	CompletedAt  *awsapi.DateTime `json:"CompletedAt,omitempty"`
	Duration     *int             `json:"Duration,omitempty"`
	IamUserArn   string           `json:"IamUserArn"`
	Comment      string           `json:"Comment,omitempty"`
	Command      command          `json:"Command"`
	Status       string           `json:"Status"`
	CustomJSON   string           `json:"CustomJson,omitempty"`
	InstanceIDs  []string         `json:"InstanceIds"`
}

func (s *Service) deploymentOut(d *deployment) deploymentOut {
	st, end := s.deploymentEnd(d)
	out := deploymentOut{DeploymentID: d.ID, StackID: d.StackID, AppID: d.AppID, CreatedAt: awsapi.DateTime(d.Created),
		IamUserArn: "arn:aws:iam::" + s.account + ":user/fleetlab", Comment: d.Comment, Command: d.Command, Status: st,
		CustomJSON: d.CustomJSON, InstanceIDs: d.InstanceIDs}
	if st != statusRunning {
		c := awsapi.DateTime(end.UTC().Truncate(time.Second))
		dur := int(time.Time(c).Sub(d.Created.Truncate(time.Second)) / time.Second)
		out.CompletedAt, out.Duration = &c, &dur
	}
	return out
}

func (s *Service) describeDeployments(r *awsapi.Request) (any, error) {
	by, err := oneOf(r.Input, "DescribeDeployments", "StackId", "AppId", "DeploymentIds")
	if err != nil {
		return nil, err
	}
	var ds []deployment
	err = s.store.View(func(tx store.Tx) error {
		switch by {
		case "StackId":
			ds, err = children[stack](tx, r.Input, by, bucketStacks, "stack", bucketDeployments,
				func(d *deployment, id string) bool { return d.StackID == id })
			return err
		case "AppId":
			ds, err = children[app](tx, r.Input, by, bucketApps, "app", bucketDeployments,
				func(d *deployment, id string) bool { return d.AppID == id })
			return err
		}
		want := strs(r.Input["DeploymentIds"])
		found, err := all(tx, bucketDeployments, func(d *deployment) bool { return slices.Contains(want, d.ID) })
		if err != nil {
			return err
		}
		for _, id := range want {
			if !slices.ContainsFunc(found, func(d deployment) bool { return d.ID == id }) {
				return notFound("Unable to find deployment with ID %s", id)
			}
		}
		ds = found
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]deploymentOut, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- { // newest first
		out = append(out, s.deploymentOut(&ds[i]))
	}
	return map[string]any{"Deployments": out}, nil
}

type commandOut struct {
	CommandID      string           `json:"CommandId"`
	InstanceID     string           `json:"InstanceId"`
	DeploymentID   string           `json:"DeploymentId"`
	CreatedAt      awsapi.DateTime  `json:"CreatedAt"`
	AcknowledgedAt *awsapi.DateTime `json:"AcknowledgedAt,omitempty"`
	CompletedAt    *awsapi.DateTime `json:"CompletedAt,omitempty"`
	Status         string           `json:"Status"`
	ExitCode       *int             `json:"ExitCode,omitempty"`
	LogURL         string           `json:"LogUrl,omitempty"`
	Type           string           `json:"Type"`
}

func (s *Service) describeCommands(r *awsapi.Request) (any, error) {
	by, err := oneOf(r.Input, "DescribeCommands", "DeploymentId", "InstanceId", "CommandIds")
	if err != nil {
		return nil, err
	}
	var ds []deployment
	err = s.store.View(func(tx store.Tx) error {
		switch by {
		case "DeploymentId":
			id, _ := r.Input["DeploymentId"].(string)
			ds, err = all(tx, bucketDeployments, func(d *deployment) bool { return d.ID == id })
			if err == nil && len(ds) == 0 {
				return notFound("Unable to find deployment with ID %s", id)
			}
			return err
		case "InstanceId":
			id, _ := r.Input["InstanceId"].(string)
			if _, err := load[instance](tx, bucketInstances, id, "instance"); err != nil {
				return err
			}
		}
		ds, err = all(tx, bucketDeployments, func(*deployment) bool { return true })
		return err
	})
	if err != nil {
		return nil, err
	}
	instanceID, _ := r.Input["InstanceId"].(string)
	ids := strs(r.Input["CommandIds"])
	var out []commandOut
	seen := map[string]bool{}
	for i := range ds {
		d := &ds[i]
		for _, c := range d.Commands {
			if by == "InstanceId" && c.InstanceID != instanceID || by == "CommandIds" && !slices.Contains(ids, c.ID) {
				continue
			}
			seen[c.ID] = true
			cs := s.commandOf(d, c)
			o := commandOut{CommandID: c.ID, InstanceID: c.InstanceID, DeploymentID: d.ID,
				CreatedAt: awsapi.DateTime(d.Created), Status: cs.Status, ExitCode: cs.ExitCode, Type: d.Command.Name}
			if !cs.Acknowledged.IsZero() {
				t := awsapi.DateTime(cs.Acknowledged)
				o.AcknowledgedAt = &t
			}
			if !cs.Completed.IsZero() {
				t := awsapi.DateTime(cs.Completed)
				o.CompletedAt = &t
			}
			if cs.Log != "" {
				o.LogURL = "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte(cs.Log))
			}
			out = append(out, o)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			return nil, notFound("Unable to find command with ID %s", id)
		}
	}
	return map[string]any{"Commands": orEmpty(out)}, nil
}
