package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/service"
)

func serveCommand() *command {
	c := &command{name: "serve", summary: "run the deployment service: AWS APIs, S3 and the device API on one endpoint",
		usage: "[--addr HOST:PORT] [--data DIR] [--time-scale N] [--auth none|sigv4] [--max-conns N] [--s3-addr HOST:PORT]"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, stderr)
		addr := fs.String("addr", service.DefaultAddr, "listen address of the one endpoint: the AWS APIs, S3 and the device API")
		s3Addr := fs.String("s3-addr", "", "also serve the artifact store (S3) alone on this address (optional: S3 is on --addr)")
		data := fs.String("data", "fleetlab-data", "directory for the service's state and artifacts")
		scale := fs.Float64("time-scale", 1, "run policy time this many times faster than the wall clock (600: a 10-minute bake takes 1 s)")
		auth := fs.String("auth", "none", "request authentication: none, or sigv4 (required off loopback)")
		accessKey := fs.String("access-key", envOr("FLEETLAB_ACCESS_KEY", "test"), "with --auth sigv4: the access key id operators sign with (AWS CLI, SDKs)")
		secretKey := fs.String("secret-key", envOr("FLEETLAB_SECRET_KEY", "test"), "with --auth sigv4: its secret key")
		deviceKey := fs.String("device-access-key", envOr("FLEETLAB_DEVICE_ACCESS_KEY", "device"), "with --auth sigv4: the access key id robots sign the device API with")
		deviceSecret := fs.String("device-secret-key", envOr("FLEETLAB_DEVICE_SECRET_KEY", "device"), "with --auth sigv4: its secret key")
		var limits service.Limits
		fs.IntVar(&limits.MaxConns, "max-conns", 0, "connections each listener holds at most; more are answered 503 (0: from the open-file limit)")
		fs.DurationVar(&limits.ReadTimeout, "read-timeout", 0, "drop a request whose body sends nothing for this long (0: 1m)")
		fs.DurationVar(&limits.WriteTimeout, "write-timeout", 0, "drop a client that reads nothing of its answer for this long (0: 2m)")
		fs.DurationVar(&limits.IdleTimeout, "idle-timeout", 0, "close a keep-alive connection idle this long (0: 2m)")
		if err := parse(c, fs, args); err != nil {
			return err
		}
		keys := credentials{accessKey: *accessKey, secretKey: *secretKey, deviceKey: *deviceKey, deviceSecret: *deviceSecret}
		opts, err := serviceOptions(*data, *scale, *auth, keys, *addr, *s3Addr)
		if err != nil {
			return err
		}
		if limits.MaxConns < 0 || limits.ReadTimeout < 0 || limits.WriteTimeout < 0 || limits.IdleTimeout < 0 {
			return &usageError{msg: "--max-conns and the timeouts cannot be negative",
				hint: "leave them at 0 for the defaults, sized for slow device links"}
		}
		opts.Limits = limits
		svc, err := service.New(opts)
		if err != nil {
			return &envError{err}
		}
		if err := svc.Start(*addr, *s3Addr); err != nil {
			svc.Close()
			return &envError{fmt.Errorf("%w (is another fleetlab serve running? pick another port with --addr)", err)}
		}
		printEndpoints(stdout, svc, *data, *scale, opts.Auth != nil, keys)
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		sig := <-stop
		signal.Stop(stop)
		fmt.Fprintf(stdout, "\n%s: stopping\n", sig)
		return svc.Close()
	}
	return c
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// credentials are the keys of --auth sigv4: the operators' and the robots'.
type credentials struct{ accessKey, secretKey, deviceKey, deviceSecret string }

// serviceOptions checks the serve flags together and turns them into service options.
func serviceOptions(data string, scale float64, auth string, keys credentials, addrs ...string) (service.Options, error) {
	opts := service.Options{Dir: data}
	if err := checkTimeScale(scale); err != nil {
		return opts, err
	}
	opts.Clock = clock.NewScaled(nil, scale)
	switch auth {
	case "none":
		for _, a := range addrs {
			if a != "" && !loopback(a) {
				return opts, &usageError{msg: fmt.Sprintf("%s is not a loopback address and --auth is none", a),
					hint: "add --auth sigv4 (with --access-key and --secret-key) to listen beyond this machine"}
			}
		}
	case "sigv4":
		if keys.accessKey == "" || keys.secretKey == "" || keys.deviceKey == "" || keys.deviceSecret == "" {
			return opts, &usageError{msg: "--auth sigv4 needs --access-key, --secret-key, --device-access-key and --device-secret-key",
				hint: "operators (the AWS CLI, the SDKs) sign with the first pair, robots (fleetlab-agent) with the device pair"}
		}
		if keys.accessKey == keys.deviceKey {
			return opts, &usageError{msg: fmt.Sprintf("--access-key and --device-access-key are both %q", keys.accessKey),
				hint: "give robots a key of their own, so a robot's key cannot start deployments"}
		}
		opts.Auth = &awsapi.SigV4{Keys: map[string]string{keys.accessKey: keys.secretKey},
			DeviceKeys: map[string]string{keys.deviceKey: keys.deviceSecret}}
	default:
		return opts, &usageError{msg: fmt.Sprintf("--auth %q is not none or sigv4", auth)}
	}
	return opts, nil
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func printEndpoints(w io.Writer, svc *service.Service, data string, scale float64, auth bool, keys credentials) {
	ep := svc.Endpoint()
	fmt.Fprintf(w, "fleetlab deployment service is running\n  endpoint     %s  (AWS APIs, S3 and the device API)\n", ep)
	if s3 := svc.S3Endpoint(); s3 != ep {
		fmt.Fprintf(w, "  S3 alone     %s\n", s3)
	}
	fmt.Fprintf(w, "  data         %s\n  time scale   %gx\n\n", data, scale)
	creds, robots := "any credentials; requests are not checked unless --auth sigv4",
		fmt.Sprintf("FLEETLAB_ENDPOINT=%s FLEETLAB_THING=robot-0001 FLEETLAB_DIR=/var/lib/fleetlab fleetlab-agent", ep)
	access, secret := "test", "test"
	if auth {
		creds = "requests are checked: sign with the operator key"
		access, secret = keys.accessKey, keys.secretKey
		robots = fmt.Sprintf("FLEETLAB_ENDPOINT=%s FLEETLAB_THING=robot-0001 FLEETLAB_DIR=/var/lib/fleetlab \\\n"+
			"    FLEETLAB_DEVICE_ACCESS_KEY=%s FLEETLAB_DEVICE_SECRET_KEY=%s fleetlab-agent", ep, keys.deviceKey, keys.deviceSecret)
	}
	fmt.Fprintf(w, `Use it with the AWS CLI (%s):
  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url %s s3 mb s3://bundles
  aws --endpoint-url %s s3 cp hello.tar.gz s3://bundles/hello.tar.gz
  aws --endpoint-url %s robomaker list-fleets
RoboMaker has left the AWS CLI; add its model back once with:
  fleetlab model robomaker > robomaker.json && aws configure add-model --service-name robomaker --service-model file://robomaker.json

Or with the AWS SDK for Go v2:
  robomaker.New(robomaker.Options{BaseEndpoint: aws.String(%q), Region: "us-east-1", Credentials: ...})

Robots talk to the same endpoint:
  %s

Press Ctrl-C to stop; state is kept in %s.
`, creds, access, secret, ep, ep, ep, ep, robots, data)
}
