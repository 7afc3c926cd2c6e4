package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// describeRE splits `git describe --always --dirty` output of a tagged
// history: TAG-N-gSHA[-dirty].
var describeRE = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]+)(-dirty)?$`)

// bareRE is the output without a reachable tag: SHA[-dirty].
var bareRE = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)

// debianUpstreamRE is what Debian allows as a version without epoch or
// revision: a digit first, then alphanumerics and . + ~ (deb-version(7)).
var debianUpstreamRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

// DebianVersion turns `git describe --always --dirty` output into a Debian
// package version that sorts the way the history goes:
//
//	v1.2.0                  → 1.2.0
//	v1.2.0-3-gabc1234       → 1.2.0+3.gabc1234   (3 commits after the tag)
//	v1.3.0-rc1              → 1.3.0~rc1          (sorts before 1.3.0)
//	abc1234                 → 0.0~git20250102.030405.abc1234 (no tag: the commit's UTC time)
//	any of these + "-dirty" → …+dirty
//
// commit is the described commit's time, used only when there is no tag.
func DebianVersion(describe string, commit time.Time) (string, error) {
	d := strings.TrimSpace(describe)
	dirty := ""
	var v string
	if m := bareRE.FindStringSubmatch(d); m != nil {
		if commit.IsZero() {
			return "", fmt.Errorf("debian version of %q: no tag, and no commit time to order it by", describe)
		}
		v = "0.0~git" + commit.UTC().Format("20060102.150405") + "." + m[1]
		if m[2] != "" {
			dirty = "+dirty"
		}
	} else {
		tag, extra := d, ""
		if strings.HasSuffix(tag, "-dirty") {
			tag, dirty = strings.TrimSuffix(tag, "-dirty"), "+dirty"
		}
		if m := describeRE.FindStringSubmatch(d); m != nil {
			tag, extra = m[1], "+"+m[2]+".g"+m[3]
		}
		tag = strings.TrimPrefix(tag, "v")
		// A pre-release after the first "-" sorts before the release.
		tag = strings.Replace(tag, "-", "~", 1)
		tag = strings.ReplaceAll(tag, "-", ".")
		v = tag + extra
	}
	v += dirty
	if !debianUpstreamRE.MatchString(v) {
		return "", fmt.Errorf("debian version of %q: %q is not a Debian version (tags must look like v1.2.3)", describe, v)
	}
	return v, nil
}
