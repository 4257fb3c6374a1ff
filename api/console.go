package api

// Console types: a container's console is text; vga is a virtual
// machine's screen, which silo's instances do not have.
const (
	ConsoleTypeConsole = "console"
	ConsoleTypeVGA     = "vga"
)

// InstanceConsolePost attaches to the console of a running instance
// (LXD's InstanceConsolePost). The answer is an operation whose
// metadata.fds holds the secret of each websocket to connect to
// /1.0/operations/ID/websocket?secret=S: "0" (the console, both ways)
// and "control" (InstanceExecControl window-resize messages). The client
// detaches by closing either.
type InstanceConsolePost struct {
	// Width and Height are the console's size, in characters; 0 leaves
	// it as it is.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Type is "console", the default.
	Type string `json:"type"`
}
