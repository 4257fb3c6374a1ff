package api

import "time"

// The classes of operations: work that runs to its end, and work that
// clients connect websockets to (exec). LXD also has token operations,
// which silo does not.
const (
	ClassTask      = "task"
	ClassWebsocket = "websocket"
)

// Operation is a piece of work silo carries out, recorded before it
// touches storage.
type Operation struct {
	// ID identifies the operation.
	ID string `json:"id"`
	// Class is "task", or "websocket" for one that websockets connect to.
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
	// Metadata is what the operation tells besides its status: the
	// secrets of its websockets (fds) and an exec's exit code (return).
	Metadata map[string]any `json:"metadata"`
	// Err is why the operation failed; empty unless Status is "Failure".
	Err string `json:"err"`
	// ErrKind is the kind of Err (not-found, exists, invalid, busy,
	// no-space, unavailable), which LXD's operations do not carry, so that
	// a client can tell a failed operation's kind as it does a request's.
	ErrKind string `json:"err_kind,omitempty"`
}
