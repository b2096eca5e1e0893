package charla_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/charla-im/charla"

// allowed lists, for each package of ours, which of ours it may import:
// the downward direction of DESIGN.md, cmd → api → node → {discovery, store,
// crypto} → wire.
var allowed = map[string][]string{
	"wire":               {},
	"crypto":             {"wire"},
	"store":              {"wire"},
	"discovery":          {},
	"internal/netns":     {},
	"internal/webdriver": {},
	"node":               {"wire", "crypto", "store", "discovery"},
	"api":                {"node", "wire", "web"},
	"web":                {},
	"cmd/charla":         {"cmd/charla/cli"},
	"cmd/charla/cli":     {"api", "node", "wire", "crypto", "discovery"},
	"bench":              {"node", "wire", "crypto", "store"},
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		if pkg == "" {
			continue // the module root holds only this test
		}
		may, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not in the import map of this test; add it with its place in DESIGN.md", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if imp == "testing" {
				t.Errorf("%s imports testing outside a test file", pkg)
			}
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			ok := false
			for _, a := range may {
				ok = ok || a == dep
			}
			if !ok {
				t.Errorf("%s imports %s, against the direction of DESIGN.md", pkg, dep)
			}
		}
	}
}
