package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	goimporter "go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The files of the engine reference each other one way only: a file that
// the other uses does not use it back, so that each file reads as a layer
// over the ones it uses.
func TestFilesReferenceOneWay(t *testing.T) {
	refs := fileReferences(t)
	var pairs []string
	for from, tos := range refs {
		for to := range tos {
			if from < to && refs[to][from] != "" {
				pairs = append(pairs, fmt.Sprintf("%s uses %s, and %s uses %s", from, refs[from][to], to, refs[to][from]))
			}
		}
	}
	sort.Strings(pairs)
	for _, p := range pairs {
		t.Error(p)
	}
}

// fileReferences type-checks the package's files (tests aside) and
// returns, for each file, the files whose declarations it uses, each with
// one of the names it uses there.
func fileReferences(t *testing.T) map[string]map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: goimporter.ForCompiler(fset, "gc", exportData(t))}
	pkg, err := conf.Check("github.com/silo-dev/silo/engine", fset, files, info)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]map[string]string{}
	for id, obj := range info.Uses {
		if obj.Pkg() != pkg {
			continue
		}
		from, to := fset.Position(id.Pos()).Filename, fset.Position(obj.Pos()).Filename
		if from == to {
			continue
		}
		if refs[from] == nil {
			refs[from] = map[string]string{}
		}
		if cur := refs[from][to]; cur == "" || obj.Name() < cur {
			refs[from][to] = obj.Name() // the same name on every run
		}
	}
	return refs
}

// exportData returns where the compiler's export data of each package the
// engine imports is, as the go command lists it.
func exportData(t *testing.T) func(path string) (io.ReadCloser, error) {
	t.Helper()
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}} {{.Export}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	export := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if path, file, ok := strings.Cut(sc.Text(), " "); ok && file != "" {
			export[path] = file
		}
	}
	return func(path string) (io.ReadCloser, error) {
		file, ok := export[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	}
}
