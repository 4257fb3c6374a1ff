package image

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/runcmd"
)

// debianReleases are the releases a Debian build knows, with their versions.
var debianReleases = map[string]string{"bullseye": "11", "bookworm": "12", "trixie": "13"}

// DebianOptions tune a Debian build.
type DebianOptions struct {
	Variant string   // mmdebstrap's variant: minbase when empty
	Include []string // packages beyond the variant's (an init is always added)
	Mirror  string   // Debian's mirror when empty
	// Log receives the builder's progress.
	Log io.Writer
}

// DebianBuild builds the root filesystem of a bootable Debian image from
// Debian's mirror with mmdebstrap, as a stream: it is never unpacked on
// disk.
type DebianBuild struct {
	name, release, version string
	opts                   DebianOptions
	builder                string // mmdebstrap's path
}

// NewDebianBuild prepares the build of image name, "debian/RELEASE".
func NewDebianBuild(name string, opts DebianOptions) (*DebianBuild, error) {
	distro, release, _ := strings.Cut(name, "/")
	version, ok := debianReleases[release]
	if distro != "debian" || !ok {
		return nil, errkind.Wrap(errkind.Invalid, "cannot build %q: give debian/bullseye, debian/bookworm or debian/trixie", name)
	}
	if opts.Variant == "" {
		opts.Variant = "minbase"
	}
	if opts.Mirror == "" {
		opts.Mirror = "http://deb.debian.org/debian"
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	builder, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return nil, errkind.Wrap(errkind.Unavailable, "image build needs mmdebstrap: install it (apt-get install mmdebstrap)")
	}
	return &DebianBuild{name: name, release: release, version: version, opts: opts, builder: builder}, nil
}

// Metadata returns the image's metadata and templates: a hostname and a
// hosts file made for each instance.
func (b *DebianBuild) Metadata() (*Metadata, map[string]string) {
	meta := NewMetadata(map[string]string{
		"os": "debian", "release": b.release, "version": b.version, "variant": b.opts.Variant,
		"description": fmt.Sprintf("Debian %s (%s, %s)", b.release, b.version, b.opts.Variant),
	})
	meta.Templates = map[string]*Template{
		"/etc/hostname": {When: []string{WhenCreate, WhenCopy}, Template: "hostname.tpl"},
		"/etc/hosts":    {When: []string{WhenCreate, WhenCopy}, Template: "hosts.tpl"},
	}
	templates := map[string]string{
		"hostname.tpl": "{{ container.name }}\n",
		"hosts.tpl":    "127.0.0.1\tlocalhost\n127.0.1.1\t{{ container.name }}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	}
	return meta, templates
}

// Rootfs returns the rootfs writer of Unified for the build: it runs
// mmdebstrap and copies the root filesystem it streams into the image.
func (b *DebianBuild) Rootfs(ctx context.Context) func(tw *tar.Writer, prefix string) error {
	return func(tw *tar.Writer, prefix string) error {
		fmt.Fprintf(b.opts.Log, "Building %s (%s) from %s\n", b.name, b.opts.Variant, b.opts.Mirror)
		include := append([]string{"systemd-sysv"}, b.opts.Include...)
		cmd := exec.CommandContext(ctx, b.builder, "--variant="+b.opts.Variant, "--include="+strings.Join(include, ","),
			"--mode=root", "--format=tar", "--aptopt=APT::Sandbox::User \"root\"", b.release, "-", b.opts.Mirror)
		cmd.Stderr = b.opts.Log
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		done := runcmd.Trace(cmd)
		if err := cmd.Start(); err != nil {
			done(err)
			return fmt.Errorf("build %s: %w", b.name, err)
		}
		err = CopyTree(ctx, out, tw, prefix)
		if err != nil {
			_ = cmd.Process.Kill()
		}
		// When mmdebstrap fails, its stream is cut short: say that it
		// failed, and not that the stream was. A mirror that fails is no
		// fault of the input.
		werr := cmd.Wait()
		done(werr)
		if werr != nil && cmd.ProcessState.Exited() {
			return fmt.Errorf("build %s: mmdebstrap failed (%w): its output above says why", b.name, werr)
		}
		return err
	}
}
