package awsapi

// Registry is the registry of things and thing groups (AWS IoT's) as the other dialects see it: Greengrass V2
// resolves a thing-group target to its member things, follows things joining and leaving the groups it targets
// (continuous deployments), and checks that a thing exists. The IoT dialect implements it; the service builds that
// dialect first and hands it to the dialects after it in DialectDeps.Registry.
//
// Names are thing names and thing-group names as the IoT API spells them; a group may also be given by its ARN.
type Registry interface {
	// Thing returns the thing of that name; found is false when there is none.
	Thing(name string) (thing RegistryThing, found bool, err error)
	// GroupMembers returns the names of the things in a thing group (by name or ARN), sorted: its own members,
	// and with recursive those of its child groups, down the hierarchy, too. found is false when there is no
	// such group.
	GroupMembers(group string, recursive bool) (things []string, found bool, err error)
	// WatchMembership calls fn with every change of a group's direct members after it is stored, in the order
	// the changes were stored: a thing added to or removed from a group, and each membership a deleted thing
	// or group ends. fn runs on the changing request's goroutine and must not block; it may call the Registry.
	// Watching is not persisted: after a restart a watcher re-reads GroupMembers. stop ends the watch.
	WatchMembership(fn func(MembershipChange)) (stop func())
}

// RegistryThing is a thing of the Registry.
type RegistryThing struct {
	Name, ARN string
}

// MembershipChange is one thing joining or leaving one thing group directly (a thing in a child group is not a
// direct member of the parent, but is one of its members recursively).
type MembershipChange struct {
	// Group and GroupARN name the thing group; Thing and ThingARN the thing.
	Group, GroupARN string
	Thing, ThingARN string
	// Ancestors are the ARNs of the group's ancestors, root first. A thing is in at most one group of a
	// hierarchy, so it joins or leaves each of them with the group: a watcher of a parent group's members
	// (recursively) learns of a change in a child group from them.
	Ancestors []string
	// Joined is true when the thing was added to the group, false when it left it.
	Joined bool
}
