package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"attune.dev/attune/system"
)

const conffilePath = "../../packaging/attuned.toml"

// TestConffile: the shipped config loads as it is, on the reference board
// with the webcam and the automatic microphone, and with every commented
// key uncommented it still loads and means the defaults.
func TestConffile(t *testing.T) {
	cfg, err := system.LoadConfig(conffilePath)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Board != "pi-ref" || cfg.Capture.Source != "v4l2:/dev/video0" || cfg.Capture.Audio != "auto" {
		t.Errorf("board %q, source %q, audio %q; want pi-ref, v4l2:/dev/video0, auto", cfg.Board, cfg.Capture.Source, cfg.Capture.Audio)
	}

	b, err := os.ReadFile(conffilePath)
	if err != nil {
		t.Fatal(err)
	}
	keyRE := regexp.MustCompile(`(?m)^#([a-z_]+ = )`)
	all := keyRE.ReplaceAllString(string(b), "$1")
	p := filepath.Join(t.TempDir(), "all.toml")
	if err := os.WriteFile(p, []byte(all), 0o644); err != nil {
		t.Fatal(err)
	}
	full, err := system.LoadConfig(p)
	if err != nil {
		t.Fatalf("with every key uncommented: %v", err)
	}
	// The commented values are the defaults, but for the examples.
	full.Recipients, full.Capture.Modes, full.Link.Interfaces = cfg.Recipients, cfg.Capture.Modes, cfg.Link.Interfaces
	if !reflect.DeepEqual(full, cfg) {
		t.Errorf("commented keys are not the defaults:\n got %+v\nwant %+v", full, cfg)
	}

	// Every key of the config is in the file.
	var missing []string
	for _, key := range tomlKeys(reflect.TypeFor[system.Config](), "") {
		name := key[strings.LastIndex(key, ".")+1:]
		if !regexp.MustCompile(`(?m)^#?` + name + ` = `).MatchString(string(b)) {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		t.Errorf("attuned.toml lacks the keys %s", strings.Join(missing, ", "))
	}
}

func tomlKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for f := range typ.Fields() {
		tag := f.Tag.Get("toml")
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, tomlKeys(f.Type, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	slices.Sort(keys)
	return keys
}
