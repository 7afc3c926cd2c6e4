package layout

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "attune.dev/attune/"

// deviceOnly is code that exists only for the device: its core, its
// hardware and its capture stack.
var deviceOnly = []string{
	mod + "system",
	mod + "board",
	mod + "ui",
	mod + "capture",
	mod + "v4l2",
	mod + "gadget",
	mod + "alsa",
	"periph.io/",
	"github.com/insomniacslk/dhcp",
	"github.com/blackjack/webcam",
	"github.com/pion/mediadevices",
	"github.com/coreos/go-systemd",
	"github.com/gen2brain/malgo",
}

var rules = []struct {
	pkg    string
	goos   []string
	forbid []string
	allow  []string // exceptions to forbid: vocabularies below it
}{
	// The laptop side builds for the practitioner's laptop.
	{"laptop", []string{"linux", "windows", "darwin"}, deviceOnly, nil},
	{"cmd/attune", []string{"linux", "windows", "darwin"}, deviceOnly, nil},
	{"laptop/review", []string{"linux", "windows", "darwin"}, deviceOnly, nil},
	// ui knows the device's states and the panel's hardware interfaces,
	// not the daemon core, the drivers or the camera.
	{"ui", []string{"linux"}, []string{
		mod + "system", mod + "board", mod + "capture", mod + "v4l2", mod + "alsa",
		mod + "link", mod + "storage",
		"periph.io/x/host", "periph.io/x/devices",
		"github.com/blackjack/webcam", "github.com/pion/mediadevices",
		"github.com/coreos/go-systemd", "github.com/brutella/dnssd",
	}, []string{mod + "board/hw"}},
	// Formats import neither side.
	{"custody", []string{"linux", "windows"}, []string{mod}, nil},
	{"mkv", []string{"linux", "windows"}, []string{mod}, []string{mod + "internal/demux"}},
	{"mov", []string{"linux", "windows", "darwin"}, []string{mod}, []string{mod + "mkv", mod + "internal/demux"}},
	{"device", []string{"linux", "windows"}, []string{mod}, nil},
	{"board/hw", []string{"linux", "windows"}, []string{mod, "periph.io/x/host", "periph.io/x/devices"}, nil},
}

// graph is each package's direct imports, as go list reports them for goos.
func graph(t *testing.T, goos, pkg string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, mod+pkg)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s for %s: %v\n%s", pkg, goos, err, stderr.Bytes())
	}
	g := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			g[f[0]] = f[1:]
		}
	}
	return g
}

// chain is the import path from root to a package matching prefix and
// none of allow, found breadth first, or nil.
func chain(g map[string][]string, root, prefix string, allow ...string) []string {
	from := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != root && matches(p, prefix) && !slices.ContainsFunc(allow, func(a string) bool { return matches(p, a) }) {
			var path []string
			for q := p; q != ""; q = from[q] {
				path = append([]string{q}, path...)
			}
			return path
		}
		for _, q := range g[p] {
			if _, seen := from[q]; !seen {
				from[q] = p
				queue = append(queue, q)
			}
		}
	}
	return nil
}

// matches reports whether pkg is prefix itself, lies under it, or (for a
// prefix ending in "/") starts with it.
func matches(pkg, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(pkg, prefix)
	}
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

func TestDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("go not on PATH: the dependency test lists packages with it")
	}
	for _, r := range rules {
		for _, goos := range r.goos {
			g := graph(t, goos, r.pkg)
			if len(g) == 0 {
				t.Fatalf("%s (%s): go list found no packages", r.pkg, goos)
			}
			for _, f := range r.forbid {
				if c := chain(g, mod+r.pkg, f, r.allow...); c != nil {
					t.Errorf("%s (GOOS=%s) must not import %s:\n\t%s", r.pkg, goos, f, strings.Join(c, "\n\t-> "))
				}
			}
		}
	}
}

// TestChain checks the checker: it must find a chain that exists and none
// that does not.
func TestChain(t *testing.T) {
	g := map[string][]string{
		"a": {"b", "fmt"},
		"b": {"periph.io/x/host/v3"},
	}
	got := strings.Join(chain(g, "a", "periph.io/"), " ")
	if got != "a b periph.io/x/host/v3" {
		t.Errorf("chain = %q", got)
	}
	if c := chain(g, "a", "github.com/blackjack/webcam"); c != nil {
		t.Errorf("found a chain to a package not imported: %v", c)
	}
	if c := chain(g, "a", mod+"system"); c != nil {
		t.Errorf("found %v", c)
	}
	if c := chain(g, "a", "periph.io/", "periph.io/x/host"); c != nil {
		t.Errorf("found %v through an allowed package", c)
	}
	if !matches(mod+"system", mod+"system") || matches(mod+"systemx", mod+"system") || !matches(mod+"custody", mod) {
		t.Error("matches is wrong")
	}
}
