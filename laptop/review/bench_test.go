package review

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"attune.dev/attune/internal/benchdoc"
	"attune.dev/attune/laptop"
	"attune.dev/attune/mkv"
	"attune.dev/attune/storage"
)

// testJPEGs encodes n distinct w×h pictures (gradients, moving shapes and
// noise, so they compress like footage).
func testJPEGs(t testing.TB, w, h, n int) [][]byte {
	out := make([][]byte, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range out {
		img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
		cx, cy := w/2+int(float64(w/3)*math.Cos(float64(i)/5)), h/2+int(float64(h/3)*math.Sin(float64(i)/5))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := uint8((x*255/w + y*64/h + rng.IntN(24)) & 0xff)
				if (x-cx)*(x-cx)+(y-cy)*(y-cy) < (h/6)*(h/6) {
					v = 230
				}
				img.Y[y*img.YStride+x] = v
			}
		}
		for y := 0; y < h/2; y++ {
			for x := 0; x < w/2; x++ {
				img.Cb[y*img.CStride+x] = uint8(100 + x*60/w)
				img.Cr[y*img.CStride+x] = uint8(120 + y*80/h + i)
			}
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
			t.Fatal(err)
		}
		out[i] = b.Bytes()
	}
	return out
}

// vaultRecording writes a recording of secs seconds of w×h at 30 fps with
// a 48 kHz tone into the vault of home, sealed to case c, as sync leaves it.
func vaultRecording(t testing.TB, home *laptop.Home, c *laptop.Case, w, h int, secs int) laptop.VaultRecording {
	t.Helper()
	rcpt, err := storage.ParseRecipients(strings.NewReader(strings.Join(c.Recipients, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	rcpt.CaseRef = c.ID
	st, err := storage.Open(filepath.Join(t.TempDir(), "data"), storage.Options{Free: func(string) (uint64, error) { return 1 << 40, nil }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tracks := []mkv.Track{
		{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: w, Height: h, FPS: 30},
		{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 48000, Channels: 1, BitDepth: 16},
	}
	rec, err := st.Create(rcpt, storage.Manifest{Started: time.Now().UTC(), ClockTrusted: true, Source: "bench",
		Tracks: []storage.Track{{Kind: "video", Codec: "mjpeg", Width: w, Height: h, FPS: 30}, {Kind: "audio", Codec: "pcm_s16le", SampleRate: 48000, Channels: 1}},
		Marks:  []storage.Mark{{Offset: 2}, {Offset: float64(secs) / 2}}})
	if err != nil {
		t.Fatal(err)
	}
	lw, err := mkv.NewLiveWriter(rec, tracks, mkv.LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pics := testJPEGs(t, w, h, 30)
	for i := 0; i < secs*30; i++ {
		at := time.Duration(i) * time.Second / 30
		lw.WritePacket(mkv.Packet{Kind: mkv.Video, PTS: at, Data: pics[i%len(pics)], Key: true})
		pcm := make([]byte, 1600*2)
		for s := 0; s < 1600; s++ {
			binary.LittleEndian.PutUint16(pcm[2*s:], uint16(int16(8000*math.Sin(2*math.Pi*440*float64(i*1600+s)/48000))))
		}
		lw.WritePacket(mkv.Packet{Kind: mkv.Audio, PTS: at, Data: pcm, Key: true})
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(func(m *storage.Manifest) { m.Duration = float64(secs) }); err != nil {
		t.Fatal(err)
	}
	vault := filepath.Join(home.Dir, "vault", c.ID)
	os.MkdirAll(vault, 0o700)
	if err := os.Rename(filepath.Join(st.Dir(), rec.ID()), filepath.Join(vault, rec.ID())); err != nil {
		t.Fatal(err)
	}
	vr, err := home.FindRecording(rec.ID())
	if err != nil || !vr.Synced() {
		t.Fatalf("vault recording: %+v %v", vr, err)
	}
	return vr
}

func awaitEval(expr string, res any) chromedp.Action {
	return chromedp.Evaluate(expr, res, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })
}

func percentile(ms []float64, p float64) float64 {
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestReviewBench measures the recording view in headless Chromium at 720p30
// and 1080p30: the latency of a frame step (from the key to the picture
// drawn) and of a one-second jump, playback at 1× (frames drawn and
// skipped), and how far the picture strays from the sound while playing.
// It runs with ATTUNE_REVIEW_BENCH=1 (make bench), and writes its figures
// into the markdown file ATTUNE_REVIEW_BENCH_DOC names (docs/BENCHMARKS.md),
// between the benchreview markers.
func TestReviewBench(t *testing.T) {
	if os.Getenv("ATTUNE_REVIEW_BENCH") == "" {
		t.Skip("set ATTUNE_REVIEW_BENCH=1 (make bench)")
	}
	type result struct {
		w, h         int
		steps, jumps []float64
		play         playStats
	}
	var results []result
	for _, size := range []struct{ w, h int }{{1280, 720}, {1920, 1080}} {
		t.Run(fmt.Sprintf("%dp", size.h), func(t *testing.T) {
			home, c := newCase(t, "Bench family")
			vr := vaultRecording(t, home, c, size.w, size.h, 12)
			_, u := serve(t, home, Options{})
			ctx := browser(t, 1400, 1000)
			r := result{w: size.w, h: size.h}
			err := chromedp.Run(ctx,
				chromedp.Navigate(u),
				chromedp.WaitVisible(`button.open`, chromedp.ByQuery),
				chromedp.Click(`button.open`, chromedp.ByQuery),
				chromedp.WaitVisible(`body[data-ready="1"]`, chromedp.ByQuery),
				// Steps as a person makes them: a pause, then a step (forward
				// mostly, some back).
				awaitEval(`(async () => { const out = []; for (let i = 0; i < 80; i++) {
					await new Promise(r => setTimeout(r, 60));
					const t0 = performance.now(); await step(i % 5 === 4 ? -1 : 1);
					await new Promise(r => requestAnimationFrame(r)); out.push(performance.now() - t0); } return out; })()`, &r.steps),
				awaitEval(`(async () => { const out = []; for (let i = 0; i < 20; i++) {
					await new Promise(r => setTimeout(r, 60));
					const t0 = performance.now(); await stepSeconds(i % 4 === 3 ? -1 : 1);
					await new Promise(r => requestAnimationFrame(r)); out.push(performance.now() - t0); } return out; })()`, &r.jumps),
				awaitEval(`(async () => { await show(0); await new Promise(r => setTimeout(r, 300)); await play();
					while (playing) await new Promise(r => setTimeout(r, 100));
					return {drawn: stats.drawn, skipped: stats.skipped, late: stats.late, ms: stats.ended - stats.started,
						maxOff: stats.maxOff, maxLagMs: stats.maxLagMs, audioClock: !!stats.audioClock, frames: film.frames}; })()`, &r.play),
			)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%dx%d (%s): frame step p50 %.1f ms p95 %.1f ms; 1 s jump p50 %.1f ms p95 %.1f ms; playback 1×: %d of %d frames drawn in %.2f s (%.1f fps), %d skipped; picture at most %d frames (%.1f ms) from the sound, sound card clock %v",
				size.w, size.h, vr.ID, percentile(r.steps, .5), percentile(r.steps, .95), percentile(r.jumps, .5), percentile(r.jumps, .95),
				r.play.Drawn, r.play.Frames, r.play.Ms/1000, float64(r.play.Drawn)/(r.play.Ms/1000), r.play.Skipped, r.play.MaxOff, r.play.MaxLagMs, r.play.AudioClock)
			if p := percentile(r.steps, .95); p > 50 {
				t.Errorf("frame step p95 %.1f ms, goal under 50", p)
			}
			if r.play.Drawn+r.play.Skipped < r.play.Frames-1 || r.play.Drawn == 0 {
				t.Errorf("playback drew %d and skipped %d of %d frames: it did not run to the end", r.play.Drawn, r.play.Skipped, r.play.Frames)
			}
			results = append(results, r)
		})
	}
	doc := os.Getenv("ATTUNE_REVIEW_BENCH_DOC")
	if doc == "" || len(results) != 2 {
		return
	}
	var b strings.Builder
	b.WriteString(reviewBenchStart + "\n## The review workspace (`attune ui`) in headless Chromium\n\n")
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "_Written by `make bench` (`TestReviewBench` in `laptop/review`) on %s, load average %s at the end; everything between the benchreview markers is replaced on each run._\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), strings.Join(strings.Fields(string(load))[:3], " "))
	b.WriteString("A 12 s recording of 30 distinct JPEGs (Go's encoder, quality 85, 4:2:0) at 30 fps and a 48 kHz tone, sealed in the vault like a synced one; " +
		"Chromium (Debian 12's, headless, no GPU) opens it in the workspace. A frame step is timed in the page from the call to the next animation frame after the picture is drawn: " +
		"80 steps with 60 ms between them (one in five backwards); a 1 s jump likewise, 20 of them. Playback at 1× runs the whole recording: frames drawn, and frames skipped because they were not decoded in time. " +
		"At every animation frame while playing, the page compares the frame on screen with the frame whose time the sound is at (the sound card's clock, less its output latency, drives the pictures): " +
		"0 frames off means the sound is within the frame shown.\n\n")
	b.WriteString("| | frame step p50 / p95 (goal p95 < 50 ms) | 1 s jump p50 / p95 | playback 1×: frames drawn, skipped (goal 0) | fps | picture from the sound, at most | clock |\n|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		clock := "sound card"
		if !r.play.AudioClock {
			clock = "wall (no sound output)"
		}
		fmt.Fprintf(&b, "| %d×%d | %.1f / %.1f ms | %.0f / %.0f ms | %d of %d, %d skipped | %.1f | %d frames (the sound at most %.0f ms into the frame shown) | %s |\n", r.w, r.h,
			percentile(r.steps, .5), percentile(r.steps, .95), percentile(r.jumps, .5), percentile(r.jumps, .95),
			r.play.Drawn, r.play.Frames, r.play.Skipped, float64(r.play.Drawn)/(r.play.Ms/1000), r.play.MaxOff, r.play.MaxLagMs, clock)
	}
	b.WriteString("\nFrames around the one shown are fetched and decoded ahead (`createImageBitmap`); a jump of a second lands outside that window and waits for its decode. " +
		"Decoding a 1080p JPEG takes most of a CPU's time at 30 fps in this Chromium, so on a machine busy with other work playback skips frames: " +
		"the picture follows the sound's clock and skips a frame that is not decoded in time, rather than letting the sound drift.\n")
	b.WriteString(reviewBenchEnd + "\n")
	if err := benchdoc.Update(doc, reviewBenchStart, reviewBenchEnd, b.String()); err != nil {
		t.Fatal(err)
	}
}

const (
	reviewBenchStart = "<!-- benchreview:start -->"
	reviewBenchEnd   = "<!-- benchreview:end -->"
)

// playStats are the page's figures for one playback at 1×.
type playStats struct {
	Drawn, Skipped, Late, Frames int
	Ms                           float64
	MaxOff                       int
	MaxLagMs                     float64
	AudioClock                   bool
}
