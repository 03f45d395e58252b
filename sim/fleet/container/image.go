package container

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// DefaultBusybox is where Debian's busybox-static package installs busybox.
const DefaultBusybox = "/bin/busybox"

// ImageRepo is the repository of robot images; the tag is a hash of the image's inputs.
const ImageRepo = "fleetlab-robot"

// Where the image puts things.
const (
	// AgentPath is the agent program in the image.
	AgentPath = "/usr/bin/fleetlab-agent"
	// DeviceDir is the device directory: the mount point of the robot's volume.
	DeviceDir = "/var/lib/fleetlab"
	// RobotUID is the uid and gid of the robot user the agent runs as.
	RobotUID = 1000
)

// dockerfile builds the robot image from the context BuildImage lays out.
const dockerfile = `FROM scratch
COPY bin/ /bin/
COPY etc/ /etc/
COPY usr/ /usr/
COPY --chown=1000:1000 home/ /var/lib/fleetlab/
USER 1000:1000
ENV PATH=/usr/bin:/bin HOME=/var/lib/fleetlab
WORKDIR /var/lib/fleetlab
ENTRYPOINT ["/usr/bin/fleetlab-agent"]
`

// ImageOptions are the inputs of the robot image.
type ImageOptions struct {
	// Binary is the fleetlab-agent program: static (CGO_ENABLED=0), for the engine's architecture. Required.
	Binary string
	// Busybox is a static busybox, whose applets become the image's /bin (default DefaultBusybox, from
	// Debian's busybox-static).
	Busybox string
	// Log receives the build's output (nil: discarded).
	Log io.Writer
	// RunID and Owner label the build context and the image (default: a new run id, ThisProcess()).
	RunID, Owner string
}

// CheckInputs reports what is missing or unusable among the image's inputs, with what to do about it.
func CheckInputs(o ImageOptions) error {
	if o.Busybox == "" {
		o.Busybox = DefaultBusybox
	}
	var errs []error
	if o.Binary == "" {
		errs = append(errs, errors.New("robot image: no fleetlab-agent binary given (build it with CGO_ENABLED=0 go build ./cmd/fleetlab-agent)"))
	} else if err := checkStatic(o.Binary, "the fleetlab-agent binary", "build it with CGO_ENABLED=0"); err != nil {
		errs = append(errs, err)
	}
	if err := checkStatic(o.Busybox, "busybox", "install Debian's busybox-static: apt-get install busybox-static"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkStatic checks that path is a statically linked ELF executable.
func checkStatic(path, what, hint string) error {
	f, err := elf.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("robot image: %s %s is missing: %s", what, path, hint)
	}
	if err != nil {
		return fmt.Errorf("robot image: %s %s: %w", what, path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("robot image: %s %s is dynamically linked and cannot run in a FROM scratch image: %s", what, path, hint)
		}
	}
	return nil
}

// BuildImage makes sure the robot image of o's inputs is on engine e and returns its tag,
// "fleetlab-robot:<hash>". The tag is a hash of the agent binary, busybox, its applet list and the Dockerfile:
// an image of the same inputs is reused, and only a change of input builds a new one, through testcontainers-go's
// Dockerfile build. Builds of the same inputs on this machine wait for each other. Older robot images no
// container uses are removed, but for the three newest.
func BuildImage(ctx context.Context, e Engine, o ImageOptions) (string, error) {
	if err := CheckInputs(o); err != nil {
		return "", err
	}
	if o.Busybox == "" {
		o.Busybox = DefaultBusybox
	}
	if o.RunID == "" {
		o.RunID = NewRunID()
	}
	if o.Owner == "" {
		o.Owner = ThisProcess()
	}
	if err := disableReaper(); err != nil {
		return "", err
	}
	applets, err := busyboxApplets(ctx, o.Busybox)
	if err != nil {
		return "", err
	}
	hash, err := inputsHash(o.Binary, o.Busybox, strings.Join(applets, "\n"), dockerfile)
	if err != nil {
		return "", err
	}
	tag := ImageRepo + ":" + hash
	cli, err := e.client()
	if err != nil {
		return "", err
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		return tag, nil
	}
	unlock, err := lockFile(filepath.Join(os.TempDir(), "fleetlab-robot-"+hash+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		return tag, nil // built by another process meanwhile
	}
	dir, err := os.MkdirTemp("", contextPrefix+o.RunID+"-")
	if err != nil {
		return "", fmt.Errorf("robot image: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := layOut(dir, o, applets); err != nil {
		return "", err
	}
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(quietLogger{o.Log}))
	if err != nil {
		return "", fmt.Errorf("robot image: %w", err)
	}
	p.SetClient(cli)
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context: dir, Dockerfile: "Dockerfile", Repo: ImageRepo, Tag: hash, KeepImage: true, BuildLogWriter: log,
		BuildOptionsModifier: func(b *client.ImageBuildOptions) {
			b.Labels = labels(o.RunID, o.Owner, LabelImage, "robot", LabelInputs, hash)
			b.Remove, b.ForceRemove = true, true
		}}}
	if _, err := p.BuildImage(ctx, req); err != nil {
		return "", fmt.Errorf("robot image: build %s on %s: %w", tag, e, err)
	}
	pruneImages(ctx, cli, tag)
	return tag, nil
}

