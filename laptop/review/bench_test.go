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
// drawn) and of a one-second jump, and playback at 1×. It runs with
// ATTUNE_REVIEW_BENCH=1 (make bench); its figures are in docs/BENCHMARKS.md.
func TestReviewBench(t *testing.T) {
	if os.Getenv("ATTUNE_REVIEW_BENCH") == "" {
		t.Skip("set ATTUNE_REVIEW_BENCH=1 (make bench)")
	}
	for _, size := range []struct{ w, h int }{{1280, 720}, {1920, 1080}} {
		t.Run(fmt.Sprintf("%dp", size.h), func(t *testing.T) {
			home, err := laptop.OpenHome(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			c, err := home.NewCase("Bench family", true, "")
			if err != nil {
				t.Fatal(err)
			}
			vr := vaultRecording(t, home, c, size.w, size.h, 12)
			_, u := serve(t, home, Options{})
			ctx := browser(t, 1400, 1000)
			var steps, jumps []float64
			var play struct {
				Drawn, Skipped, Late int
				Ms                   float64
			}
			err = chromedp.Run(ctx,
				chromedp.Navigate(u),
				chromedp.WaitVisible(`button.open`, chromedp.ByQuery),
				chromedp.Click(`button.open`, chromedp.ByQuery),
				chromedp.WaitVisible(`body[data-ready="1"]`, chromedp.ByQuery),
				// Steps as a person makes them: a pause, then a step (forward
				// mostly, some back).
				awaitEval(`(async () => { const out = []; for (let i = 0; i < 80; i++) {
					await new Promise(r => setTimeout(r, 60));
					const t0 = performance.now(); await step(i % 5 === 4 ? -1 : 1);
					await new Promise(r => requestAnimationFrame(r)); out.push(performance.now() - t0); } return out; })()`, &steps),
				awaitEval(`(async () => { const out = []; for (let i = 0; i < 20; i++) {
					await new Promise(r => setTimeout(r, 60));
					const t0 = performance.now(); await stepSeconds(i % 4 === 3 ? -1 : 1);
					await new Promise(r => requestAnimationFrame(r)); out.push(performance.now() - t0); } return out; })()`, &jumps),
				awaitEval(`(async () => { await show(0); await new Promise(r => setTimeout(r, 300)); await play();
					while (playing) await new Promise(r => setTimeout(r, 100));
					return {drawn: stats.drawn, skipped: stats.skipped, late: stats.late, ms: stats.ended - stats.started}; })()`, &play),
			)
			if err != nil {
				t.Fatal(err)
			}
			frames := 12 * 30
			t.Logf("%dx%d (%s): frame step p50 %.1f ms p95 %.1f ms; 1 s jump p50 %.1f ms p95 %.1f ms; playback 1×: %d of %d frames drawn in %.2f s (%.1f fps), %d skipped",
				size.w, size.h, vr.ID, percentile(steps, .5), percentile(steps, .95), percentile(jumps, .5), percentile(jumps, .95),
				play.Drawn, frames, play.Ms/1000, float64(play.Drawn)/(play.Ms/1000), play.Skipped)
			if p := percentile(steps, .95); p > 50 {
				t.Errorf("frame step p95 %.1f ms, goal under 50", p)
			}
		})
	}
}
