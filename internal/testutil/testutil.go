// Package testutil holds what the tests of several packages share: skipping
// what an ordinary user cannot run, the top-level testdata/ directory, and
// making fuzzed tarballs readable.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NeedRoot skips the test unless it runs as root, saying why it needs it.
// Under CI (CI set in the environment) it fails instead: there the tests
// run as root, and a skip would hide what did not run.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	missing(t, "needs root: "+why)
}

// NeedCommand skips the test unless the program name is installed, or fails
// it under CI.
func NeedCommand(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		missing(t, name+" is not installed (hack/install-deps.sh installs it)")
	}
}

func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Testdata is the path of elem under the module's top-level testdata/,
// found from the package directory that go test runs in.
func Testdata(t testing.TB, elem ...string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(append([]string{dir, "testdata"}, elem...)...)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// ReadTestdata returns the contents of a file under testdata/.
func ReadTestdata(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(Testdata(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestdataFiles returns the files of a directory under testdata/ whose
// names match pattern, by name. A directory that does not exist holds none.
func TestdataFiles(t testing.TB, dir, pattern string) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(Testdata(t, dir), pattern))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(n)] = b
	}
	return files
}

// AddSeeds adds to f's seed corpus every file of the testdata/ directories
// dirs whose name matches pattern.
func AddSeeds(f *testing.F, pattern string, dirs ...string) {
	f.Helper()
	for _, dir := range dirs {
		for _, b := range TestdataFiles(f, dir, pattern) {
			f.Add(b)
		}
	}
}
