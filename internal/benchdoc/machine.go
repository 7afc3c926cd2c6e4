package benchdoc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Filesystem describes the mount holding dir, from /proc/self/mounts, as
// "TYPE (OPTIONS) at MOUNTPOINT".
func Filesystem(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "unknown"
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	return mountOf(string(b), abs)
}

// mountOf picks the longest mount point containing path from a mounts
// table and describes it.
func mountOf(mounts, path string) string {
	best, desc := "", "unknown"
	for line := range strings.Lines(mounts) {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		mp := f[1]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, fmt.Sprintf("%s (%s) at %s", f[2], f[3], mp)
		}
	}
	return desc
}

// CPUModel is the first "model name" (x86) or "Model"/"Hardware" (ARM)
// line of /proc/cpuinfo.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	return parseCPUModel(string(b))
}

func parseCPUModel(cpuinfo string) string {
	fallback := ""
	for line := range strings.Lines(cpuinfo) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			return v
		case "Model", "Hardware":
			if fallback == "" {
				fallback = v
			}
		}
	}
	if fallback == "" {
		return "unknown"
	}
	return fallback
}