// pruneImages removes robot images other than keep that no container uses, but for the three newest.
func pruneImages(ctx context.Context, cli *client.Client, keep string) {
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", LabelImage+"=robot")})
	if err != nil {
		return
	}
	items := imgs.Items
	// newest first
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].Created > items[j-1].Created; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
	kept := 0
	for _, im := range items {
		mine := false
		for _, t := range im.RepoTags {
			mine = mine || t == keep
		}
		if mine || kept < 3 {
			kept++
			continue
		}
		// An image a container uses is refused by the engine; it stays for a later sweep.
		cli.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{})
	}
}

// busyboxApplets lists the applets of the busybox at path, asking it.
func busyboxApplets(ctx context.Context, path string) ([]string, error) {
	out, err := exec.CommandContext(ctx, path, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("robot image: %s --list: %w", path, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.ContainsAny(a, "/.") {
			applets = append(applets, a)
		}
	}
	if len(applets) == 0 || !slices.Contains(applets, "sh") {
		return nil, fmt.Errorf("robot image: %s has no sh applet", path)
	}
	return applets, nil
}

// inputsHash is the first 16 hex digits of the SHA-256 of the files and texts, each length-prefixed.
func inputsHash(binary, busybox string, texts ...string) (string, error) {
	h := sha256.New()
	for _, p := range []string{binary, busybox} {
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("robot image: %w", err)
		}
		fi, err := f.Stat()
		if err == nil {
			fmt.Fprintf(h, "%d\n", fi.Size())
			_, err = io.Copy(h, f)
		}
		f.Close()
		if err != nil {
			return "", fmt.Errorf("robot image: hash %s: %w", p, err)
		}
	}
	for _, t := range texts {
		fmt.Fprintf(h, "%d\n%s", len(t), t)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// layOut writes the build context into dir: the Dockerfile, /bin with busybox and a link per applet, the agent,
// the robot user, and the device directory.
func layOut(dir string, o ImageOptions, applets []string) error {
	files := []struct {
		path string
		data string
		mode os.FileMode
	}{
		{"Dockerfile", dockerfile, 0o644},
		{ownerFile, o.Owner + "\n", 0o644},
		{"etc/passwd", "root:x:0:0:root:/:/bin/sh\nrobot:x:1000:1000:robot:/var/lib/fleetlab:/bin/sh\n", 0o644},
		{"etc/group", "root:x:0:\nrobot:x:1000:\n", 0o644},
		{"home/.keep", "", 0o644},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("robot image: %w", err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			return fmt.Errorf("robot image: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(ownerFile+"\n"), 0o644); err != nil {
		return fmt.Errorf("robot image: %w", err)
	}
	for _, c := range []struct{ from, to string }{{o.Busybox, "bin/busybox"}, {o.Binary, "usr/bin/fleetlab-agent"}} {
		if err := copyFile(c.from, filepath.Join(dir, c.to), 0o755); err != nil {
			return err
		}
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			return fmt.Errorf("robot image: applet %s: %w", a, err)
		}
	}
	return nil
}

func copyFile(from, to string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("robot image: %w", err)
	}
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("robot image: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("robot image: %w", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("robot image: copy %s: %w", from, err)
	}
	return nil
}
