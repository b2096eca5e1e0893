package wire

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports holds wire to DESIGN.md: it imports nothing of charla, and outside the
// standard library only protowire. Non-test files never import testing.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			std := !strings.Contains(strings.Split(path, "/")[0], ".")
			switch {
			case path == "testing":
				t.Errorf("%s imports testing", name)
			case !std && path != "google.golang.org/protobuf/encoding/protowire":
				t.Errorf("%s imports %s; wire may import only the standard library and protowire", name, path)
			}
		}
	}
}
