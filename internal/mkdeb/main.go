package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Arches maps Debian architectures to Go's GOARCH and GOARM.
var Arches = map[string]struct{ GOARCH, GOARM string }{
	"amd64": {"amd64", ""},
	"arm64": {"arm64", ""},
	"armhf": {"arm", "7"},
}

// Maintainer is the package's Maintainer field.
const Maintainer = "Attune maintainers <maintainers@attune.dev>"

func main() {
	out := flag.String("out", "bin", "directory for the .deb files")
	arches := flag.String("arch", "amd64,arm64,armhf", "Debian architectures, comma-separated: "+strings.Join(archNames(), ", "))
	root := flag.String("root", ".", "the repository's top directory")
	flag.Parse()
	if err := run(*root, *out, strings.Split(*arches, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func archNames() []string {
	return []string{"amd64", "arm64", "armhf"}
}

func run(root, out string, arches []string) error {
	src, err := GitSource(root)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("mkdeb: %v", err)
	}
	for _, a := range arches {
		start := time.Now()
		path, err := Build(root, out, a, src)
		if err != nil {
			return err
		}
		fmt.Printf("%s (%.1fs)\n", path, time.Since(start).Seconds())
	}
	return nil
}

// Source is what the package is built from.
type Source struct {
	Describe string    // git describe --always --dirty: the binary's version
	Version  string    // the package version (DebianVersion)
	Time     time.Time // the commit's time: every file's mtime, the changelog's date
}

// GitSource reads the version and commit time from git.
func GitSource(root string) (Source, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		b, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("version: git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	describe, err := git("describe", "--always", "--dirty")
	if err != nil {
		return Source{}, err
	}
	ct, err := git("log", "-1", "--format=%ct")
	if err != nil {
		return Source{}, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return Source{}, fmt.Errorf("version: commit time %q: %v", ct, err)
	}
	at := time.Unix(sec, 0).UTC()
	v, err := DebianVersion(describe, at)
	if err != nil {
		return Source{}, err
	}
	return Source{Describe: describe, Version: v, Time: at}, nil
}

// Build compiles attuned for the Debian architecture arch and writes its
// package into out; it returns the package's path.
func Build(root, out, arch string, src Source) (string, error) {
	ga, ok := Arches[arch]
	if !ok {
		return "", fmt.Errorf("build %s: unknown architecture; want one of %s", arch, strings.Join(archNames(), ", "))
	}
	tmp, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return "", fmt.Errorf("build %s: %v", arch, err)
	}
	defer os.RemoveAll(tmp)

	bin := filepath.Join(tmp, "attuned")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+src.Describe, "-o", bin, "./cmd/attuned")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+ga.GOARCH, "GOARM="+ga.GOARM)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: go build: %v\n%s", arch, err, b)
	}
	changelog := filepath.Join(tmp, "changelog.gz")
	if err := writeChangelog(changelog, src); err != nil {
		return "", fmt.Errorf("build %s: %v", arch, err)
	}

	info := Info(root, arch, bin, changelog, src)
	path := filepath.Join(out, deb.Default.ConventionalFileName(info))
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return "", fmt.Errorf("build %s: package: %v", arch, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("build %s: %v", arch, err)
	}
	return path, nil
}

// Info describes the package: what goes where, with which mode.
func Info(root, arch, bin, changelog string, src Source) *nfpm.Info {
	pkg := func(name string) string { return filepath.Join(root, "packaging", name) }
	file := func(from, to string, mode os.FileMode) *files.Content {
		return &files.Content{Source: from, Destination: to, FileInfo: &files.ContentFileInfo{Mode: mode, MTime: src.Time}}
	}
	conf := file(pkg("attuned.toml"), "/etc/attune/attuned.toml", 0o644)
	conf.Type = files.TypeConfig
	return nfpm.WithDefaults(&nfpm.Info{
		Name:          "attuned",
		Arch:          arch,
		Platform:      "linux",
		Version:       src.Version,
		VersionSchema: "none",
		Section:       "video",
		Priority:      "optional",
		Maintainer:    Maintainer,
		Homepage:      "https://attune.dev",
		Description: "recording daemon of the Attune appliance\n" +
			"attuned runs on a Raspberry Pi with a USB webcam and microphone, three\n" +
			"buttons, an LED and a 4-digit display. It records a home visit and seals\n" +
			"every second of footage with age to the case's key before the next one\n" +
			"ends; only the practitioner's paired laptop (attune) can decrypt it.",
		MTime: src.Time,
		Overridables: nfpm.Overridables{
			Depends: []string{"adduser"},
			Contents: files.Contents{
				file(bin, "/usr/bin/attuned", 0o755),
				file(pkg("attuned.service"), "/lib/systemd/system/attuned.service", 0o644),
				file(pkg("60-attune.rules"), "/lib/udev/rules.d/60-attune.rules", 0o644),
				conf,
				file(pkg("copyright"), "/usr/share/doc/attuned/copyright", 0o644),
				// A native package: no Debian revision, so changelog.gz.
				file(changelog, "/usr/share/doc/attuned/changelog.gz", 0o644),
				file(pkg("lintian-overrides"), "/usr/share/lintian/overrides/attuned", 0o644),
				file(filepath.Join(root, "README.md"), "/usr/share/doc/attuned/README.md", 0o644),
			},
			Scripts: nfpm.Scripts{
				PostInstall: pkg("postinst"),
				PreRemove:   pkg("prerm"),
				PostRemove:  pkg("postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	})
}

// writeChangelog writes the one-entry Debian changelog of this build,
// gzipped without a name or time so the package is reproducible.
func writeChangelog(path string, src Source) error {
	if src.Version == "" {
		return errors.New("changelog: no version")
	}
	text := fmt.Sprintf("attuned (%s) unstable; urgency=medium\n\n  * Built from git %s.\n\n -- %s  %s\n",
		src.Version, src.Describe, Maintainer, src.Time.Format(time.RFC1123Z))
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("changelog: %v", err)
	}
	if _, err := zw.Write([]byte(text)); err != nil {
		return fmt.Errorf("changelog: %v", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("changelog: %v", err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
