package api

// InstanceExecPost runs a command in an instance (LXD's
// InstanceExecPost). The answer is an operation whose metadata.fds holds
// the secret of each websocket to connect to
// /1.0/operations/ID/websocket?secret=S: "0" (the terminal, both ways)
// and "control" when interactive; "0", "1", "2" (stdin, stdout, stderr)
// and "control" otherwise. Its metadata.return is the exit code.
type InstanceExecPost struct {
	// Command is the program and its arguments.
	Command []string `json:"command"`
	// Environment is added to the instance's own.
	Environment map[string]string `json:"environment"`
	// WaitForWS starts the command once the websockets are connected;
	// without it the command runs at once, with no input and its output
	// thrown away.
	WaitForWS bool `json:"wait-for-websocket"`
	// Interactive gives the command a terminal.
	Interactive bool `json:"interactive"`
	// Width and Height are the terminal's first size, in characters.
	Width  int `json:"width"`
	Height int `json:"height"`
	// RecordOutput is refused: silo does not keep exec output.
	RecordOutput bool `json:"record-output"`
	// User and Group are the IDs the command runs as, in the instance.
	User  uint32 `json:"user"`
	Group uint32 `json:"group"`
	// Cwd is the working directory; empty, /root, or / where there is
	// none.
	Cwd string `json:"cwd"`
}

// Exec control commands, sent as InstanceExecControl on the control
// websocket.
const (
	ExecWindowResize = "window-resize"
	ExecSignal       = "signal"
)

// InstanceExecControl is a message on the control websocket of an exec
// (LXD's InstanceExecControl): a window-resize with args width and
// height, or a signal to the command.
type InstanceExecControl struct {
	Command string            `json:"command"`
	Args    map[string]string `json:"args"`
	Signal  int               `json:"signal"`
}
