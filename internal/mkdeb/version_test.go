package main

import (
	"os/exec"
	"testing"
	"time"
)

func TestDebianVersion(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	for _, c := range []struct{ in, want string }{
		{"v1.2.0", "1.2.0"},
		{"1.2.0", "1.2.0"},
		{"v1.2.0-dirty", "1.2.0+dirty"},
		{"v1.2.0-3-gabc1234", "1.2.0+3.gabc1234"},
		{"v1.2.0-3-gabc1234-dirty", "1.2.0+3.gabc1234+dirty"},
		{"v1.3.0-rc1", "1.3.0~rc1"},
		{"v1.3.0-rc1-2-gabc1234", "1.3.0~rc1+2.gabc1234"},
		{"abc1234", "0.0~git20250102.020405.abc1234"},
		{"abc1234-dirty\n", "0.0~git20250102.020405.abc1234+dirty"},
	} {
		got, err := DebianVersion(c.in, at)
		if err != nil || got != c.want {
			t.Errorf("DebianVersion(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "release-x", "vnext"} {
		if got, err := DebianVersion(bad, at); err == nil {
			t.Errorf("DebianVersion(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := DebianVersion("abc1234", time.Time{}); err == nil {
		t.Error("DebianVersion without a tag or commit time: want an error")
	}
}

// TestDebianVersionOrder checks with dpkg that the versions sort as the
// history goes.
func TestDebianVersionOrder(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg to compare versions")
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	order := []string{"abc1234", "v0.1.0-rc1", "v0.1.0-rc1-1-gabc1234", "v0.1.0", "v0.1.0-1-gabc1234", "v0.1.0-1-gabc1234-dirty", "v0.1.0-12-gabc1234", "v0.2.0"}
	var vs []string
	for _, d := range order {
		v, err := DebianVersion(d, at)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	later, err := DebianVersion("def5678", at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("dpkg", "--compare-versions", vs[0], "lt", later).Run(); err != nil {
		t.Errorf("%s does not sort before %s", vs[0], later)
	}
	for i := 1; i < len(vs); i++ {
		if err := exec.Command("dpkg", "--compare-versions", vs[i-1], "lt", vs[i]).Run(); err != nil {
			t.Errorf("%s (%s) does not sort before %s (%s)", vs[i-1], order[i-1], vs[i], order[i])
		}
	}
}
