package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"attune.dev/attune/internal/testutil"
	"attune.dev/attune/storage"
)

// startSim starts `attuned run --board sim` with the panel on a free
// loopback port and returns the daemon and the panel's URL.
func startSim(t *testing.T, data string, k testutil.Keys) (*daemon, string) {
	t.Helper()
	d := startDaemon(t, fmt.Sprintf("data = %q\nrecipients = %q\n[system]\nlog_level = \"info\"\n", data, k.RecipientsFile))
	if d.Panel == "" {
		t.Fatalf("no panel url in log:\n%s", d.Log.String())
	}
	return d, d.Panel
}

type panelJSON struct {
	State   string `json:"state"`
	Display string `json:"display"`
	Code    string `json:"code"`
	LED     struct {
		Color string `json:"color"`
		Blink bool   `json:"blink"`
	} `json:"led"`
}

func getPanel(t *testing.T, url string) panelJSON {
	t.Helper()
	resp, err := http.Get(url + "api/panel")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p panelJSON
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func pressAPI(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url+"api/panel/press", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func waitPanel(t *testing.T, url string, ok func(panelJSON) bool, what string) panelJSON {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := getPanel(t, url)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("panel never showed %s; last %+v", what, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPanelAPI drives the simulated board through its JSON API the way a
// script would: bad requests change nothing, REC records, PAIR held opens
// pairing with a code.
func TestPanelAPI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	k := testutil.NewKeys(t, dir, false)
	d, url := startSim(t, data, k)
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "ready" && p.LED.Color == "green" }, "ready")

	for _, bad := range []string{`{"button":"zap"}`, `{"button":"rec","ms":-1}`, `{"button":"rec","ms":99999999}`,
		`{"buttons":["rec","rec"]}`, `{}`, `not json`, `{"button":"rec","buttons":["pair"]}`, `{"button":"rec","extra":1}`} {
		if code, body := pressAPI(t, url, bad); code != http.StatusBadRequest || !bytes.Contains([]byte(body), []byte(`"error"`)) {
			t.Errorf("press %s: %d %s, want 400 with an error", bad, code, body)
		}
	}
	if p := getPanel(t, url); p.State != "ready" {
		t.Fatalf("bad requests changed the state: %+v", p)
	}

	// PAIR held 3 s opens pairing; the code is on the display in halves.
	code, body := pressAPI(t, url, `{"button":"pair","ms":3200}`)
	if code != http.StatusOK {
		t.Fatalf("pair press: %d %s", code, body)
	}
	p := waitPanel(t, url, func(p panelJSON) bool { return p.State == "pairing" }, "pairing")
	if len(p.Code) != 6 || !p.LED.Blink || p.LED.Color != "blue" {
		t.Fatalf("pairing panel: %+v", p)
	}
	if p.Display != p.Code[:3]+"-" && p.Display != "-"+p.Code[3:] {
		t.Errorf("display %q does not show code %s", p.Display, p.Code)
	}
	pressAPI(t, url, `{"button":"mark","ms":80}`) // any other press cancels
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "ready" && p.Code == "" }, "pairing cancelled")

	pressAPI(t, url, `{"button":"rec","ms":120}`)
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "recording" && p.Display == "00:01" }, "recording 00:01")
	pressAPI(t, url, `{"button":"mark","ms":80}`)
	waitPanel(t, url, func(p panelJSON) bool { return p.Display == "nArK" }, "the mark flash")
	pressAPI(t, url, `{"button":"rec","ms":120}`)
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "ready" }, "ready after stop")

	// With that recording unsynced, PAIR opens no window: SynC says why.
	pressAPI(t, url, `{"button":"pair","ms":3200}`)
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "pair_refused" && p.Display == "SynC" && p.Code == "" }, "SynC")
	pressAPI(t, url, `{"button":"mark","ms":80}`)
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "ready" }, "the notice dismissed")

	// A chord held 10.5 s asks for a reset; silence cancels it.
	pressAPI(t, url, `{"buttons":["rec","pair"],"ms":10500}`)
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "confirm_reset" && p.Display == "rSt?" }, "rSt?")
	pressAPI(t, url, `{"button":"mark","ms":80}`)
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "ready" }, "reset cancelled")
	if recs := recordings(t, data); len(recs) != 1 || recs[0].State != storage.Complete {
		t.Fatalf("recordings: %+v", recs)
	}
	d.Stop(t)
}

