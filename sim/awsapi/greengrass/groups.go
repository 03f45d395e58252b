package greengrass

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// group is a group as the store keeps it.
type group struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
	LatestVersion string    `json:"latestVersion,omitempty"`
	Tags          any       `json:"tags,omitempty"`
}

// groupVersion is one version of a group: the definition versions it names, by ARN.
type groupVersion struct {
	GroupID    string            `json:"groupId"`
	ID         string            `json:"id"`
	Created    time.Time         `json:"created"`
	Definition map[string]string `json:"definition"`
}

// The members of a GroupVersion this dialect serves, and those it refuses.
var (
	groupVersionMembers = map[string]string{
		"CoreDefinitionVersionArn":         "cores",
		"FunctionDefinitionVersionArn":     "functions",
		"SubscriptionDefinitionVersionArn": "subscriptions",
		"ResourceDefinitionVersionArn":     "resources",
	}
	unservedMembers = []string{"ConnectorDefinitionVersionArn", "DeviceDefinitionVersionArn", "LoggerDefinitionVersionArn"}
)

func (s *Service) groupARN(id string) string { return s.arn("/greengrass/groups/" + id) }

func (s *Service) groupVersionARN(id, vid string) string { return s.groupARN(id) + "/versions/" + vid }

type groupOut struct {
	Arn                  string         `json:"Arn"`
	CreationTimestamp    awsapi.ISO8601 `json:"CreationTimestamp"`
	ID                   string         `json:"Id"`
	LastUpdatedTimestamp awsapi.ISO8601 `json:"LastUpdatedTimestamp"`
	LatestVersion        string         `json:"LatestVersion,omitempty"`
	LatestVersionArn     string         `json:"LatestVersionArn,omitempty"`
	Name                 string         `json:"Name"`
	Tags                 any            `json:"tags,omitempty"`
}

func (s *Service) groupOut(g *group) groupOut {
	out := groupOut{Arn: s.groupARN(g.ID), CreationTimestamp: awsapi.ISO8601(g.Created), ID: g.ID,
		LastUpdatedTimestamp: awsapi.ISO8601(g.Updated), LatestVersion: g.LatestVersion, Name: g.Name, Tags: g.Tags}
	if g.LatestVersion != "" {
		out.LatestVersionArn = s.groupVersionARN(g.ID, g.LatestVersion)
	}
	return out
}

// resolveVersionARN checks that arn names an existing version of a definition of type path; it returns the
// version.
func (s *Service) resolveVersionARN(tx store.Tx, member, path, arn string) (*defVersion, error) {
	prefix := s.arn("/greengrass/definition/" + path + "/")
	rest, ok := strings.CutPrefix(arn, prefix)
	id, vid, ok2 := strings.Cut(rest, "/versions/")
	if !ok || !ok2 || id == "" || vid == "" || strings.Contains(vid, "/") {
		return nil, invalidInput("%s %q is not the ARN of a %s definition version.", member, arn, strings.TrimSuffix(path, "s"))
	}
	t, _ := defTypeOf(path)
	kind, key, found, err := s.rec.Lookup(tx, "defversion/"+vid)
	if err != nil {
		return nil, err
	}
	if found && kind == t.path {
		v, err := awsapi.LoadKey[defVersion](tx, bucketDefVersions, key)
		if err != nil {
			return nil, err
		}
		if v != nil && v.DefID == id {
			return v, nil
		}
	}
	return nil, versionNotFound("%s %s does not exist.", member, arn)
}

// checkGroupVersion validates the definition version ARNs of a group version document.
func (s *Service) checkGroupVersion(tx store.Tx, doc map[string]any) (map[string]string, error) {
	for _, m := range unservedMembers {
		if v, _ := doc[m].(string); v != "" {
			return nil, badRequestf("%s: connector, device and logger definitions are not served.", m)
		}
	}
	def := map[string]string{}
	for member, path := range groupVersionMembers {
		arn, _ := doc[member].(string)
		if arn == "" {
			continue
		}
		if _, err := s.resolveVersionARN(tx, member, path, arn); err != nil {
			return nil, err
		}
		def[member] = arn
	}
	return def, nil
}

