package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/remote"
)

// The bash script, driven as bash drives it (COMP_LINE, COMP_POINT,
// COMP_WORDS, COMP_CWORD), completes commands, flags, and the names of
// instances, snapshots, images, pools, networks, profiles and volumes
// where a command takes them, and file names where it takes a file; it
// makes nothing in a state directory that does not exist.
func TestCompletionBash(t *testing.T) {
	e := completionEnv(t)
	script := filepath.Join(t.TempDir(), "silo.bash")
	if err := os.WriteFile(script, []byte(e.ok("completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range completionCases(e) {
		got, err := bashComplete(e, script, c.line)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q (%v), want %q", c.line, got, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(e.extra[0], "none")); err == nil {
		t.Error("completion made the state directory it was given")
	}
	e.fails(2, `completion for "fish"`, "completion", "fish")
}

// The zsh script hands zsh's completion system the same candidates.
func TestCompletionZsh(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("no zsh (hack/install-deps.sh installs it)")
	}
	e := completionEnv(t)
	script := filepath.Join(t.TempDir(), "_silo")
	if err := os.WriteFile(script, []byte(e.ok("completion", "zsh")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range completionCases(e) {
		words := strings.Split(c.line, " ")
		words[0] = siloBin
		// compadd and _files stand for zsh's completion system, which
		// runs only in an interactive shell's widget: they print what
		// the script hands them.
		prog := `compdef() { :; }
compadd() { print -rl -- "${(@P)${@[-1]}}"; }
_files() { print -rl -- ${PREFIX}*(N); }
source ` + shellQuote(script) + `
words=(` + shellList(words) + `)
CURRENT=${#words}
PREFIX=${words[-1]}
_silo`
		cmd := exec.Command("zsh", "-f", "-c", prog)
		cmd.Dir, cmd.Env = e.extra[0], append(os.Environ(), "SILO_STATE_DIR="+e.state)
		out, err := cmd.Output()
		got := strings.Fields(string(out))
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q (%v), want %q", c.line, got, err, c.want)
		}
	}
}

type completionCase struct {
	line string
	want []string
}

// completionEnv is a state directory with two instances, snapshots, an
// image, a profile and a custom volume with a snapshot; e.extra[0] is a
// directory that holds one file, to run the shells in.
func completionEnv(t *testing.T) *env {
	e := bootEnv(t, "dir")
	e.ok("create", "bb", "web", "--no-network")
	e.ok("create", "bb", "worker", "--no-network")
	e.ok("snapshot", "create", "web", "snap0")
	e.ok("snapshot", "create", "web", "before-upgrade")
	e.ok("profile", "create", "prod")
	e.ok("volume", "create", "default", "data")
	e.ok("volume", "snapshot", "create", "default", "data", "daily")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rootfs.tar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.extra = []string{dir}
	// A client that knows a remote, whose name completes where a name
	// may carry one.
	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "config.yml"), []byte("remotes:\n  h2: {addr: \"https://192.0.2.2:8443\", protocol: silo}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(remote.EnvDir, conf)
	return e
}

func completionCases(e *env) []completionCase {
	var imgs []api.Image
	e.json(&imgs, "image", "list")
	images := []string{imgs[0].Fingerprint, "bb"}
	slices.Sort(images)
	var nets []api.Network
	e.json(&nets, "network", "list")
	var networks []string
	for _, n := range nets {
		networks = append(networks, n.Name)
	}
	missing := filepath.Join(e.extra[0], "none")
	return []completionCase{
		{"silo sn", []string{"snapshot"}},
		{"silo snapshot re", []string{"restore"}},
		{"silo snapshot restore w", []string{"web", "worker"}},
		{"silo snapshot restore web ", []string{"before-upgrade", "snap0"}},
		{"silo snapshot restore web s", []string{"snap0"}},
		{"silo snapshot restore web snap0 ", nil},
		{"silo start wo", []string{"worker"}},
		{"silo start h", []string{"h2:"}},
		{"silo snapshot restore web h", nil}, // a snapshot's name has no remote
		{"silo launch --po", []string{"--pool"}},
		{"silo launch --pool ", []string{"default"}},
		{"silo launch ", images},
		{"silo launch bb ", nil}, // a new name
		{"silo copy web/", []string{"web/before-upgrade", "web/snap0"}},
		{"silo image export b", []string{"bb"}},
		{"silo export w", []string{"web", "worker"}},
		{"silo backup list w", []string{"web", "worker"}},
		{"silo import rootfs.tar ", nil}, // a new name
		{"silo image import ", []string{"rootfs.tar"}},
		{"silo file pull w", []string{"web/", "worker/"}},
		{"silo profile assign web de", []string{"default"}},
		{"silo profile assign web default,p", []string{"default,prod"}},
		{"silo profile delete p", []string{"prod"}},
		{"silo network info ", networks},
		{"silo volume list ", []string{"default"}}, // [REMOTE:][POOL]
		{"silo volume snapshot restore default data ", []string{"daily"}},
		{"silo volume attach default ", []string{"data"}},
		{"silo volume attach default data ", []string{"web", "worker"}},
		{"silo pool delete ", []string{"default"}},
		{"silo config device set web ", []string{"root"}}, // created with no network
		{"silo config device add web ", nil},              // a new device
		{"silo profile device remove default ", []string{"eth0", "root"}},
		{"silo profile device list ", []string{"default", "prod"}},
		{"silo --state-dir " + missing + " start ", nil},
	}
}

// bashComplete completes line (whose first word is replaced by the silo
// under test) in bash, with the cursor at its end.
func bashComplete(e *env, script, line string) ([]string, error) {
	line = siloBin + strings.TrimPrefix(line, "silo")
	// COMP_WORDS as bash splits the line: at blanks, and around : and =.
	words := strings.FieldsFunc(strings.NewReplacer(":", " : ", "=", " = ").Replace(line), func(r rune) bool { return r == ' ' })
	if strings.HasSuffix(line, " ") {
		words = append(words, "")
	}
	prog := "source " + shellQuote(script) + "\n" +
		"COMP_LINE=" + shellQuote(line) + "; COMP_POINT=${#COMP_LINE}\n" +
		"COMP_WORDS=(" + shellList(words) + "); COMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n" +
		"_silo; printf '%s\\n' \"${COMPREPLY[@]}\""
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
	cmd.Dir, cmd.Env = e.extra[0], append(os.Environ(), "SILO_STATE_DIR="+e.state)
	out, err := cmd.Output()
	return strings.Fields(string(out)), err
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// shellList quotes each of words for a shell's array.
func shellList(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	return strings.Join(quoted, " ")
}
