// Package api defines the objects silo shows to programs: instances and
// their state, snapshots, pools, images and operations. `--format json`
// prints them, and the REST API serves them. Field names follow LXD's API
// (/1.0) wherever silo has the same thing, so that tools written for LXD
// read them; a field silo cannot fill is left out rather than faked.
// Renaming a field breaks programs: golden files under testdata/api pin
// every one.
package api

import "net/url"

// Version is the root of every object's path, as in LXD.
const Version = "/1.0"

// Path is the address of an object in a collection: Path("instances",
// "web") is /1.0/instances/web.
func Path(collection, name string) string {
	return Version + "/" + collection + "/" + url.PathEscape(name)
}

// StatusCode is a state as a number, with LXD's values.
type StatusCode int

// The states silo reports.
const (
	Stopped StatusCode = 102 // an instance that does not run
	Running StatusCode = 103 // an instance whose init runs; an operation in progress
	Pending StatusCode = 105 // an operation made, not yet started
	Success StatusCode = 200 // an operation that finished
	Failure StatusCode = 400 // an operation that failed
)

// String is the state's name, as Status fields carry it.
func (c StatusCode) String() string {
	switch c {
	case Stopped:
		return "Stopped"
	case Running:
		return "Running"
	case Pending:
		return "Pending"
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	}
	return "Unknown"
}
