package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/internal/testutil"
	"attune.dev/attune/storage"
)

// TestToddler mashes the simulated front panel at random — every button,
// overlapping, short and long presses — for ATTUNE_TODDLER_SECONDS (default
// 45). The daemon must never crash, never reset, keep answering, and leave
// every recording sealed and complete.
func TestToddler(t *testing.T) {
	secs := 45
	if s, err := strconv.Atoi(os.Getenv("ATTUNE_TODDLER_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	if testing.Short() {
		secs = 5
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	k := testutil.NewKeys(t, dir, false)
	d := testutil.StartDaemon(t, fmt.Sprintf("data = %q\nrecipients = %q\n[system]\nlog_level = \"info\"\n", data, k.RecipientsFile))

	button := func(name string, down bool) {
		b, _ := json.Marshal(map[string]any{"button": name, "down": down})
		resp, err := http.Post(d.Panel+"api/panel/button", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Errorf("panel stopped answering: %v", err)
			return
		}
		resp.Body.Close()
	}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	var wg sync.WaitGroup
	var presses [3]int
	for i, name := range []string{"rec", "mark", "pair"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano())))
			for time.Now().Before(deadline) {
				button(name, true)
				// Mostly taps and bounces, sometimes a long hold (PAIR
				// held 3 s opens pairing), never the 10 s reset chord.
				hold := time.Duration(rng.IntN(250)) * time.Millisecond
				if rng.IntN(12) == 0 {
					hold = time.Duration(1000+rng.IntN(3500)) * time.Millisecond
				}
				time.Sleep(hold)
				button(name, false)
				presses[i]++
				time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			}
		}()
	}
	states := map[string]int{}
	for time.Now().Before(deadline) {
		states[d.PanelState(t).State]++
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	if d.Cmd.ProcessState != nil {
		t.Fatalf("daemon died:\n%s", d.Log.String())
	}
	d.Stop(t) // seals whatever the toddler left recording
	log := d.Log.String()
	if strings.Contains(log, "factory reset confirmed") || strings.Contains(log, "panic") {
		t.Fatalf("mashing reset or crashed the daemon:\n%s", log)
	}
	ents, _ := os.ReadDir(filepath.Join(data, "recordings"))
	n := 0
	for _, e := range ents {
		if !custody.ValidID(e.Name()) {
			continue
		}
		n++
		b, err := os.ReadFile(filepath.Join(data, "recordings", e.Name(), "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		var ix storage.Index
		json.Unmarshal(b, &ix)
		if ix.State != storage.Complete {
			t.Errorf("recording %s left %s", ix.ID, ix.State)
		}
		if segs := testutil.Segments(t, filepath.Join(data, "recordings", e.Name())); len(segs) > 0 {
			testutil.DecryptCLI(t, testutil.StockAge(t), k, segs[len(segs)-1:])
		}
	}
	t.Logf("%ds of mashing: presses rec/mark/pair %v, panel states seen %v, %d recordings, all sealed", secs, presses, states, n)
}
