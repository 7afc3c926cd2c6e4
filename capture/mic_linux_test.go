//go:build linux && cgo && microphone

package capture

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/mkv"
)

// There is no sound hardware where these tests run. With ALSA installed,
// miniaudio lists ALSA's "null" PCM, which delivers silence as fast as it is
// read; without any sound library it falls back to its null backend, whose
// "NULL Capture Device" delivers silence in real time. Neither panics.

func TestOpenMicrophoneUnknownName(t *testing.T) {
	_, err := OpenMicrophone("no-such-microphone-7f3a")
	if err == nil {
		t.Fatal("opened a nonsense device")
	}
	if !strings.HasPrefix(err.Error(), `microphone: no capture device "no-such-microphone-7f3a" (available: `) {
		t.Errorf("err = %v", err)
	}
	t.Log(err)
}

func TestOpenMicrophoneDefault(t *testing.T) {
	src, err := OpenMicrophone("")
	if err != nil {
		// Only silent devices here: the default must refuse them.
		if !errors.Is(err, ErrNoMicrophone) {
			t.Errorf("err = %v", err)
		}
		t.Log(err)
		return
	}
	t.Log("a real microphone is present")
	micReadSome(t, src)
}

// TestOpenMicrophoneNull records from a silent device by name, when there is
// one, to run the whole path: open, read, convert, close.
func TestOpenMicrophoneNull(t *testing.T) {
	var src Source
	var err error
	for _, name := range []string{"null", "NULL Capture Device"} {
		if src, err = OpenMicrophone(name); err == nil {
			break
		}
	}
	if err != nil {
		t.Skipf("no silent device to test with: %v", err)
	}
	micReadSome(t, src)
}

func micReadSome(t *testing.T, src Source) {
	t.Helper()
	want := mkv.Track{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 48000, Channels: 1, BitDepth: 16}
	if tr := src.Tracks(); len(tr) != 1 || tr[0] != want {
		t.Errorf("tracks = %+v", tr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	last := time.Duration(-1 << 62)
	for i := range 10 {
		p, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("Next %d: %v", i, err)
		}
		if p.Kind != mkv.Audio || !p.Key || len(p.Data) == 0 || len(p.Data)%2 != 0 || p.PTS < last || p.PTS > Now() {
			t.Fatalf("packet %d: kind %v, %d bytes, PTS %v after %v", i, p.Kind, len(p.Data), p.PTS, last)
		}
		last = p.PTS
	}
	// Close while Next waits, and again.
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := src.Next(context.Background()); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := src.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
	t.Logf("closed in %v", time.Since(start))
}