func (s *Service) putGroupVersion(tx store.Tx, gid string, def map[string]string, now time.Time) (*groupVersion, error) {
	_, seq, err := s.rec.NextKey(tx)
	if err != nil {
		return nil, err
	}
	v := &groupVersion{GroupID: gid, ID: s.ids.UUID(), Created: now, Definition: def}
	key := fmt.Sprintf("%s/%016d", gid, seq)
	if err := awsapi.PutJSON(tx, bucketGroupVers, key, v); err != nil {
		return nil, err
	}
	return v, s.rec.Index(tx, "groupversion/"+v.ID, "groupversion", key)
}

func (s *Service) loadGroup(tx store.Tx, id string) (*group, error) {
	g, err := awsapi.LoadKey[group](tx, bucketGroups, id)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, idNotFound("That group definition does not exist.")
	}
	return g, nil
}

func (s *Service) loadGroupVersion(tx store.Tx, gid, vid string) (*groupVersion, error) {
	_, key, found, err := s.rec.Lookup(tx, "groupversion/"+vid)
	if err != nil {
		return nil, err
	}
	if found {
		v, err := awsapi.LoadKey[groupVersion](tx, bucketGroupVers, key)
		if err != nil {
			return nil, err
		}
		if v != nil && v.GroupID == gid {
			return v, nil
		}
	}
	return nil, versionNotFound("Version %s of group %s does not exist.", vid, gid)
}

func (s *Service) tokenFor(tx store.Tx, r *awsapi.Request, scope string) (token, hash, found string, err error) {
	token, _ = r.Input["AmznClientToken"].(string)
	if token == "" {
		return "", "", "", nil
	}
	hash = awsapi.RequestHash(r.Input, "AmznClientToken")
	id, ok, err := s.tokens.Lookup(tx, scope, token, hash)
	if err == awsapi.ErrTokenMismatch {
		return "", "", "", invalidInput("The client token %s was used with other parameters.", token)
	}
	if err != nil || !ok {
		return token, hash, "", err
	}
	return token, hash, id, nil
}

func (s *Service) createGroup(r *awsapi.Request) (any, error) {
	name, _ := r.Input["Name"].(string)
	var out *group
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		token, hash, id, err := s.tokenFor(tx, r, "CreateGroup")
		if err != nil {
			return err
		}
		if id != "" {
			if out, err = awsapi.LoadKey[group](tx, bucketGroups, id); err != nil || out != nil {
				return err
			}
		}
		now := s.clock.Now()
		g := &group{ID: s.ids.UUID(), Name: name, Created: now, Updated: now, Tags: r.Input["tags"]}
		if iv, ok := r.Input["InitialVersion"].(map[string]any); ok {
			def, err := s.checkGroupVersion(tx, iv)
			if err != nil {
				return err
			}
			v, err := s.putGroupVersion(tx, g.ID, def, now)
			if err != nil {
				return err
			}
			g.LatestVersion = v.ID
		}
		if err := awsapi.PutJSON(tx, bucketGroups, g.ID, g); err != nil {
			return err
		}
		if token != "" {
			if err := s.tokens.Record(tx, "CreateGroup", token, hash, g.ID); err != nil {
				return err
			}
		}
		out = g
		return nil
	})
	if err != nil {
		return nil, err
	}
	o := s.groupOut(out)
	o.Tags = nil
	return o, nil
}

