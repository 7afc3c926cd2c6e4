package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/internal/testutil"
)

// caseOf returns the id and number of the case labelled label.
func (e *env) caseInfo(label string) (id, number string) {
	e.t.Helper()
	out, err := e.attune("list", "--json")
	if err != nil {
		e.t.Fatal(err, out)
	}
	var list struct {
		Cases []struct{ ID, Label, Number string }
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		e.t.Fatal(err, out)
	}
	for _, c := range list.Cases {
		if c.Label == label {
			return c.ID, c.Number
		}
	}
	e.t.Fatalf("no case %q in %s", label, out)
	return "", ""
}

// waitDisplay waits for the panel's display to show text (the ready
// display shows the case number for part of every cycle).
func (e *env) waitDisplay(text string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := e.d.PanelState(e.t)
		if p.Display == text {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("display never showed %q; last %+v", text, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCaseload: three families over three cycles, the device switched
// between their cases between visits, one consent withdrawal, one close
// (of a case on a device other cases still use: it is told, not reset) and
// one erase. Every recording ends up in its family's vault, verified by
// decryption with that family's key, and each family's audit shows its own
// recordings and events and no other family's.
func TestCaseload(t *testing.T) {
	e := newPaired(t)
	families := []string{"Family A", "Family B", "Family C"}
	for _, f := range families[1:] {
		if out, err := e.attune("case", "new", f); err != nil {
			t.Fatalf("case new %s: %v\n%s", f, err, out)
		}
	}
	// Labels are unique, whatever the command.
	if out, err := e.attune("case", "new", "family a"); err == nil || !strings.Contains(out, "exists already") {
		t.Errorf("a second case labelled Family A: %v\n%s", err, out)
	}
	if out, err := e.attune("pair", "--device", e.d.Link, "--code", "123456", "--case", "Family B"); err == nil || !strings.Contains(out, "exists already") {
		t.Errorf("pair --case with a label in use: %v\n%s", err, out)
	}
	ids, nums := map[string]string{}, map[string]string{}
	for _, f := range families {
		ids[f], nums[f] = e.caseInfo(f)
		if out, err := e.attune("case", "consent", f, "--who", "parent", "--filming", "--shared-review", "--family-copy"); err != nil {
			t.Fatalf("consent %s: %v\n%s", f, err, out)
		}
	}
	if len(map[string]bool{nums[families[0]]: true, nums[families[1]]: true, nums[families[2]]: true}) != 3 {
		t.Fatalf("open cases share a number: %v", nums)
	}

	made := map[string][]string{} // family → recordings made while its case was in use
	seen := map[string]bool{}
	record := func(f string) {
		t.Helper()
		e.d.Record(t, time.Second)
		for _, id := range e.deviceRecordings() {
			if !seen[id] {
				seen[id] = true
				made[f] = append(made[f], id)
			}
		}
	}
	for cycle := 1; cycle <= 3; cycle++ {
		for _, f := range families {
			if cycle == 3 && f == "Family C" {
				continue // closed and erased after cycle 2
			}
			// Labels, numbers and id prefixes all name a case.
			ref := f
			switch cycle {
			case 2:
				ref = nums[f]
			case 3:
				ref = ids[f][:6]
			}
			if out, err := e.attune("case", "use", ref); err != nil || !strings.Contains(out, nums[f]) {
				t.Fatalf("cycle %d: case use %s: %v\n%s", cycle, ref, err, out)
			}
			if cycle == 1 && f == "Family B" {
				e.waitDisplay(nums[f]) // the device shows which case it records to
			}
			record(f)
		}
		// One sync for all three: each recording goes to its own case.
		if res, out, err := e.syncJSON(); err != nil || res.Problems() != 0 {
			t.Fatalf("cycle %d: sync: %v\n%s", cycle, err, out)
		}

		switch cycle {
		case 1:
			// Family B withdraws consent to a family copy: its exports for
			// that are refused from then on, others still allowed.
			if out, err := e.attune("case", "consent", "withdraw", "Family B", "--scope", "family_copy", "--who", "parent"); err != nil {
				t.Fatalf("withdraw: %v\n%s", err, out)
			}
			out, err := e.attune("export", made["Family B"][0], "--for", "family_copy", "--out", filepath.Join(e.dir, "b-copy.mkv"))
			if err == nil || !strings.Contains(out, "withdrawn") {
				t.Errorf("a family copy after the withdrawal: %v\n%s", err, out)
			}
			if _, err := os.Stat(filepath.Join(e.dir, "b-copy.mkv")); err == nil {
				t.Error("the refused export was written")
			}
			if out, err := e.attune("export", made["Family B"][0], "--out", filepath.Join(e.dir, "b-review.mkv")); err != nil {
				t.Errorf("a shared-review export: %v\n%s", err, out)
			}
			out, _ = e.attune("case", "consent", "show", "Family B")
			if !strings.Contains(out, "withdrawn") || !strings.Contains(out, "family_copy") {
				t.Errorf("consent show:\n%s", out)
			}
		case 2:
			// Family C's case is open and the device records to it: erase
			// is refused, close first.
			if out, err := e.attune("case", "erase", "Family C", "--yes"); err == nil || !strings.Contains(out, "close the case first") {
				t.Fatalf("erase of the case the device records to: %v\n%s", err, out)
			}
			if out, err := e.attune("export", made["Family C"][0], "--for", "family-copy", "--out", filepath.Join(e.dir, "c-copy.mkv")); err != nil {
				t.Fatalf("export C: %v\n%s", err, out)
			}
			// Close: the device, still used for A and B, is told, not reset.
			out, err := e.attune("case", "close", "Family C")
			if err != nil || !strings.Contains(out, "noCA") {
				t.Fatalf("close C: %v\n%s", err, out)
			}
			if p := e.d.WaitState(t, "no_case"); p.Display != "noCA" {
				t.Errorf("no case shows %q", p.Display)
			}
			e.d.Press(t, 100, "rec")
			time.Sleep(500 * time.Millisecond)
			if p := e.d.PanelState(t); p.State != "no_case" || len(e.deviceRecordings()) != 0 {
				t.Fatalf("REC with no case: %+v, device holds %v", p, e.deviceRecordings())
			}
			if out, err := e.attune("case", "use", "Family C"); err == nil || !strings.Contains(out, "closed") {
				t.Errorf("case use of a closed case: %v\n%s", err, out)
			}
			// Erase asks for the label.
			cmdOut, err := e.attuneIn("Family A\n", "case", "erase", "Family C")
			if err == nil || !strings.Contains(cmdOut, "not confirmed") {
				t.Fatalf("erase confirmed with the wrong label: %v\n%s", err, cmdOut)
			}
			out, err = e.attuneIn("Family C\n", "case", "erase", "Family C")
			if err != nil || !strings.Contains(out, "does NOT reach") || !strings.Contains(out, "c-copy.mkv") {
				t.Fatalf("erase C: %v\n%s", err, out)
			}
		}
	}

	// Every recording is in the vault of the family whose case was in use.
	for _, f := range families {
		ents, _ := os.ReadDir(filepath.Join(e.home, "vault", ids[f]))
		var got []string
		for _, en := range ents {
			got = append(got, en.Name())
		}
		want := append([]string(nil), made[f]...)
		if f == "Family C" {
			want = nil // erased: the vault copy is gone
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: vault holds %v, want %v", f, got, want)
		}
	}
	if n := len(made["Family A"]) + len(made["Family B"]) + len(made["Family C"]); n != 8 {
		t.Errorf("%d recordings, want 8: %v", n, made)
	}

	// Each audit: its own recordings and events, no other family's.
	for _, f := range families {
		out, err := e.attune("audit", f)
		if err != nil {
			t.Fatalf("audit %s: %v\n%s", f, err, out)
		}
		for _, id := range made[f] {
			if !strings.Contains(out, "Recording "+id) {
				t.Errorf("audit %s lacks its recording %s", f, id)
			}
		}
		for _, o := range families {
			if o == f {
				continue
			}
			for _, id := range made[o] {
				if strings.Contains(out, id) {
					t.Errorf("audit %s shows %s's recording %s", f, o, id)
				}
			}
			if strings.Contains(out, o) || strings.Contains(out, ids[o]) {
				t.Errorf("audit %s names %s", f, o)
			}
		}
		for _, want := range []string{"hash chain intact", "LAPTOP EVENTS", "consent recorded", "set to record to this case", "the device's audit chain pulled"} {
			if !strings.Contains(out, want) {
				t.Errorf("audit %s lacks %q", f, want)
			}
		}
		switch f {
		case "Family B":
			if !strings.Contains(out, "consent withdrawn for family_copy") || !strings.Contains(out, "exported for shared_review") {
				t.Errorf("audit B lacks the withdrawal or the export:\n%s", out)
			}
		case "Family C":
			for _, want := range []string{"case closed", "case crypto-erased", "exported for family_copy", "c-copy.mkv", "erased "} {
				if !strings.Contains(out, want) {
					t.Errorf("audit C lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "on this laptop") {
				t.Errorf("audit C shows erased recordings as on this laptop:\n%s", out)
			}
		}
		if testing.Verbose() && f == "Family C" {
			t.Logf("\n%s", out)
		}
	}
	e.d.Stop(t)
}

// attuneIn is attune with stdin.
func (e *env) attuneIn(stdin string, args ...string) (string, error) {
	e.t.Helper()
	cmd := exec.Command(testutil.Binary(e.t, "attune"), append(args, "--home", e.home)...)
	cmd.Env = append(os.Environ(), "ATTUNE_HOME=")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
