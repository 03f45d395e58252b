package service

import (
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/awsapi/appconfig"
	"github.com/fleetlab/fleetlab/sim/awsapi/greengrass"
	"github.com/fleetlab/fleetlab/sim/awsapi/greengrassv2"
	"github.com/fleetlab/fleetlab/sim/awsapi/iot"
	"github.com/fleetlab/fleetlab/sim/awsapi/opsworks"
	"github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
)

// dialectList is every API dialect the service serves, in build and registration order: on a path several
// dialects share (/tags/{arn}), an unsigned request whose ARN names none of them goes to the first. IoT comes
// first: it is the thing registry (awsapi.Registry) the dialects after it are given. Adding a dialect is its
// package and one line here; this is the only place outside the dialects that names one.
func dialectList() []awsapi.DialectSpec {
	return []awsapi.DialectSpec{
		{Name: iot.Name, New: iot.NewDialect},
		{Name: robomaker.Kind, New: robomaker.NewDialect},
		{Name: greengrassv2.Kind, New: greengrassv2.NewDialect},
		{Name: appconfig.Kind, New: appconfig.NewDialect},
		{Name: greengrass.Kind, New: greengrass.NewDialect},
		{Name: opsworks.Kind, New: opsworks.NewDialect},
	}
}
