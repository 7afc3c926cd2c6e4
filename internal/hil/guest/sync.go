//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"attune.dev/attune/alsa"
	"attune.dev/attune/internal/monoclock"
	"golang.org/x/sys/unix"
)

// The sync scenario's timing: a click every clickEvery, recording for
// syncSeconds, attuned stopped (SIGSTOP) for stallFor at stallAt.
const (
	syncSeconds = 5
	clickLen    = 20 * time.Millisecond
	playLead    = 250 * time.Millisecond // sound written this far ahead of playing
	stallAt     = 2 * time.Second
	stallFor    = 700 * time.Millisecond
)

// loopbackCard is the card number of snd-aloop's card ("Loopback").
func loopbackCard() (int, error) {
	ids, _ := filepath.Glob("/sys/class/sound/card*/id")
	for _, p := range ids {
		b, _ := os.ReadFile(p)
		if strings.TrimSpace(string(b)) == "Loopback" {
			var n int
			fmt.Sscanf(filepath.Base(filepath.Dir(p)), "card%d", &n)
			return n, nil
		}
	}
	return 0, fmt.Errorf("no Loopback sound card (snd-aloop) in /sys/class/sound")
}

// syncScenario records v4l2loopback's picture and snd-aloop's sound while
// a player writes 1 kHz clicks into the loopback's playback side and the
// feeder writes a marker frame (/hil/marker.jpg) when each click plays;
// halfway, attuned is stopped for 0.7 s. The guest notes, per click, when
// it played and when its marker frame was written (both CLOCK_MONOTONIC);
// the host finds the clicks and marker frames in the recording and checks
// that their offsets match these to within a frame (33 ms), and that each
// track's timestamps strictly increase.
func syncScenario(r *Result) error {
	dev, err := videoNode("hil-loop")
	if err != nil {
		return err
	}
	card, err := loopbackCard()
	if err != nil {
		return err
	}
	frames, _ := filepath.Glob("/hil/frames/*.jpg")
	sort.Strings(frames)
	var jpegs [][]byte
	for _, f := range frames {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		jpegs = append(jpegs, b)
	}
	marker, err := os.ReadFile("/hil/marker.jpg")
	if err != nil || len(jpegs) == 0 {
		return fmt.Errorf("frames: %v", err)
	}
	fd, err := unix.Open(dev, unix.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer unix.Close(fd)
	if err := setOutputFormat(fd, 640, 480, fourcc("MJPG")); err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	play, err := newPlayer(fmt.Sprintf("/dev/snd/pcmC%dD0p", card))
	if err != nil {
		return err
	}
	defer play.pcm.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clicks := make(chan time.Duration, 16) // when each click plays
	var wg sync.WaitGroup
	var feedErr, playErr error
	var mu sync.Mutex
	var pairs [][2]float64 // per click: played, marker written (s, CLOCK_MONOTONIC)
	wg.Add(2)
	go func() {
		defer wg.Done()
		playErr = play.run(ctx, clicks)
		close(clicks)
	}()
	go func() {
		defer wg.Done()
		feedErr = feed(ctx, fd, jpegs, marker, clicks, func(played, wrote time.Duration) {
			mu.Lock()
			pairs = append(pairs, [2]float64{played.Seconds(), wrote.Seconds()})
			mu.Unlock()
		})
	}()
	time.Sleep(300 * time.Millisecond) // the capture side appears once a frame is written

	// attuned record, stopped for stallFor at stallAt.
	data := "/data/sync"
	os.MkdirAll(data, 0o755)
	var stdout, stderr bytes.Buffer
	rctx, rcancel := context.WithTimeout(context.Background(), time.Duration(syncSeconds+60)*time.Second)
	defer rcancel()
	audio := fmt.Sprintf("alsa:hw:%d,1", card)
	cmd := exec.CommandContext(rctx, "/hil/attuned", "record", "--source", "v4l2:"+dev, "--audio", audio,
		"--recipients", "/hil/recipients.txt", "--data", data,
		"--duration", fmt.Sprintf("%ds", syncSeconds), "--log", "info")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(stallAt)
	stopped := monoclock.Now()
	cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(stallFor)
	cmd.Process.Signal(syscall.SIGCONT)
	resumed := monoclock.Now()
	runErr := cmd.Wait()
	logf("sync: attuned record took %v; stderr:\n%s", time.Since(t).Round(time.Millisecond), stderr.String())
	cancel()
	wg.Wait()
	if runErr != nil {
		return fmt.Errorf("attuned record --audio %s: %v\n%s", audio, runErr, stderr.String())
	}
	if feedErr != nil {
		return feedErr
	}
	if playErr != nil {
		return playErr
	}
	id := strings.TrimSpace(stdout.String())
	if id == "" {
		return fmt.Errorf("attuned record printed no recording id\n%s", stderr.String())
	}
	r.Notes = append(r.Notes, fmt.Sprintf("attuned stopped (SIGSTOP) for %v, %d clicks played with their marker frames; player: %v, %d underruns",
		(resumed-stopped).Round(time.Millisecond), len(pairs), play.cfg, play.underruns))
	r.Extra = map[string]any{"id": id, "data": "data/sync", "seconds": syncSeconds, "pairs": pairs,
		"stall": []float64{stopped.Seconds(), resumed.Seconds()}, "overrun_lines": strings.Count(stderr.String(), "audio overrun")}
	return nil
}

// clickAt is when click j starts, from the player's start: irregular gaps
// (400–650 ms), so that the host can tell the clicks apart by their
// spacing.
func clickAt(j int) time.Duration {
	var t time.Duration
	for i := 0; i <= j; i++ {
		t += 400*time.Millisecond + time.Duration(i*137%250)*time.Millisecond
	}
	return t
}

// player writes silence with 1 kHz clicks into a loopback playback PCM,
// keeping playLead of sound queued.
type player struct {
	pcm       *alsa.PCM
	cfg       alsa.Config
	underruns int
}

func newPlayer(path string) (*player, error) {
	pcm, err := alsa.OpenPCM(path)
	if err != nil {
		return nil, err
	}
	cfg, err := alsa.Negotiate(pcm)
	if err == nil && (cfg.Format != alsa.FormatS16LE || cfg.Channels != 1) {
		err = fmt.Errorf("negotiated %v, want S16_LE mono", cfg)
	}
	if err == nil {
		err = pcm.SetSWParams(&alsa.SWParams{TstampMode: alsa.TstampEnable, PeriodStep: 1, AvailMin: uint(cfg.PeriodFrames),
			StartThreshold: uint(cfg.BufferFrames), StopThreshold: uint(cfg.BufferFrames), Proto: alsa.ProtocolVersion, TstampType: alsa.TstampTypeMonotonic})
	}
	if err != nil {
		pcm.Close()
		return nil, fmt.Errorf("player %s: %w", path, err)
	}
	return &player{pcm: pcm, cfg: cfg}, nil
}

// run plays until ctx is done, sending when each click will play (its
// first sample, on CLOCK_MONOTONIC) before it does.
func (p *player) run(ctx context.Context, clicks chan<- time.Duration) error {
	rate := int64(p.cfg.Rate)
	frames := func(d time.Duration) int64 { return int64(d) * rate / int64(time.Second) }
	length, lead, chunk := frames(clickLen), frames(playLead), int64(p.cfg.PeriodFrames)
	buf := make([]byte, 2*max(chunk, lead))
	var k int64 // frames written
	j := 0      // the next click
	write := func(n int64) error {
		for i := range n {
			var v int16
			for c := max(j-1, 0); c <= j; c++ {
				if pos := k + i - frames(clickAt(c)); pos >= 0 && pos < length {
					v = int16(20000 * math.Sin(2*math.Pi*1000*float64(pos)/float64(rate)))
				}
			}
			binary.LittleEndian.PutUint16(buf[2*i:], uint16(v))
		}
		for done := int64(0); done < n; {
			m, err := p.pcm.WriteFrames(buf[2*done:2*n], int(n-done))
			if err == alsa.ErrAgain {
				p.pcm.Wait(50 * time.Millisecond)
				continue
			}
			if err == alsa.ErrOverrun {
				k += n
				return err
			}
			if err != nil {
				return fmt.Errorf("player: write: %w", err)
			}
			done += int64(m)
		}
		k += n
		return nil
	}
	// start (re)starts the stream with lead frames queued; an underrun
	// (the guest descheduled longer than the lead) restarts it.
	var base int64 // k when the stream last started: its pointers count from there
	start := func() error {
		if err := p.pcm.Prepare(); err != nil {
			return fmt.Errorf("player: prepare: %w", err)
		}
		base = k
		if err := write(lead); err != nil {
			return err
		}
		if err := p.pcm.Start(); err != nil {
			return fmt.Errorf("player: start: %w", err)
		}
		return nil
	}
	if err := start(); err != nil {
		return err
	}
	for ctx.Err() == nil {
		st, err := p.pcm.Status()
		if err != nil {
			return fmt.Errorf("player: status: %w", err)
		}
		if st.State != alsa.StateRunning {
			p.underruns++
			if err := start(); err != nil {
				return err
			}
			continue
		}
		queued := int64(st.ApplPtr) - int64(st.HwPtr)
		if queued >= lead {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		n := min(chunk, lead-queued)
		// Say when the next click will play once it is in what is written now.
		if next := frames(clickAt(j)); next < k+n {
			at := st.Tstamp + time.Duration((next-base-int64(st.HwPtr))*int64(time.Second)/rate)
			select {
			case clicks <- at:
			default:
			}
			j++
		}
		if err := write(n); err == alsa.ErrOverrun {
			continue // underrun: the status says so next
		} else if err != nil {
			return err
		}
	}
	p.pcm.Drop()
	return nil
}

// feed writes the JPEGs to v4l2loopback at 30 fps, and the marker frame
// when each click plays, noting when it was written.
func feed(ctx context.Context, fd int, jpegs [][]byte, marker []byte, clicks <-chan time.Duration, note func(played, wrote time.Duration)) error {
	const interval = time.Second / 30
	next := monoclock.Now()
	var pending []time.Duration
	for i := 0; ctx.Err() == nil; {
		for more := true; more; {
			select {
			case c, ok := <-clicks:
				if ok {
					pending = append(pending, c)
				} else {
					more = false
				}
			default:
				more = false
			}
		}
		// Frames at least gap apart: the recording's timestamps are in
		// milliseconds, and a real camera's are 33 ms apart.
		const gap = 10 * time.Millisecond
		frame, at := jpegs[i%len(jpegs)], next
		isMarker := len(pending) > 0 && pending[0] < next+gap
		if isMarker {
			frame, at = marker, pending[0]
			next = max(next, at+gap)
		}
		if d := at - monoclock.Now(); d > 0 {
			time.Sleep(d)
		}
		before := monoclock.Now()
		if _, err := unix.Write(fd, frame); err != nil {
			return fmt.Errorf("feed: %w", err)
		}
		if isMarker {
			note(pending[0], (before+monoclock.Now())/2)
			pending = pending[1:]
			continue
		}
		i++
		next += interval
	}
	return nil
}
