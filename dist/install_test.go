// Package dist holds what installs silo on a host: its systemd unit.
// Its test runs make install.
package dist

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeInstall runs make install in the repository with vars, and a
// throw-away binary path.
func makeInstall(t *testing.T, vars ...string) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	args := append([]string{"-C", "..", "install", "BIN=" + filepath.Join(t.TempDir(), "silo")}, vars...)
	if out, err := exec.Command("make", args...).CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// make install DESTDIR=D puts the binary, the unit (naming the binary
// where it will be) and both completions under D, as PREFIX says.
func TestInstallDestdir(t *testing.T) {
	dest := t.TempDir()
	makeInstall(t, "DESTDIR="+dest, "PREFIX=/usr")
	bin := filepath.Join(dest, "usr/bin/silo")
	if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("binary: %v %v", st, err)
	}
	if out, err := exec.Command(bin, "completion", "bash").Output(); err != nil || !bytes.Contains(out, []byte("complete -F _silo silo")) {
		t.Errorf("the installed binary's bash completion: %v\n%s", err, out)
	}
	unit, err := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system/silo.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nExecStart=/usr/bin/silo serve\n", "\nKillMode=process\n", "\nRestart=on-failure\n", "\nAfter=network-online.target\n"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("the unit lacks %q:\n%s", strings.TrimSpace(want), unit)
		}
	}
	for file, src := range map[string]string{
		"usr/share/bash-completion/completions/silo": "../cmd/silo/completion.bash",
		"usr/share/zsh/site-functions/_silo":         "../cmd/silo/completion.zsh",
	} {
		got, err1 := os.ReadFile(filepath.Join(dest, file))
		want, err2 := os.ReadFile(src)
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v %v, or it differs from %s", file, err1, err2, src)
		}
	}
}

// systemd finds nothing to fault in the unit, installed with PREFIX so
// that the binary it names is there.
func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("no systemd-analyze: systemd is too large a package to install for this alone")
	}
	prefix := t.TempDir()
	makeInstall(t, "PREFIX="+prefix)
	out, err := exec.Command("systemd-analyze", "verify", filepath.Join(prefix, "lib/systemd/system/silo.service")).CombinedOutput()
	// verify reports a bad setting but still exits 0: any word is a fault.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
