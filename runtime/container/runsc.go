package container

import (
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/silo-dev/silo/errkind"
)

// gVisor is the family of runsc, gVisor's OCI runtime: the container's
// processes run on gVisor's own kernel (the sentry), a user-space
// process that implements Linux's system calls, so what a spec asks of
// the host kernel for them partly does not apply.
const gVisor = "runsc"

// sandboxed says whether binary runs containers in a gVisor sandbox.
func sandboxed(binary string) bool { return filepath.Base(binary) == gVisor }

// OwnKernel says whether the runtime runs containers on a kernel of its
// own (gVisor's), which serves their root as it is on disk: such a
// container's root is no idmapped mount, and the sandbox, not a user
// namespace of the host's, keeps it from the host.
func (r *OCI) OwnKernel() bool { return sandboxed(r.Binary) }

// ForRuntime adjusts spec s, built by Spec, to what the OCI runtime binary
// takes, or says why the instance cannot run under it. It is the one place
// where runtimes differ in their specs; runc and its kin take s as it is.
func ForRuntime(s *specs.Spec, binary string) error {
	if sandboxed(binary) {
		return forGVisor(s)
	}
	return nil
}

// errProcesses refuses limits.processes under gVisor.
var errProcesses = errkind.Wrap(errkind.Invalid,
	"limits.processes cannot be enforced under runsc: the host's pids controller would count gVisor's own threads, and kill the sandbox")

// statePath is where runtime binary keeps the state of container id in
// its state directory root. runsc names it after the sandbox too, which is
// the container itself.
func statePath(binary, root, id string) string {
	if sandboxed(binary) {
		return filepath.Join(root, id+"_sandbox:"+id+".state")
	}
	return filepath.Join(root, id)
}

// flags are the global options runtime binary is run with on every
// command, beyond its state directory.
func flags(binary string) []string {
	if !sandboxed(binary) {
		return nil
	}
	// No network but loopback, on gVisor's own network stack (the engine
	// refuses nics under it). Debian's runsc cannot copy a network
	// namespace's interfaces on kernels since 6.11 (it takes every
	// namespace for the host's: gVisor issue 10704).
	// --cgroupfs: gVisor ignores the spec's cgroup mount, and mounts a
	// cgroup tree of its own (cpu and memory) only when told to.
	return []string{"--network=none", "--cgroupfs"}
}

// gVisorCaps are the capabilities gVisor's sentry knows (Debian's runsc
// of 2022 stops at CAP_AUDIT_READ): it refuses a spec naming any other.
var gVisorCaps = capNames[:slices.Index(capNames, "CAP_AUDIT_READ")+1]

// forGVisor adjusts s for runsc.
func forGVisor(s *specs.Spec) error {
	if s.Linux.Resources != nil && s.Linux.Resources.Pids != nil {
		return errProcesses
	}
	// See createSandbox.
	s.Process.Terminal = false
	// gVisor connects to no host socket unless told to let any be (its
	// --host-uds): systemd's readiness is probed for instead.
	s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == NotifyPath })
	s.Process.Env = slices.DeleteFunc(s.Process.Env, func(e string) bool { return strings.HasPrefix(e, "NOTIFY_SOCKET=") })
	// Root inside is root of gVisor's kernel, which runs on the host as
	// nobody, in a user namespace of runsc's own: the host's user
	// namespace and ID maps are no business of the spec. Nor is a seccomp
	// profile: the instance's system calls never reach the host's kernel,
	// and gVisor filters the few its own kernel makes.
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UserNamespace })
	s.Linux.UIDMappings, s.Linux.GIDMappings, s.Linux.Seccomp = nil, nil, nil
	c := s.Process.Capabilities
	c.Bounding, c.Effective, c.Permitted = known(c.Bounding), known(c.Effective), known(c.Permitted)
	return nil
}

// known keeps the capabilities of caps that gVisor knows.
func known(caps []string) []string {
	return slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return !slices.Contains(gVisorCaps, c) })
}
