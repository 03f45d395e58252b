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
	c := &command{name: "serve", summary: "run the deployment service: AWS APIs, device API and artifact store",
		usage: "[--addr HOST:PORT] [--s3-addr HOST:PORT] [--data DIR] [--time-scale N] [--auth none|sigv4]"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, stderr)
		addr := fs.String("addr", service.DefaultAddr, "listen address of the AWS APIs and the device API")
		s3Addr := fs.String("s3-addr", service.DefaultS3Addr, "listen address of the S3-style artifact store")
		data := fs.String("data", "fleetlab-data", "directory for the service's state and artifacts")
		scale := fs.Float64("time-scale", 1, "run policy time this many times faster than the wall clock (600: a 10-minute bake takes 1 s)")
		auth := fs.String("auth", "none", "request authentication: none, or sigv4 (required off loopback)")
		accessKey := fs.String("access-key", envOr("FLEETLAB_ACCESS_KEY", "test"), "with --auth sigv4: the access key id clients sign with")
		secretKey := fs.String("secret-key", envOr("FLEETLAB_SECRET_KEY", "test"), "with --auth sigv4: its secret key")
		if err := parse(c, fs, args); err != nil {
			return err
		}
		opts, err := serviceOptions(*data, *scale, *auth, *accessKey, *secretKey, *addr, *s3Addr)
		if err != nil {
			return err
		}
		svc, err := service.New(opts)
		if err != nil {
			return &envError{err}
		}
		if err := svc.Start(*addr, *s3Addr); err != nil {
			svc.Close()
			return &envError{fmt.Errorf("%w (is another fleetlab serve running? pick other ports with --addr and --s3-addr)", err)}
		}
		printEndpoints(stdout, svc, *data, *scale)
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

// serviceOptions checks the serve flags together and turns them into service options.
func serviceOptions(data string, scale float64, auth, accessKey, secretKey string, addrs ...string) (service.Options, error) {
	opts := service.Options{Dir: data}
	if err := checkTimeScale(scale); err != nil {
		return opts, err
	}
	opts.Clock = clock.NewScaled(nil, scale)
	switch auth {
	case "none":
		for _, a := range addrs {
			if !loopback(a) {
				return opts, &usageError{msg: fmt.Sprintf("%s is not a loopback address and --auth is none", a),
					hint: "add --auth sigv4 (with --access-key and --secret-key) to listen beyond this machine"}
			}
		}
	case "sigv4":
		if accessKey == "" || secretKey == "" {
			return opts, &usageError{msg: "--auth sigv4 needs --access-key and --secret-key"}
		}
		opts.Auth = &awsapi.SigV4{Keys: map[string]string{accessKey: secretKey}}
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

func printEndpoints(w io.Writer, svc *service.Service, data string, scale float64) {
	fmt.Fprintf(w, `fleetlab deployment service is running
  AWS APIs + device API   %s
  artifact store (S3)     %s
  data                    %s
  time scale              %gx

Use it with the AWS CLI (any credentials; requests are not checked unless --auth sigv4):
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url %s s3 mb s3://bundles
  aws --endpoint-url %s s3 cp hello.tar.gz s3://bundles/hello.tar.gz
  aws --endpoint-url %s robomaker list-fleets
RoboMaker has left the AWS CLI; add its model back once with:
  fleetlab model robomaker > robomaker.json && aws configure add-model --service-name robomaker --service-model file://robomaker.json

Or with the AWS SDK for Go v2:
  robomaker.New(robomaker.Options{BaseEndpoint: aws.String(%q), Region: "us-east-1", Credentials: ...})

Press Ctrl-C to stop; state is kept in %s.
`, svc.Endpoint(), svc.S3Endpoint(), data, scale, svc.S3Endpoint(), svc.S3Endpoint(), svc.Endpoint(),
		svc.Endpoint(), data)
}
