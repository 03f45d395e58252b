package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Engine is a Docker engine robots run on.
type Engine struct {
	// Host is the engine's address as DOCKER_HOST takes it (unix:///var/run/docker.sock, tcp://lab-2:2376);
	// empty takes the environment's DOCKER_HOST, else the default socket. DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
	// apply as the Docker CLI applies them.
	Host string
	// Listen is the IP address of this machine at which the engine's containers reach it; the robots' link
	// proxies listen there. Empty takes the gateway of the fleet's network on the engine, which is an address of
	// this machine only when the engine runs here: an engine elsewhere needs Listen.
	Listen string
}

func (e Engine) String() string {
	if e.Host == "" {
		if h := os.Getenv("DOCKER_HOST"); h != "" {
			return h
		}
		return "the default Docker engine"
	}
	return e.Host
}

// client returns a Docker API client of the engine.
func (e Engine) client() (*client.Client, error) {
	opts := []client.Opt{client.FromEnv}
	if e.Host != "" {
		opts = append(opts, client.WithHost(e.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker engine %s: %w", e, err)
	}
	return cli, nil
}

// Ping reports whether e answers, with the error saying why not.
func Ping(ctx context.Context, e Engine) error {
	cli, err := e.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker engine %s: %w", e, err)
	}
	return nil
}

// engine is an Engine a fleet runs on: its client, its testcontainers-go provider, the fleet's network on it and
// the address its containers reach this machine at.
type engine struct {
	Engine
	cli      *client.Client
	provider *testcontainers.DockerProvider
	network  string
	listen   string
	image    string
}

// ryukSetting is the environment variable that turns testcontainers-go's reaper off.
const ryukSetting = "TESTCONTAINERS_RYUK_DISABLED"

// disableReaper turns the reaper off before testcontainers-go reads its configuration, and checks that the
// configuration it read has it off.
func disableReaper() error {
	if os.Getenv(ryukSetting) != "true" {
		os.Setenv(ryukSetting, "true")
	}
	if !testcontainers.ReadConfig().RyukDisabled {
		return fmt.Errorf("testcontainers-go read its configuration with the reaper on before this fleet could turn it off: set %s=true in the environment (the reaper's image cannot be pulled without a registry)", ryukSetting)
	}
	return nil
}

// startEngine connects to e, sweeps it, and makes the fleet's network on it.
func startEngine(ctx context.Context, e Engine, run, owner, name string, log io.Writer) (*engine, error) {
	cli, err := e.client()
	if err != nil {
		return nil, err
	}
	en := &engine{Engine: e, cli: cli}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine %s: %w", e, err)
	}
	// What dead runs left behind goes first. A leftover the engine will not remove (a network it holds an
	// endpoint of that no container has) is named in the log and left for a later sweep: it is no reason to
	// refuse this run, whose objects are its own.
	if _, err := Sweep(ctx, e); err != nil && log != nil {
		fmt.Fprintf(log, "docker engine %s: sweep: %v (left for a later sweep)\n", e, err)
	}
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.Logger(quietLogger{log})))
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine %s: %w", e, err)
	}
	p.SetClient(cli)
	en.provider = p
	nw, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: labels(run, owner)})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine %s: create network: %w", e, err)
	}
	en.network = name
	if en.listen, err = en.listenAddress(ctx, nw.ID); err != nil {
		return en, err
	}
	return en, nil
}

// listenAddress is where the engine's containers reach this machine: Engine.Listen, else the network's gateway
// when it is an address of this machine.
func (en *engine) listenAddress(ctx context.Context, id string) (string, error) {
	if en.Listen != "" {
		if _, err := netip.ParseAddr(en.Listen); err != nil {
			return "", fmt.Errorf("docker engine %s: Listen %q is not an IP address", en.Engine, en.Listen)
		}
		return en.Listen, nil
	}
	nw, err := en.cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("docker engine %s: inspect network %s: %w", en.Engine, en.network, err)
	}
	var gw string
	for _, c := range nw.Network.IPAM.Config {
		if c.Gateway.IsValid() && c.Gateway.Is4() {
			gw = c.Gateway.String()
		}
	}
	if gw == "" {
		return "", fmt.Errorf("docker engine %s: network %s has no IPv4 gateway", en.Engine, en.network)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("docker engine %s: %w", en.Engine, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.String() == gw {
			return gw, nil
		}
	}
	return "", fmt.Errorf("docker engine %s: the gateway %s of network %s is not an address of this machine (is the engine on another one?): give Engine.Listen, an address of this machine its containers can reach", en.Engine, gw, en.network)
}

// close removes the network and closes the client.
func (en *engine) close(ctx context.Context) error {
	var err error
	if en.network != "" {
		if _, rerr := en.cli.NetworkRemove(ctx, en.network, client.NetworkRemoveOptions{}); rerr != nil {
			err = fmt.Errorf("docker engine %s: remove network %s: %w", en.Engine, en.network, rerr)
		}
	}
	return errors.Join(err, en.cli.Close())
}

// quietLogger is testcontainers-go's logger, writing to w (nil: nowhere).
type quietLogger struct{ w io.Writer }

func (l quietLogger) Printf(format string, args ...any) {
	if l.w != nil {
		fmt.Fprintf(l.w, format+"\n", args...)
	}
}
