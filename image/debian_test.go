package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/testutil"
)

// fakeMmdebstrap puts on PATH an mmdebstrap that runs script.
func fakeMmdebstrap(t *testing.T, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mmdebstrap"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

func TestDebianBuildRefusesUnknownReleases(t *testing.T) {
	fakeMmdebstrap(t, "exit 0")
	for _, name := range []string{"debian/hamm", "ubuntu/bookworm", "bookworm"} {
		if _, err := NewDebianBuild(name, DebianOptions{}); !errors.Is(err, errkind.Invalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	b, err := NewDebianBuild("debian/bookworm", DebianOptions{})
	if err != nil {
		t.Fatal(err)
	}
	meta, templates := b.Metadata()
	if p := meta.Properties; p["release"] != "bookworm" || p["version"] != "12" || p["variant"] != "minbase" {
		t.Errorf("properties %v", p)
	}
	for _, tpl := range meta.Templates {
		if _, ok := templates[tpl.Template]; !ok {
			t.Errorf("template %s is missing", tpl.Template)
		}
	}
}

// The root filesystem mmdebstrap streams lands under the prefix, and it is
// run with the release, packages and mirror asked for. (A stand-in prints
// a tarball: the real build is TestImageBuild's, in cmd/silo.)
func TestDebianBuildRootfs(t *testing.T) {
	// A tar of one directory, written by Go, printed by the fake builder.
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	file := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(file, tarball.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	fakeMmdebstrap(t, `echo "$@" >&2; cat `+file)
	b, err := NewDebianBuild("debian/trixie", DebianOptions{Include: []string{"less"}, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tw = tar.NewWriter(&out)
	if err := b.Rootfs(context.Background())(tw, "rootfs"); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	hdr, err := tar.NewReader(&out).Next()
	if err != nil || hdr.Name != "rootfs/etc/" {
		t.Fatalf("first entry %v (%v), want rootfs/etc/", hdr, err)
	}
	if !strings.Contains(log.String(), "--include=systemd-sysv,less") || !strings.Contains(log.String(), "trixie - http://deb.debian.org/debian") {
		t.Errorf("mmdebstrap was run as %q", log.String())
	}

}

// When mmdebstrap fails (here a real one, on a mirror that is down: a
// loopback port nothing listens on), the error says so, keeps the exit
// status, and is no invalid input.
func TestDebianBuildMirrorDown(t *testing.T) {
	testutil.NeedRoot(t, "mmdebstrap --mode=root")
	testutil.NeedCommand(t, "mmdebstrap")
	var log bytes.Buffer
	b, err := NewDebianBuild("debian/trixie", DebianOptions{Mirror: "http://127.0.0.1:9/debian", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Rootfs(context.Background())(tar.NewWriter(io.Discard), "rootfs")
	var exit *exec.ExitError
	if err == nil || !strings.Contains(err.Error(), "mmdebstrap failed") || errors.Is(err, errkind.Invalid) || !errors.As(err, &exit) {
		t.Fatalf("a failed build: %v", err)
	}
	if !strings.Contains(log.String(), "127.0.0.1:9") {
		t.Errorf("mmdebstrap's output does not name the mirror: %q", log.String())
	}
}
