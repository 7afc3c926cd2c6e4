package review

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"

	"attune.dev/attune/laptop"
	"attune.dev/attune/mkv"
)

// Film is a recording decrypted into memory: its JPEG frames as recorded,
// byte for byte, and its sound as one run of 16-bit PCM. It is never
// written to disk.
type Film struct {
	ID     string
	Video  mkv.Track
	Audio  *mkv.Track // nil without sound
	Frames [][]byte
	PTS    []time.Duration // of each frame
	// PCM is the sound, interleaved signed 16-bit little-endian samples
	// starting at AudioStart; gaps in the recording are silence.
	PCM        []byte
	AudioStart time.Duration
	Marks      []time.Duration
	Started    time.Time // wall time of the start, if the device clock was trusted
	Damaged    error     // set when the recording is damaged part-way: the film holds what came before
}

// LoadFilm decrypts a vault recording into memory.
func LoadFilm(ctx context.Context, vr laptop.VaultRecording, id age.Identity) (*Film, error) {
	m, err := vr.Manifest(id)
	if err != nil {
		return nil, fmt.Errorf("open recording: %v", err)
	}
	s, err := vr.Stream(id)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	defer s.Close()
	f, err := ReadFilm(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	f.ID = vr.ID
	for _, mk := range laptop.MarksOf(m) {
		f.Marks = append(f.Marks, mk.Offset)
	}
	sort.Slice(f.Marks, func(i, j int) bool { return f.Marks[i] < f.Marks[j] })
	if m.ClockTrusted {
		f.Started = m.Started
	}
	return f, nil
}

// ReadFilm reads a recording's decrypted stream into memory.
func ReadFilm(ctx context.Context, stream io.Reader) (*Film, error) {
	rd, err := mkv.NewReader(stream, true)
	if err != nil {
		return nil, err
	}
	f := &Film{}
	for _, t := range rd.Tracks() {
		switch t.Kind {
		case mkv.Video:
			f.Video = t
		case mkv.Audio:
			t := t
			f.Audio = &t
		}
	}
	haveAudio := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Damaged = err
			break
		}
		switch p.Kind {
		case mkv.Video:
			f.Frames = append(f.Frames, p.Data)
			f.PTS = append(f.PTS, p.PTS)
		case mkv.Audio:
			if f.Audio == nil {
				continue
			}
			if !haveAudio {
				f.AudioStart, haveAudio = p.PTS, true
			}
			f.placePCM(p)
		}
	}
	if len(f.Frames) == 0 {
		return nil, errors.New("the recording holds no pictures")
	}
	// Frames in presentation order (the device writes them so; be sure).
	if !sort.SliceIsSorted(f.PTS, func(i, j int) bool { return f.PTS[i] < f.PTS[j] }) {
		idx := make([]int, len(f.PTS))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(i, j int) bool { return f.PTS[idx[i]] < f.PTS[idx[j]] })
		fr, pts := make([][]byte, len(idx)), make([]time.Duration, len(idx))
		for i, k := range idx {
			fr[i], pts[i] = f.Frames[k], f.PTS[k]
		}
		f.Frames, f.PTS = fr, pts
	}
	return f, nil
}

// frameBytes is the size of one sample frame (all channels).
func (f *Film) frameBytes() int {
	if f.Audio == nil {
		return 0
	}
	return 2 * max(1, f.Audio.Channels)
}

// sampleAt is the index of the audio sample frame at t.
func (f *Film) sampleAt(t time.Duration) int64 {
	return int64((t-f.AudioStart).Seconds()*float64(f.Audio.SampleRate) + 0.5)
}

// placePCM puts an audio packet at its place in PCM: a gap before it is
// filled with silence, an overlap is overwritten.
func (f *Film) placePCM(p mkv.Packet) {
	fb := f.frameBytes()
	at := int(max(0, f.sampleAt(p.PTS))) * fb
	// Packets within a couple of milliseconds of the end simply continue.
	if d := at - len(f.PCM); d < 0 && d > -2*fb*f.Audio.SampleRate/1000 || d > 0 && d < 2*fb*f.Audio.SampleRate/1000 {
		at = len(f.PCM)
	}
	data := p.Data[:len(p.Data)/fb*fb]
	if at > len(f.PCM) {
		f.PCM = append(f.PCM, make([]byte, at-len(f.PCM))...)
	}
	n := copy(f.PCM[at:], data)
	f.PCM = append(f.PCM, data[n:]...)
}

// FrameDuration is the nominal length of one frame.
func (f *Film) FrameDuration() time.Duration {
	if f.Video.FPS > 0 {
		return time.Duration(float64(time.Second) / f.Video.FPS)
	}
	if len(f.PTS) > 1 {
		return (f.PTS[len(f.PTS)-1] - f.PTS[0]) / time.Duration(len(f.PTS)-1)
	}
	return time.Second / 30
}

// Duration is the end of the last frame.
func (f *Film) Duration() time.Duration {
	return f.PTS[len(f.PTS)-1] + f.FrameDuration()
}

// FrameAt is the frame showing at t: the last one that starts at or before
// it (the first frame for t before it).
func (f *Film) FrameAt(t time.Duration) int {
	i := sort.Search(len(f.PTS), func(i int) bool { return f.PTS[i] > t })
	return max(0, i-1)
}

// Point is a place in a film as a person gives it: a frame number, or a
// time "mm:ss.fff" (also "ss.fff", "hh:mm:ss.fff").
type Point struct {
	Frame int // -1 when Time is given
	Time  time.Duration
}

// ParsePoint reads a Point: digits alone are a frame number (from 0), a
// value with ":" or "." is a time.
func ParsePoint(s string) (Point, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Point{}, errors.New("no time given: give mm:ss.fff or a frame number")
	}
	if !strings.ContainsAny(s, ":.") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return Point{}, fmt.Errorf("%q: give mm:ss.fff (e.g. 01:02.500) or a frame number (e.g. 1875)", s)
		}
		return Point{Frame: n}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return Point{}, fmt.Errorf("%q: give mm:ss.fff (e.g. 01:02.500) or a frame number", s)
	}
	var total float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || (i < len(parts)-1 && strings.Contains(p, ".")) {
			return Point{}, fmt.Errorf("%q: give mm:ss.fff (e.g. 01:02.500) or a frame number", s)
		}
		total = total*60 + v
	}
	return Point{Frame: -1, Time: time.Duration(total*1000+0.5) * time.Millisecond}, nil
}

// Resolve is the frame a Point names in f, relative to the film's first
// frame for times; an error says what the film holds when it is past the end.
func (f *Film) Resolve(p Point) (int, error) {
	if p.Frame >= 0 {
		if p.Frame >= len(f.Frames) {
			return 0, fmt.Errorf("frame %d: the recording has frames 0 to %d", p.Frame, len(f.Frames)-1)
		}
		return p.Frame, nil
	}
	t := f.PTS[0] + p.Time
	if t >= f.Duration() {
		return 0, fmt.Errorf("%s: the recording is %s long", FormatTime(p.Time), FormatTime(f.Duration()-f.PTS[0]))
	}
	return f.FrameAt(t), nil
}

// FormatTime formats d as mm:ss.fff (hours when needed).
func FormatTime(d time.Duration) string {
	ms := max(0, d.Round(time.Millisecond).Milliseconds())
	if ms >= 3600000 {
		return fmt.Sprintf("%d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
	}
	return fmt.Sprintf("%02d:%02d.%03d", ms/60000, ms/1000%60, ms%1000)
}
