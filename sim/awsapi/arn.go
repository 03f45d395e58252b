package awsapi

import (
	"errors"
	"strings"
)

// ARN is an Amazon Resource Name: arn:partition:service:region:account:resource.
type ARN struct {
	Partition string
	Service   string
	Region    string
	Account   string
	// Resource is everything after the fifth colon, e.g. "deployment-fleet/MyFleet/1539894765711".
	Resource string
}

// ErrNotARN is returned by ParseARN for a string that is not an ARN.
var ErrNotARN = errors.New("not an ARN")

// ParseARN splits an ARN into its fields.
func ParseARN(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] == "" || parts[5] == "" {
		return ARN{}, ErrNotARN
	}
	return ARN{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}, nil
}

// String returns the ARN in its colon form.
func (a ARN) String() string {
	return "arn:" + a.Partition + ":" + a.Service + ":" + a.Region + ":" + a.Account + ":" + a.Resource
}

// ResourceType returns the resource's type: the part of Resource before the first '/' or ':'
// ("deployment-fleet" of "deployment-fleet/MyFleet/1539894765711").
func (a ARN) ResourceType() string {
	if i := strings.IndexAny(a.Resource, "/:"); i >= 0 {
		return a.Resource[:i]
	}
	return a.Resource
}

// ResourceID returns what follows the resource type and its separator ("MyFleet/1539894765711"); empty when the
// resource has no type prefix.
func (a ARN) ResourceID() string {
	if i := strings.IndexAny(a.Resource, "/:"); i >= 0 {
		return a.Resource[i+1:]
	}
	return ""
}
