package benchutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildSilo builds the silo command into dir, as the Makefile does.
func BuildSilo(dir string) string {
	silo := filepath.Join(dir, "silo")
	build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", silo, "./cmd/silo")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	Check(build.Run())
	return silo
}

// Runner runs silo commands on state directory state. A warning on stderr
// (something left to clean up) counts as a failure too.
func Runner(silo, state string) func(args ...string) error {
	return func(args ...string) error {
		cmd := exec.Command(silo, args...)
		cmd.Env = append(os.Environ(), "SILO_STATE_DIR="+state)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			return fmt.Errorf("silo %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return nil
	}
}
