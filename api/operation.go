package api

import "time"

// ClassTask is the class of silo's operations: work that runs to its end
// (LXD also has websocket and token operations, which silo does not).
const ClassTask = "task"

// Operation is a piece of work silo carries out, recorded before it
// touches storage.
type Operation struct {
	// ID identifies the operation.
	ID string `json:"id"`
	// Class is always "task".
	Class string `json:"class"`
	// Description says what the operation does, for people.
	Description string `json:"description"`
	// CreatedAt is when the operation began.
	CreatedAt time.Time `json:"created_at"`
	// Status is "Running", "Success" or "Failure"; "Pending" only in the
	// operation event of its creation.
	Status string `json:"status"`
	// StatusCode is Status as a number: 105, 103, 200 or 400.
	StatusCode StatusCode `json:"status_code"`
	// Resources maps a collection (instances, images, storage-pools) to
	// the paths of the objects the operation acts on.
	Resources map[string][]string `json:"resources"`
	// Err is why the operation failed; empty unless Status is "Failure".
	Err string `json:"err"`
	// ErrKind is the kind of Err (not-found, exists, invalid, busy,
	// no-space, unavailable), which LXD's operations do not carry, so that
	// a client can tell a failed operation's kind as it does a request's.
	ErrKind string `json:"err_kind,omitempty"`
}
