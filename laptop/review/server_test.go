package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"attune.dev/attune/internal/testutil"
	"attune.dev/attune/laptop"
)

// browser starts headless Chromium with its profile under TMPDIR (so the
// plaintext scan covers what the browser keeps) and returns its context.
func browser(t *testing.T, w, h int) context.Context {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if testing.Short() {
			t.Skip("chromium not installed (-short)")
		}
		t.Fatal("chromium not installed: run `make deps`")
	}
	profile, err := os.MkdirTemp("", "attune-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(w, h),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)
	return ctx
}

// serve runs the workspace of home on a loopback port.
func serve(t *testing.T, home *laptop.Home, opts Options) (*Server, string) {
	t.Helper()
	srv := NewServer(home, opts)
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return srv, srv.URL(l.Addr())
}

func TestListenLoopbackOnly(t *testing.T) {
	for _, a := range []string{"0.0.0.0:0", ":0", "192.168.1.2:8080", "example.com:80"} {
		if l, err := Listen(a); err == nil {
			l.Close()
			t.Errorf("Listen(%q) accepted", a)
		}
	}
}

// TestGuard: without the token, from another Host or Origin, nothing is
// served; with it, the token becomes an HttpOnly SameSite=Strict cookie.
func TestGuard(t *testing.T) {
	home, err := laptop.OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, u := serve(t, home, Options{})
	base := strings.SplitN(u, "?", 2)[0]
	get := func(c *http.Client, url string, hdr ...string) *http.Response {
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
			} else {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	plain := &http.Client{}
	for _, p := range []string{"", "api/home", "api/film/0123456789abcdef/frame/0"} {
		if r := get(plain, base+p); r.StatusCode != 403 {
			t.Errorf("GET /%s without the token: %d, want 403", p, r.StatusCode)
		}
	}
	if r := get(plain, base+"?token=00"+strings.Repeat("0", 62)); r.StatusCode != 403 {
		t.Errorf("a wrong token: %d, want 403", r.StatusCode)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	r := get(c, u)
	if r.StatusCode != 200 {
		t.Fatalf("with the token: %d", r.StatusCode)
	}
	setc := r.Request.Response.Header.Get("Set-Cookie")
	if !strings.Contains(setc, "HttpOnly") || !strings.Contains(setc, "SameSite=Strict") {
		t.Errorf("cookie %q: want HttpOnly and SameSite=Strict", setc)
	}
	if r.Request.URL.RawQuery != "" {
		t.Errorf("the token stays in the address bar: %s", r.Request.URL)
	}
	if r := get(c, base+"api/home"); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("api with the cookie: %d, CORS %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := get(c, base+"api/home", "Origin", "http://evil.example"); r.StatusCode != 403 {
		t.Errorf("another origin: %d, want 403", r.StatusCode)
	}
	if r := get(c, base+"api/home", "Host", "attacker.example:80"); r.StatusCode != 403 {
		t.Errorf("another Host (DNS rebinding): %d, want 403", r.StatusCode)
	}
}

// plaintextOf is what must never be found on disk: the film's pictures and
// sound.
func plaintextOf(t *testing.T, f *Film) []byte {
	var b bytes.Buffer
	for i := range f.Len() {
		b.Write(frameOf(t, f, i))
	}
	b.Write(f.PCM)
	return b.Bytes()
}

func text(sel string, s *string) chromedp.Action {
	return chromedp.TextContent(sel, s, chromedp.ByQuery)
}

func waitJS(expr string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var ok bool
			if err := chromedp.Evaluate(expr, &ok).Do(ctx); err != nil {
				return err
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

func key(k string, mod input.Modifier) chromedp.Action {
	if mod != 0 {
		return chromedp.KeyEvent(k, chromedp.KeyModifiers(mod))
	}
	return chromedp.KeyEvent(k)
}

// TestWorkspace is the practitioner's cycle in the browser: open the
// workspace with its token, pair with the simulated device by its code,
// record, sync, open the recording, step through it, make a clip and a
// still, run the shared review and make the family copy; then check the
// copy's files and that nothing decrypted was left on disk.
func TestWorkspace(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe", "chromium"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testing.Short() {
				t.Skipf("%s not installed (-short)", tool)
			}
			t.Fatalf("%s not installed: run make deps", tool)
		}
	}
	dir := t.TempDir()
	testutil.Binary(t, "attuned") // built before TMPDIR moves: the scan below is of what this session leaves
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o700)
	t.Setenv("TMPDIR", tmp)
	stick := filepath.Join(dir, "stick")
	shots := os.Getenv("ATTUNE_SCREENSHOTS")

	d := testutil.StartDaemon(t, fmt.Sprintf("data = %q\n", filepath.Join(dir, "data")))
	home, err := laptop.OpenHome(filepath.Join(dir, "home"))
	if err != nil {
		t.Fatal(err)
	}
	srv, u := serve(t, home, Options{DeviceAddr: d.Link, CopyFolder: stick})
	if r, err := http.Get(strings.SplitN(u, "?", 2)[0]); err != nil || r.StatusCode != 403 {
		t.Fatalf("without the token: %v %v", r, err)
	}
	ctx := browser(t, 1400, 1000)
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			if shots == "" {
				return nil
			}
			var png []byte
			if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, "review-"+name+".png"), png, 0o644)
		})
	}
	run := func(what string, acts ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, acts...); err != nil {
			t.Fatalf("%s: %v\ndevice log:\n%s", what, err, d.Log.String())
		}
	}

	code := d.OpenPairing(t)
	run("pair",
		chromedp.Navigate(u),
		chromedp.WaitVisible(`#device[data-state="unpaired"]`, chromedp.ByQuery),
		chromedp.SendKeys(`#paircode`, code, chromedp.ByQuery),
		chromedp.SendKeys(`#pairlabel`, "The Rivers family", chromedp.ByQuery),
		chromedp.SendKeys(`#pairpass`, "rivers passphrase", chromedp.ByQuery),
		chromedp.Click(`#pairbtn`, chromedp.ByQuery),
		chromedp.WaitVisible(`#paired`, chromedp.ByQuery),
	)
	d.WaitState(t, "ready")
	d.Record(t, 4*time.Second, 1500*time.Millisecond)
	run("sync",
		chromedp.Click(`#syncbtn`, chromedp.ByQuery),
		chromedp.WaitVisible(`#syncbox[data-done]`, chromedp.ByQuery),
	)
	var done string
	run("sync result", chromedp.AttributeValue(`#syncbox`, "data-done", &done, nil, chromedp.ByQuery))
	if done != "ok" {
		var msg string
		chromedp.Run(ctx, text(`#syncmsg`, &msg))
		t.Fatalf("sync in the page: %s", msg)
	}
	// The device's battery, from its (simulated) fuel gauge.
	if r, err := http.Post(d.Panel+"api/panel/battery", "application/json", strings.NewReader(`{"percent":40}`)); err != nil || r.StatusCode != 200 {
		t.Fatalf("set the sim battery: %v %v", r, err)
	}
	run("battery", waitJS(`(loadDevice(), $("device").textContent.includes("battery 40%"))`))
	run("home", chromedp.WaitVisible(`button.open`, chromedp.ByQuery), chromedp.WaitVisible(`#device[data-state="reachable"]`, chromedp.ByQuery), shot("home"))
	var homeText string
	run("home text", text(`#home`, &homeText))
	for _, want := range []string{"The Rivers family", "cycle 1", "Connected", "minutes of filming"} {
		if !strings.Contains(homeText, want) {
			t.Errorf("home does not say %q:\n%s", want, homeText)
		}
	}
	cs, _ := home.Cases()
	if strings.Contains(homeText, cs[0].ID) {
		t.Errorf("home shows the case id outside its details")
	}

	// The case functions: film for another family, and back; close one.
	brook, err := home.NewCase("The Brook family", true, "")
	if err != nil {
		t.Fatal(err)
	}
	brookLi, riversLi := `li[data-case="`+brook.ID+`"]`, `li[data-case="`+cs[0].ID+`"]`
	run("use another case",
		chromedp.Evaluate(`loadHome()`, nil),
		chromedp.WaitVisible(brookLi+` button.use`, chromedp.ByQuery),
		chromedp.Click(brookLi+` button.use`, chromedp.ByQuery),
		chromedp.WaitVisible(brookLi+` .filming`, chromedp.ByQuery),
		chromedp.WaitVisible(riversLi+` button.use`, chromedp.ByQuery),
		shot("cases"),
	)
	if devs, _ := home.Devices(); len(devs) != 1 || devs[0].Case != brook.ID {
		t.Errorf("after Film this family next, the device records to %+v, want %s", devs, brook.ID)
	}
	// The ready display shows the case's number in turn with the minutes.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		p := d.PanelState(t)
		if strings.Contains(strings.ToLower(p.Display), strings.ToLower(brook.Number())) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the device's display %q never showed the Brook case's number %s", p.Display, brook.Number())
		}
	}
	if err := home.SaveSettings(laptop.Settings{RetentionDays: new(0)}); err != nil {
		t.Fatal(err)
	}
	var closedMsg, dueText string
	run("use back and close the other",
		chromedp.Click(riversLi+` button.use`, chromedp.ByQuery),
		chromedp.WaitVisible(riversLi+` .filming`, chromedp.ByQuery),
		chromedp.Click(brookLi+` details.closecase summary`, chromedp.ByQuery),
		chromedp.Click(brookLi+` button.close`, chromedp.ByQuery),
		chromedp.WaitVisible(`#duebox`, chromedp.ByQuery),
		text(`#casemsg`, &closedMsg), text(`#due`, &dueText),
	)
	if devs, _ := home.Devices(); devs[0].Case != cs[0].ID {
		t.Errorf("after Film this family next, the device records to %s, want the Rivers case", devs[0].Case)
	}
	if brook, _ = home.Case(brook.ID); brook.Closed == nil || !strings.Contains(closedMsg, "The Brook family is closed") || !strings.Contains(dueText, "The Brook family") {
		t.Errorf("closing in the page: %q, due %q, closed %v", closedMsg, dueText, brook.Closed)
	}

	recs, _ := home.Recordings()
	if len(recs) != 1 {
		t.Fatalf("vault: %+v", recs)
	}
	id, _ := home.Identity(cs[0], nil)
	film, err := LoadFilm(context.Background(), recs[0], id)
	if err != nil {
		t.Fatal(err)
	}
	if film.Len() < 90 || len(film.Marks) != 1 {
		t.Fatalf("film: %d frames, %d marks", film.Len(), len(film.Marks))
	}
	at := func(n int) string { return FormatTime(film.PTS[n] - film.PTS[0]) }
	check := func(want int) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			if err := chromedp.WaitVisible(fmt.Sprintf(`body[data-frame="%d"]`, want), chromedp.ByQuery).Do(ctx); err != nil {
				return err
			}
			var fn, tm string
			if err := chromedp.Run(ctx, text(`#frameno`, &fn), text(`#time`, &tm)); err != nil {
				return err
			}
			if fn != strconv.Itoa(want) || tm != at(want) {
				t.Errorf("at frame %d the page shows frame %q time %q, want %d %s", want, fn, tm, want, at(want))
			}
			return nil
		})
	}
	sec := film.FrameAt(film.PTS[3] + time.Second)
	run("open and step",
		chromedp.Click(`button.open`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-ready="1"]`, chromedp.ByQuery),
		check(0),
		key(kb.ArrowRight, 0), check(1),
		key(kb.ArrowRight, 0), check(2),
		chromedp.Click(`#fwd1`, chromedp.ByQuery), check(3),
		key(kb.ArrowRight, input.ModifierShift), check(sec),
		key(kb.ArrowLeft, input.ModifierShift), check(film.FrameAt(film.PTS[sec]-time.Second)),
		chromedp.Click(`#back1`, chromedp.ByQuery),
	)
	var made string
	// Set in at frame 10 and out at 39 with the keys; a clip and a still.
	run("clip",
		chromedp.Evaluate(`show(10)`, nil), check(10), key("i", 0),
		chromedp.Evaluate(`show(39)`, nil), check(39), key("o", 0),
		chromedp.SendKeys(`#cliplabel`, "She waits for his reply, then names what he did", chromedp.ByQuery),
		chromedp.SetValue(`#principle`, "receiving initiatives", chromedp.ByQuery),
		chromedp.Click(`#makeclip`, chromedp.ByQuery),
		chromedp.WaitVisible(`#clipmade`, chromedp.ByQuery),
		text(`#clipmade`, &made),
		chromedp.Click(`#makestill`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-still]`, chromedp.ByQuery),
		shot("recording"),
	)
	if !strings.Contains(made, "30 frames") {
		t.Errorf("clip made: %q, want 30 frames", made)
	}
	// Shared review: full screen, the clip plays, nothing but it.
	var sharedText string
	run("shared review",
		chromedp.Click(`#sharebtn`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-shared="clip"]`, chromedp.ByQuery),
		check(10),
		shot("shared"),
	)
	var drawn struct{ Drawn, Skipped int }
	run("shared play",
		chromedp.Click(`#splay`, chromedp.ByQuery),
		waitJS(`!playing && +document.body.dataset.frame === 39`),
		chromedp.Evaluate(`({drawn: stats.drawn, skipped: stats.skipped})`, &drawn),
		waitJS(`+document.body.dataset.frame > 20`),
		text(`#shared`, &sharedText),
		chromedp.Click(`#sexit`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-screen="rec"]`, chromedp.ByQuery),
	)
	if drawn.Drawn+drawn.Skipped != 29 && drawn.Drawn+drawn.Skipped != 30 {
		t.Errorf("the clip played %d frames (and skipped %d), want frames 10 to 39", drawn.Drawn, drawn.Skipped)
	}
	if strings.Contains(sharedText, "Rivers") || strings.Contains(sharedText, film.ID) || !strings.Contains(sharedText, "She waits") {
		t.Errorf("shared review shows %q: want the clip's label, no family name, no ids", sharedText)
	}
	run("family copy",
		chromedp.Click(`#copybtn`, chromedp.ByQuery),
		chromedp.WaitVisible(`#copied`, chromedp.ByQuery),
	)
	var copied string
	run("copy text", text(`#copied`, &copied))
	if !strings.Contains(copied, "MP4") {
		t.Errorf("the page does not say which form was written: %q", copied)
	}

	// Consent to a family copy withdrawn in the page: the copy is refused,
	// in words, and nothing more is recorded.
	var refused string
	run("withdraw family_copy",
		awaitEval(`goHome()`, nil),
		chromedp.WaitVisible(riversLi+` details.consent`, chromedp.ByQuery),
		chromedp.Click(riversLi+` details.consent summary`, chromedp.ByQuery),
		chromedp.SendKeys(riversLi+` input.who`, "the mother", chromedp.ByQuery),
		chromedp.Click(riversLi+` li[data-scope="family_copy"] button.withdraw`, chromedp.ByQuery),
		chromedp.WaitVisible(riversLi+` li[data-scope="family_copy"] .err`, chromedp.ByQuery),
		chromedp.Click(`button.open`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-screen="rec"]`, chromedp.ByQuery),
		chromedp.SetValue(`#copyfolder`, filepath.Join(dir, "stick2"), chromedp.ByQuery),
		chromedp.Click(`#copybtn`, chromedp.ByQuery),
		chromedp.WaitVisible(`#copymsg .err`, chromedp.ByQuery),
		text(`#copymsg`, &refused),
	)
	if !strings.Contains(refused, "refused") || !strings.Contains(refused, "withdrawn") {
		t.Errorf("the page says %q after the withdrawal, want the copy refused because consent was withdrawn", refused)
	}
	if _, err := os.Stat(filepath.Join(dir, "stick2")); err == nil {
		t.Error("the refused copy made its folder")
	}

	// The family copy: the MP4 has the clip's frames, the picture is the
	// recorded JPEG byte for byte, the copy is recorded with the case.
	mp4 := filepath.Join(stick, "Clip 1.mp4")
	if n := frameCount(t, mp4); n != 30 {
		t.Errorf("family MP4: %d frames, want 30", n)
	}
	if b, err := os.ReadFile(filepath.Join(stick, "Picture 1.jpg")); err != nil || !bytes.Equal(b, frameOf(t, film, 39)) {
		t.Errorf("the family's picture is not the recorded JPEG of frame 39 (%v)", err)
	}
	// Recorded with the case as its plaintext exports are (one record a
	// file written from the footage: the clip and the picture).
	copies, _ := home.Exports(cs[0])
	if len(copies) != 2 || copies[0].Path != mp4 || copies[0].Purpose != laptop.ScopeFamilyCopy || filepath.Dir(copies[1].Path) != stick {
		t.Errorf("copies recorded with the case: %+v", copies)
	}
	// The clip as saved, cut losslessly: its first frame decodes like frame
	// 10 of the full export.
	n, err := LoadNotes(home, cs[0], id)
	if err != nil || len(n.Clips) != 1 || n.Clips[0].In != 10 || n.Clips[0].Out != 39 || n.Clips[0].Principle != "receiving initiatives" {
		t.Fatalf("notes: %+v %v", n, err)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o700)
	full := filepath.Join(out, "full.mkv")
	if _, _, err := home.ExportRecording(context.Background(), recs[0], id, full, false); err != nil {
		t.Fatal(err)
	}
	lossless := filepath.Join(out, "clip.avi")
	if _, err := film.WriteClip(context.Background(), n.Clips[0].In, n.Clips[0].Out, AVI, lossless, ClipOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := frameCount(t, lossless); c != 30 {
		t.Errorf("lossless clip: %d frames, want 30", c)
	}
	if frameHash(t, lossless, 0) != frameHash(t, full, 10) {
		t.Error("the clip's first frame differs from frame 10 of the full export")
	}
	// The MP4 plays in Chromium's <video>, from the stick's index.html.
	var played float64
	run("index.html plays",
		chromedp.Navigate("file://"+filepath.Join(stick, "index.html")),
		chromedp.WaitReady(`video`, chromedp.ByQuery),
		chromedp.Evaluate(`(v => { v.muted = true; v.play(); })(document.querySelector("video"))`, nil),
		waitJS(`document.querySelector("video").currentTime > 0.3 || !!document.querySelector("video").error`),
		chromedp.Evaluate(`document.querySelector("video").error ? -1 : document.querySelector("video").currentTime`, &played),
	)
	if played <= 0.3 {
		t.Errorf("the family MP4 does not play in Chromium (currentTime %v)", played)
	}
	_ = srv
	// Nothing decrypted under the home or TMPDIR (the browser's profile
	// included): not a frame, not the sound, not the notes.
	if err := chromedp.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	plain := append(plaintextOf(t, film), []byte(`"label":"She waits for his reply, then names what he did"`)...)
	if files := testutil.AssertNoPlaintext(t, plain, home.Dir, tmp); files < 10 {
		t.Errorf("scanned only %d files", files)
	}
	sum := sha256.Sum256(frameOf(t, film, 0))
	_ = sum
}
