package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
)

// The labels of everything a fleet makes.
const (
	// LabelRun is the run id of the fleet that made the object.
	LabelRun = "fleetlab.run"
	// LabelOwner names the process that made it: "<host>/<pid>/<start>", start being the process's start time
	// in clock ticks since boot, so a reused pid is not taken for the owner.
	LabelOwner = "fleetlab.owner"
	// LabelRobot is the robot a container or a volume belongs to.
	LabelRobot = "fleetlab.robot"
	// LabelImage marks the robot image ("robot"); LabelInputs is the hash of its inputs.
	LabelImage  = "fleetlab.image"
	LabelInputs = "fleetlab.inputs"
)

// NewRunID returns a fresh run id: 12 hex digits.
func NewRunID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ThisProcess is the owner label of objects this process makes.
func ThisProcess() string {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return fmt.Sprintf("%s/%d/%s", host, pid, processStart(pid))
}

// processStart returns the start time of process pid (field 22 of /proc/<pid>/stat), or "" when it cannot be
// read (no such process, or no /proc).
func processStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// stale reports whether owner names a process of this machine that is gone. Objects of other machines, and of
// owners that cannot be told apart, are never stale: another machine's run may be alive.
func stale(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 || parts[2] == "" {
		return false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(parts[1])
	if parts[0] != host || err != nil || pid <= 0 {
		return false
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return false // no /proc: liveness cannot be told
	}
	return processStart(pid) != parts[2]
}

// labels are the labels of an object a fleet makes.
func labels(run, owner string, extra ...string) map[string]string {
	m := map[string]string{LabelRun: run, LabelOwner: owner}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// Resources are the Docker objects of fleetlab robots on an engine, by name.
type Resources struct {
	Containers, Networks, Volumes []string
}

// Empty reports whether there are none.
func (r Resources) Empty() bool {
	return len(r.Containers) == 0 && len(r.Networks) == 0 && len(r.Volumes) == 0
}

func (r Resources) String() string {
	return fmt.Sprintf("containers %v, networks %v, volumes %v", r.Containers, r.Networks, r.Volumes)
}

// Find lists the containers, networks and volumes of every fleet on e.
func Find(ctx context.Context, e Engine) (Resources, error) { return find(ctx, e, "") }

// FindOwned lists those made by owner's fleets (an owner label, such as ThisProcess()).
func FindOwned(ctx context.Context, e Engine, owner string) (Resources, error) {
	return find(ctx, e, owner)
}

// RemoveOwned removes what owner's fleets made on e, whether the owner lives or not: for a test binary that
// found its own leftovers.
func RemoveOwned(ctx context.Context, e Engine, owner string) (Resources, error) {
	return remove(ctx, e, func(o string) bool { return o == owner })
}

func find(ctx context.Context, e Engine, owner string) (Resources, error) {
	cli, err := e.client()
	if err != nil {
		return Resources{}, err
	}
	defer cli.Close()
	var out Resources
	err = list(ctx, cli, func(kind, id, name string, l map[string]string) error {
		if owner != "" && l[LabelOwner] != owner {
			return nil
		}
		switch kind {
		case "container":
			out.Containers = append(out.Containers, name)
		case "network":
			out.Networks = append(out.Networks, name)
		case "volume":
			out.Volumes = append(out.Volumes, name)
		}
		return nil
	})
	return out, err
}

// list calls fn for every container, then network, then volume of the engine that has an owner label.
func list(ctx context.Context, cli *client.Client, fn func(kind, id, name string, labels map[string]string) error) error {
	f := make(client.Filters).Add("label", LabelOwner)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range cs.Items {
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		errs = append(errs, fn("container", c.ID, name, c.Labels))
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range ns.Items {
		errs = append(errs, fn("network", n.ID, n.Name, n.Labels))
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list volumes: %w", err))...)
	}
	for _, v := range vs.Items {
		errs = append(errs, fn("volume", v.Name, v.Name, v.Labels))
	}
	return errors.Join(errs...)
}

// Sweep removes from e what fleets of dead owners on this machine left behind — containers (with their
// anonymous volumes), then networks, then volumes — and the image build contexts they left in the temporary
// directory. It returns what it removed. New sweeps each of its engines before it makes anything.
func Sweep(ctx context.Context, e Engine) (Resources, error) {
	out, err := remove(ctx, e, stale)
	return out, errors.Join(err, sweepContexts())
}

// remove removes the objects whose owner label which picks.
func remove(ctx context.Context, e Engine, which func(owner string) bool) (Resources, error) {
	cli, err := e.client()
	if err != nil {
		return Resources{}, err
	}
	defer cli.Close()
	var out Resources
	err = list(ctx, cli, func(kind, id, name string, l map[string]string) error {
		if !which(l[LabelOwner]) {
			return nil
		}
		var err error
		switch kind {
		case "container":
			_, err = cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			out.Containers = append(out.Containers, name)
		case "network":
			_, err = cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
			out.Networks = append(out.Networks, name)
		case "volume":
			_, err = cli.VolumeRemove(ctx, id, client.VolumeRemoveOptions{Force: true})
			out.Volumes = append(out.Volumes, name)
		}
		if err != nil {
			return fmt.Errorf("remove %s %s: %w", kind, name, err)
		}
		return nil
	})
	return out, err
}

// contextPrefix starts the name of an image build context directory; ownerFile inside it names its owner.
const (
	contextPrefix = "fleetlab-image-"
	ownerFile     = ".fleetlab-owner"
)

// sweepContexts removes the image build contexts of dead owners from the temporary directory.
func sweepContexts() error {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), contextPrefix+"*"))
	var errs []error
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil || !stale(strings.TrimSpace(string(b))) {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("sweep build context: %w", err))
		}
	}
	return errors.Join(errs...)
}
