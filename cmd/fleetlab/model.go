package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
)

func modelCommand() *command {
	c := &command{name: "model", summary: "print the AWS service model of a dialect, for aws configure add-model",
		usage: "robomaker"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, stderr)
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return &usageError{msg: err.Error(), hint: "run 'fleetlab help model'"}
		}
		if fs.NArg() != 1 {
			return &usageError{msg: "name one service", hint: "fleetlab model robomaker > robomaker.json"}
		}
		switch fs.Arg(0) {
		case "robomaker":
			_, err := stdout.Write(robomaker.ModelJSON())
			return err
		}
		return &usageError{msg: fmt.Sprintf("no model for %q", fs.Arg(0)),
			hint: "the services whose models have left the AWS CLI: robomaker"}
	}
	return c
}