// TestPanelBrowser opens the panel in headless Chromium, clicks REC, sees
// the display count, clicks REC again, and checks the recording decrypts.
// With ATTUNE_SCREENSHOTS=DIR it saves screenshots of the main states.
func TestPanelBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if testing.Short() {
			t.Skip("chromium not installed (-short)")
		}
		t.Fatal("chromium not installed: run `make test`, which installs it")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	k := testutil.NewKeys(t, dir, false)
	d, url := startSim(t, data, k)

	// Chromium's profile lives apart from t.TempDir: its helper processes
	// may still write there for a moment after the browser is killed, which
	// would fail TempDir's cleanup. Remove it when they are done.
	profile, err := os.MkdirTemp("", "attune-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("chromium profile %s left behind: %v", profile, err)
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(760, 620),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	shots := os.Getenv("ATTUNE_SCREENSHOTS")
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			if shots == "" {
				return nil
			}
			var png []byte
			if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, "panel-"+name+".png"), png, 0o644)
		})
	}
	waitDisplay := func(text string) chromedp.Action {
		return chromedp.WaitVisible(fmt.Sprintf(`body[data-display=%q]`, text), chromedp.ByQuery)
	}
	if shots != "" {
		// Before the recording: with unsynced footage PAIR opens no window.
		if err := chromedp.Run(ctx, chromedp.Navigate(url), chromedp.WaitVisible(`body[data-state="ready"]`, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		pressAPI(t, url, `{"button":"pair","ms":3100}`)
		if err := chromedp.Run(ctx, chromedp.WaitVisible(`body[data-state="pairing"]`, chromedp.ByQuery), shot("pairing")); err != nil {
			t.Fatal(err)
		}
		pressAPI(t, url, `{"button":"mark","ms":80}`)
	}
	var litRecording, litReady string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(`body[data-state="ready"]`, chromedp.ByQuery),
		chromedp.AttributeValue(`#led`, "data-lit", &litReady, nil, chromedp.ByQuery),
		shot("ready"),
		chromedp.Click(`#rec`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-state="recording"]`, chromedp.ByQuery),
		waitDisplay("00:01"),
		waitDisplay("00:02"),
		chromedp.AttributeValue(`#led`, "data-lit", &litRecording, nil, chromedp.ByQuery),
		shot("recording"),
		chromedp.Click(`#mark`, chromedp.ByQuery),
		waitDisplay("nArK"),
		shot("mark"),
		waitDisplay("00:04"),
		chromedp.Click(`#rec`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-state="ready"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("browser: %v\ndaemon log:\n%s", err, d.Log.String())
	}
	if litReady != "g" || litRecording != "r" {
		t.Errorf("LED drawn %q when ready and %q when recording, want g and r", litReady, litRecording)
	}
	recs := recordings(t, data)
	if len(recs) != 1 || recs[0].State != storage.Complete || len(recs[0].Segments) < 4 {
		t.Fatalf("after the browser session: %+v", recs)
	}
	segs := testutil.Segments(t, filepath.Join(data, "recordings", recs[0].ID))
	plain := testutil.DecryptCLI(t, testutil.StockAge(t), k, segs)
	out := filepath.Join(dir, "browser.mkv")
	os.WriteFile(out, plain, 0o600)
	if e := testutil.FFmpegErrors(t, out); e != "" {
		t.Errorf("recording made from the browser does not decode: %s", e)
	}
	if s := testutil.VideoSeconds(testutil.FFProbe(t, out), 30); s < 3.5 {
		t.Errorf("recorded %.1fs, want at least 4", s)
	}
	d.Stop(t)
}

// TestBatteryNearlyFlat: the battery gauge falls to 4% during a
// recording; the daemon seals the recording before the battery dies.
func TestBatteryNearlyFlat(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	k := testutil.NewKeys(t, dir, false)
	d, url := startSim(t, data, k)
	pressAPI(t, url, `{"button":"rec","ms":120}`)
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "recording" }, "recording")
	resp, err := http.Post(url+"api/panel/battery", "application/json", bytes.NewBufferString(`{"percent":4}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set battery: %v %v", err, resp)
	}
	resp.Body.Close()
	waitPanel(t, url, func(p panelJSON) bool { return p.State == "ready" }, "recording sealed on a flat battery")
	d.WaitLog(t, "battery nearly flat", time.Second)
	pressAPI(t, url, `{"button":"rec","ms":120}`) // refused until charged
	d.WaitLog(t, "recording refused: battery nearly flat", 2*time.Second)
	recs := recordings(t, data)
	if len(recs) != 1 || recs[0].State != storage.Complete {
		t.Fatalf("after the battery warning: %+v", recs)
	}
	d.Stop(t)
}