func (s *Service) getGroup(r *awsapi.Request) (any, error) {
	id, _ := r.Input["GroupId"].(string)
	var g *group
	err := s.store.View(func(tx store.Tx) (err error) {
		g, err = s.loadGroup(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.groupOut(g), nil
}

func (s *Service) listGroups(r *awsapi.Request) (any, error) {
	type item struct {
		key string
		out groupOut
	}
	var items []item
	err := s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketGroups, func(g *group) error {
			o := s.groupOut(g)
			o.Tags = nil
			items = append(items, item{key: fmt.Sprintf("%020d/%s", g.Created.UnixNano(), g.ID), out: o})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sortItems(items, func(i item) string { return i.key })
	got, next, err := page(r.Input, "ListGroups", items, func(i item) string { return i.key })
	if err != nil {
		return nil, err
	}
	gs := make([]groupOut, len(got))
	for i, it := range got {
		gs[i] = it.out
	}
	return map[string]any{"Groups": gs, "NextToken": omitEmpty(next)}, nil
}

func (s *Service) updateGroup(r *awsapi.Request) (any, error) {
	id, _ := r.Input["GroupId"].(string)
	name, _ := r.Input["Name"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		g, err := s.loadGroup(tx, id)
		if err != nil {
			return err
		}
		g.Name, g.Updated = name, s.clock.Now()
		return awsapi.PutJSON(tx, bucketGroups, id, g)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// deleteGroup removes a group that is not deployed: one whose latest deployment is a reset, or that has none.
func (s *Service) deleteGroup(r *awsapi.Request) (any, error) {
	id, _ := r.Input["GroupId"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		if _, err := s.loadGroup(tx, id); err != nil {
			return err
		}
		last, err := s.latestDeployment(tx, id)
		if err != nil {
			return err
		}
		if last != nil && !last.isReset() {
			return badRequestf("Group %s is deployed: reset its deployments before deleting it.", id)
		}
		return tx.Delete(bucketGroups, id)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) createGroupVersion(r *awsapi.Request) (any, error) {
	gid, _ := r.Input["GroupId"].(string)
	var v *groupVersion
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(func(tx store.Tx) error {
		g, err := s.loadGroup(tx, gid)
		if err != nil {
			return err
		}
		token, hash, vid, err := s.tokenFor(tx, r, "CreateGroupVersion/"+gid)
		if err != nil {
			return err
		}
		if vid != "" {
			if v, err = s.loadGroupVersion(tx, gid, vid); err == nil {
				return nil
			}
		}
		def, err := s.checkGroupVersion(tx, r.Input)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if v, err = s.putGroupVersion(tx, gid, def, now); err != nil {
			return err
		}
		g.LatestVersion, g.Updated = v.ID, now
		if err := awsapi.PutJSON(tx, bucketGroups, gid, g); err != nil {
			return err
		}
		if token != "" {
			return s.tokens.Record(tx, "CreateGroupVersion/"+gid, token, hash, v.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return versionOut{Arn: s.groupVersionARN(gid, v.ID), CreationTimestamp: awsapi.ISO8601(v.Created), ID: gid,
		Version: v.ID}, nil
}

func (s *Service) getGroupVersion(r *awsapi.Request) (any, error) {
	gid, _ := r.Input["GroupId"].(string)
	vid, _ := r.Input["GroupVersionId"].(string)
	var v *groupVersion
	err := s.store.View(func(tx store.Tx) error {
		if _, err := s.loadGroup(tx, gid); err != nil {
			return err
		}
		var err error
		v, err = s.loadGroupVersion(tx, gid, vid)
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"Arn": s.groupVersionARN(gid, v.ID), "CreationTimestamp": awsapi.ISO8601(v.Created),
		"Id": gid, "Version": v.ID, "Definition": v.Definition}, nil
}

func (s *Service) listGroupVersions(r *awsapi.Request) (any, error) {
	gid, _ := r.Input["GroupId"].(string)
	type item struct {
		key string
		out versionOut
	}
	var items []item
	err := s.store.View(func(tx store.Tx) error {
		if _, err := s.loadGroup(tx, gid); err != nil {
			return err
		}
		return tx.ForEach(bucketGroupVers, gid+"/", func(k string, raw []byte) error {
			var v groupVersion
			if err := jsonUnmarshal(raw, &v); err != nil {
				return err
			}
			items = append(items, item{key: k, out: versionOut{Arn: s.groupVersionARN(gid, v.ID),
				CreationTimestamp: awsapi.ISO8601(v.Created), ID: gid, Version: v.ID}})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	got, next, err := page(r.Input, "ListGroupVersions/"+gid, items, func(i item) string { return i.key })
	if err != nil {
		return nil, err
	}
	vs := make([]versionOut, len(got))
	for i, it := range got {
		vs[i] = it.out
	}
	return map[string]any{"Versions": vs, "NextToken": omitEmpty(next)}, nil
}

func sortItems[T any](items []T, key func(T) string) {
	slices.SortStableFunc(items, func(a, b T) int { return strings.Compare(key(a), key(b)) })
}
