package server

import (
	"net/http"
	"os"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/image"
)

// extensions are the additions to LXD's /1.0 that silo serves.
var extensions = []string{"instance_create_start"}

// getServer answers GET /1.0: the API's version and, to a trusted client,
// the host.
func (s *Server) getServer(_ *engine.Engine, r *http.Request) Response {
	out := &api.Server{APIExtensions: extensions, APIStatus: "stable", APIVersion: "1.0", Auth: "untrusted",
		AuthMethods: []string{"tls"}}
	if !s.Trusted(r) {
		return Sync(out)
	}
	out.Auth = "trusted"
	out.Config = map[string]string{}
	var u unix.Utsname
	_ = unix.Uname(&u)
	host, _ := os.Hostname()
	out.Environment = &api.ServerEnvironment{Architectures: []string{image.Architecture()},
		Kernel: unix.ByteSliceToString(u.Sysname[:]), KernelArchitecture: unix.ByteSliceToString(u.Machine[:]),
		KernelVersion: unix.ByteSliceToString(u.Release[:]), Server: "silo", ServerName: host, ServerPid: os.Getpid(),
		Storage: []string{"btrfs", "dir", "zfs"}}
	return Sync(out)
}
