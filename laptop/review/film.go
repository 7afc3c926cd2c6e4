package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"attune.dev/attune/laptop"
	"attune.dev/attune/mkv"
)

// Film is a recording, or a span of it, decrypted: its JPEG frames as
// recorded, byte for byte (Frame), and its sound as one run of 16-bit PCM
// in memory. Nothing of it is written to disk. A whole recording's frames
// stay in the vault: the film knows where each lies, and decrypts the
// segments that hold the frames asked for, a few at a time (LoadFilm); a
// span, and a film read from a stream, hold theirs in memory.
type Film struct {
	ID     string
	Video  mkv.Track
	Audio  *mkv.Track      // nil without sound
	PTS    []time.Duration // of each frame
	frames [][]byte        // the frames in memory, or
	refs   []frameRef      // where each lies in the vault, decrypted through
	segs   *segmentCache
	// First is the recording's frame number of frame 0 (-1: not known,
	// for a span read from part-way), and Origin the time of the
	// recording's first frame: 0 and PTS[0] for a whole film.
	First  int
	Origin time.Duration
	// PCM is the sound, interleaved signed 16-bit little-endian samples
	// starting at AudioStart; gaps in the recording are silence. A span
	// holds the sound from pcmBase bytes on.
	PCM        []byte
	AudioStart time.Duration
	pcmBase    int64
	Marks      []time.Duration
	Started    time.Time // wall time of the start, if the device clock was trusted
	Damaged    error     // set when the recording is damaged part-way: the film holds what came before
}

// frameRef is where a frame lies in a vault recording: in the plaintext of
// segment seg, from off, size bytes.
type frameRef struct {
	seg       int
	off, size int64
}

// noFrame says that frame i is not among a recording's n.
func noFrame(i, n int) error {
	return fmt.Errorf("frame %d: the recording has frames 0 to %d", i, n-1)
}

var errNoPictures = errors.New("the recording holds no pictures")

// Len is the number of frames.
func (f *Film) Len() int { return len(f.PTS) }

// Frame is frame i's JPEG as recorded. The bytes may be shared with the
// film's cache: they must not be changed.
func (f *Film) Frame(i int) ([]byte, error) {
	if i < 0 || i >= f.Len() {
		return nil, noFrame(i, f.Len())
	}
	if f.refs == nil {
		return f.frames[i], nil
	}
	r := f.refs[i]
	b, err := f.segs.get(r.seg)
	if err != nil {
		return nil, fmt.Errorf("frame %d: %v", i, err)
	}
	if int64(len(b)) < r.off+r.size {
		return nil, fmt.Errorf("frame %d: segment %d of the recording changed since it was opened: open it again", i, r.seg)
	}
	return b[r.off : r.off+r.size : r.off+r.size], nil
}

// cacheBytes is how much decrypted footage a film keeps at most, in whole
// segments (about a second each: 4 MB of a 1080p camera's MJPEG), but
// never fewer than cacheMin segments: the page reads a second and a half
// ahead of the frame shown and one behind.
const (
	cacheBytes = 48 << 20
	cacheMin   = 3
)

// segmentCache holds the segments a film decrypted last, and decrypts each
// one once however many ask for it at the same time.
type segmentCache struct {
	src    *laptop.Segments
	mu     sync.Mutex
	have   map[int]*cachedSegment
	lru    []int // segment numbers, the one used last at the end
	bytes  int   // of the segments held
	budget int   // cacheBytes (a field for tests)
}

type cachedSegment struct {
	ready chan struct{}
	b     []byte
	err   error
}

func (c *segmentCache) get(n int) ([]byte, error) {
	c.mu.Lock()
	e, ok := c.have[n]
	if !ok {
		e = &cachedSegment{ready: make(chan struct{})}
		c.have[n] = e
	}
	if i := slices.Index(c.lru, n); i >= 0 {
		c.lru = slices.Delete(c.lru, i, i+1)
	}
	c.lru = append(c.lru, n)
	c.mu.Unlock()
	if !ok {
		b, err := c.src.Segment(n)
		c.mu.Lock()
		e.b, e.err = b, err
		if err != nil {
			if c.have[n] == e {
				delete(c.have, n) // try again next time
				c.lru = slices.DeleteFunc(c.lru, func(k int) bool { return k == n })
			}
		} else if c.have[n] == e {
			c.bytes += len(b)
		}
		c.evict()
		c.mu.Unlock()
		close(e.ready)
	}
	<-e.ready
	return e.b, e.err
}

// evict drops the segments used longest ago while the cache holds more
// than cacheBytes. Its lock is held.
func (c *segmentCache) evict() {
	for c.bytes > c.budget && len(c.lru) > cacheMin {
		old := c.lru[0]
		c.lru = c.lru[1:]
		if e := c.have[old]; e != nil {
			c.bytes -= len(e.b)
			delete(c.have, old)
		}
	}
}

// LoadFilm opens a vault recording: it decrypts it once through, checking
// every segment, and keeps where each frame lies and the sound.
func LoadFilm(ctx context.Context, vr laptop.VaultRecording, id age.Identity) (*Film, error) {
	return loadFilm(ctx, vr, id, nil)
}

// LoadSpan decrypts the part of a vault recording from one point to
// another (both included): it reads the recording only as far as it needs
// to, and keeps only those frames and the sound that goes with them. The
// Film's frame 0 is recording frame First.
func LoadSpan(ctx context.Context, vr laptop.VaultRecording, id age.Identity, from, to Point) (*Film, error) {
	return loadFilm(ctx, vr, id, &span{from: from, to: to})
}

func loadFilm(ctx context.Context, vr laptop.VaultRecording, id age.Identity, sp *span) (*Film, error) {
	m, err := vr.Manifest(id)
	if err != nil {
		return nil, fmt.Errorf("open recording: %v", err)
	}
	src, err := vr.Segments(id, m)
	var f *Film
	if err == nil && sp != nil && sp.from.Frame < 0 && sp.to.Frame < 0 {
		f, err = seekSpan(ctx, vr, src, sp)
	}
	if f == nil && (err == nil || errors.Is(err, errNoSeek)) {
		f, err = streamFilm(ctx, src, sp)
	}
	if err != nil {
		if sp != nil {
			return nil, err
		}
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

func streamFilm(ctx context.Context, src *laptop.Segments, sp *span) (*Film, error) {
	s := src.Stream(0)
	defer s.Close()
	if sp != nil {
		sp.seek = nil
		return readFilm(ctx, s, sp, nil)
	}
	f, err := readFilm(ctx, s, nil, s)
	if err != nil {
		return nil, err
	}
	f.segs = &segmentCache{src: src, have: map[int]*cachedSegment{}, budget: cacheBytes}
	return f, nil
}

// errNoSeek: a span is read from the start of the recording instead.
var errNoSeek = errors.New("no seek")

// seekSpan reads a span given by times from the segment a second before
// it on, skipping the segments before: the headers come from segment 0,
// the first frame's time too, and the segment to start from is found by
// the times of the clusters segments start with (a hint: each is read from
// the segment's first bytes alone; the stream then checks every segment
// it reads, and a seek that lands after the span is not used). Frame numbers are then
// not known (First is -1). It returns errNoSeek when the span starts too
// near the start for a seek to save anything, or the seek landed after
// it.
func seekSpan(ctx context.Context, vr laptop.VaultRecording, src *laptop.Segments, sp *span) (*Film, error) {
	held := vr.HeldSegments()
	if len(held) == 0 || held[0] != 0 {
		return nil, errNoSeek
	}
	held = held[1:]
	seg0, err := src.Segment(0)
	if err != nil {
		return nil, errNoSeek // the whole read reports it
	}
	rd, err := mkv.NewReader(bytes.NewReader(seg0), true)
	if err != nil {
		return nil, errNoSeek
	}
	head, scale := rd.HeadSize(), rd.TimecodeScale()
	origin, found := time.Duration(0), false
	for !found {
		p, err := rd.Next()
		if err != nil {
			return nil, errNoSeek
		}
		origin, found = p.PTS, p.Kind == mkv.Video
	}
	// The segments' clusters are in time order: the first segment starting
	// after target, less one.
	target := origin + sp.from.Time - spanSlack
	k := sort.Search(len(held), func(i int) bool {
		b, err := src.Head(held[i], 256)
		if err != nil {
			return true
		}
		t, err := mkv.ClusterTime(b, scale)
		return err != nil || t > target
	}) - 1
	if k < 0 || held[k] <= 1 {
		return nil, errNoSeek
	}
	s := src.Stream(held[k])
	defer s.Close()
	sp.seek = &origin
	return readFilm(ctx, io.MultiReader(bytes.NewReader(seg0[:head]), s), sp, nil)
}

// ReadFilm reads a recording's decrypted stream into memory.
func ReadFilm(ctx context.Context, stream io.Reader) (*Film, error) {
	return readFilm(ctx, stream, nil, nil)
}

// ReadSpan is LoadSpan on a decrypted stream.
func ReadSpan(ctx context.Context, stream io.Reader, from, to Point) (*Film, error) {
	return readFilm(ctx, stream, &span{from: from, to: to}, nil)
}

// span is the part of a recording readFilm keeps: from the frame showing
// at one point to the frame showing at another.
type span struct {
	from, to Point
	started  bool          // the frame at from was reached
	done     bool          // the frame at to was reached
	end      time.Duration // when done: the end of the last frame kept
	prev     []byte        // the frame before the current one, until started
	prevPTS  time.Duration
	// seek, when the stream starts part-way (seekSpan), is the time of the
	// recording's first frame: frame numbers are then not known.
	seek *time.Duration
	// emit, if set, is given the film as it grows, with the time of the
	// last frame read (final: the span is complete), to write it out as it
	// goes (WriteSpan).
	emit func(f *Film, head time.Duration, final bool) error
	// reuse gives back a frame's data, once no longer needed, for a later
	// packet (mkv.Reader.Reuse).
	reuse func([]byte)
}

// spanSlack is how far past a span's end the stream is read for its
// sound: the device writes sound a little after the pictures of its time.
const spanSlack = time.Second

// soundBytes is about how much sound a span holds (the slack read before
// and after it included), to make room for it at once; at most
// maxSoundReserve, for a span that ends past the recording.
func (sp *span) soundBytes(f *Film) int {
	var d time.Duration
	switch {
	case sp.from.Frame < 0 && sp.to.Frame < 0:
		d = sp.to.Time - sp.from.Time
	case sp.from.Frame >= 0 && sp.to.Frame >= 0 && f.Video.FPS > 0:
		d = time.Duration(float64(sp.to.Frame-sp.from.Frame+1) / f.Video.FPS * float64(time.Second))
	}
	if d <= 0 {
		return 0
	}
	n := (d + 3*spanSlack).Seconds() * float64(f.Audio.SampleRate*f.frameBytes())
	return int(min(n, maxSoundReserve))
}

const maxSoundReserve = 64 << 20

func (sp *span) check() error {
	if sp.from.Frame >= 0 && sp.to.Frame >= 0 && sp.to.Frame < sp.from.Frame ||
		sp.from.Frame < 0 && sp.to.Frame < 0 && sp.to.Time < sp.from.Time {
		return errors.New("the end must not be before the start")
	}
	return nil
}

// video takes frame i of the recording; it says whether to keep it, and
// for a frame past the span's end whether to stop reading.
func (sp *span) video(f *Film, i int, p mkv.Packet) (keep, stop bool, err error) {
	if sp.done {
		return false, p.PTS > sp.end+spanSlack, nil
	}
	if !sp.started {
		switch {
		case sp.from.Frame >= 0 && i == sp.from.Frame, sp.from.Frame < 0 && p.PTS == f.Origin+sp.from.Time:
			f.First = i
		case sp.from.Frame < 0 && p.PTS > f.Origin+sp.from.Time:
			// The frame before this one shows at from.
			f.First = i - 1
			if sp.to.Frame >= 0 && sp.to.Frame < f.First {
				return false, true, errors.New("the end must not be before the start")
			}
			f.frames, f.PTS = append(f.frames, sp.prev), append(f.PTS, sp.prevPTS)
			if sp.to.Frame == f.First {
				sp.started, sp.prev = true, nil
				sp.done, sp.end = true, sp.prevPTS+f.FrameDuration()
				return false, p.PTS > sp.end+spanSlack, nil
			}
		default:
			if sp.to.Frame >= 0 && sp.to.Frame < i-1 { // from is at frame i-1 or later
				return false, true, errors.New("the end must not be before the start")
			}
			sp.reuse(sp.prev)
			sp.prev, sp.prevPTS = p.Data, p.PTS
			return false, false, nil
		}
		sp.started, sp.prev = true, nil
	}
	if sp.to.Frame < 0 && p.PTS > f.Origin+sp.to.Time {
		if len(f.frames) == 0 {
			return false, true, errors.New("the end must not be before the start")
		}
		sp.done, sp.end = true, f.PTS[len(f.PTS)-1]+f.FrameDuration()
		return false, p.PTS > sp.end+spanSlack, nil
	}
	if sp.to.Frame == i {
		sp.done, sp.end = true, p.PTS+f.FrameDuration()
	}
	return true, false, nil
}

// atEnd checks, at the end of the stream, that the span was all there;
// n is the number of frames the recording has.
func (sp *span) atEnd(f *Film, n int, last time.Duration) error {
	length := last + f.FrameDuration() - f.Origin
	switch {
	case n == 0:
		return nil
	case !sp.started && sp.from.Frame >= 0:
		return noFrame(sp.from.Frame, n)
	case !sp.started:
		return fmt.Errorf("%s: the recording is %s long", FormatTime(sp.from.Time), FormatTime(length))
	case sp.done:
		return nil
	case sp.to.Frame >= 0:
		return noFrame(sp.to.Frame, n)
	case sp.to.Time >= length:
		return fmt.Errorf("%s: the recording is %s long", FormatTime(sp.to.Time), FormatTime(length))
	}
	return nil
}

// readFilm reads a recording's decrypted stream into memory: all of it, or
// only span sp (nil: all), reading no further than sp needs. Given the
// vault stream vs of the whole recording, it keeps where each frame lies
// in the vault instead of the frame.
func readFilm(ctx context.Context, stream io.Reader, sp *span, vs *laptop.RecordingStream) (*Film, error) {
	if sp != nil {
		if err := sp.check(); err != nil {
			return nil, err
		}
	}
	rd, err := mkv.NewReader(stream, true)
	if err != nil {
		return nil, err
	}
	if vs != nil {
		rd.SkipVideoData()
	}
	if sp != nil {
		sp.reuse = rd.Reuse
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
	if sp != nil && f.Audio != nil {
		f.PCM = make([]byte, 0, sp.soundBytes(f))
	}
	haveAudio := false
	n := 0 // frames read
	var last time.Duration
read:
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if sp != nil && !sp.done {
				return nil, fmt.Errorf("the recording is damaged before the end of the span: %v", err)
			}
			f.Damaged = err
			break
		}
		switch p.Kind {
		case mkv.Video:
			if n == 0 {
				f.Origin = p.PTS
				if sp != nil && sp.seek != nil {
					if f.Origin = *sp.seek; p.PTS > f.Origin+sp.from.Time {
						return nil, errNoSeek // landed after the start
					}
				}
			}
			n, last = n+1, p.PTS
			if sp != nil {
				keep, stop, err := sp.video(f, n-1, p)
				if err != nil {
					return nil, err
				}
				if stop {
					return f.finishSpan(sp, n, last)
				}
				if !keep {
					if !sp.started {
						f.trimPCM(p.PTS - spanSlack)
					} else {
						rd.Reuse(p.Data) // past the end
					}
					continue
				}
			}
			if vs != nil {
				off, size := rd.DataAt()
				seg, at, end, ok := vs.Locate(off)
				if !ok || at+size > end {
					f.Damaged = fmt.Errorf("frame %d is not within one segment", n-1)
					break read
				}
				f.refs = append(f.refs, frameRef{seg: seg, off: at, size: size})
			} else {
				f.frames = append(f.frames, p.Data)
			}
			f.PTS = append(f.PTS, p.PTS)
			if sp != nil && sp.emit != nil {
				if err := sp.emit(f, p.PTS, false); err != nil {
					return nil, err
				}
			}
		case mkv.Audio:
			if f.Audio == nil {
				continue
			}
			if !haveAudio {
				f.AudioStart, haveAudio = p.PTS, true
			}
			if sp != nil && sp.done && p.PTS > sp.end+spanSlack {
				return f.finishSpan(sp, n, last)
			}
			f.placePCM(p)
			rd.Reuse(p.Data)
		}
	}
	if sp != nil {
		return f.finishSpan(sp, n, last)
	}
	if f.Len() == 0 {
		return nil, errNoPictures
	}
	// Frames in presentation order (the device writes them so; be sure).
	if !sort.SliceIsSorted(f.PTS, func(i, j int) bool { return f.PTS[i] < f.PTS[j] }) {
		idx := make([]int, len(f.PTS))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(i, j int) bool { return f.PTS[idx[i]] < f.PTS[idx[j]] })
		f.PTS = permute(f.PTS, idx)
		f.frames = permute(f.frames, idx)
		f.refs = permute(f.refs, idx)
	}
	return f, nil
}

// permute is xs in the order idx gives (nil stays nil).
func permute[T any](xs []T, idx []int) []T {
	if xs == nil {
		return nil
	}
	out := make([]T, len(idx))
	for i, k := range idx {
		out[i] = xs[k]
	}
	return out
}

// finishSpan ends reading a span: n frames were read, the last at last.
func (f *Film) finishSpan(sp *span, n int, last time.Duration) (*Film, error) {
	if err := sp.atEnd(f, n, last); err != nil {
		return nil, err
	}
	if f.Len() == 0 {
		return nil, errNoPictures
	}
	if sp.seek != nil {
		f.First = -1
	}
	if sp.emit != nil {
		if err := sp.emit(f, last, true); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// pcmTrimStep is the least sound trimPCM drops at once (a variable for
// tests).
var pcmTrimStep int64 = 1 << 20

// trimPCM drops the sound before t from memory, while a span is looked
// for: the samples keep their places (pcmBase counts what was dropped).
func (f *Film) trimPCM(t time.Duration) {
	if f.Audio == nil || len(f.PCM) == 0 {
		return
	}
	cut := f.sampleAt(t)*int64(f.frameBytes()) - f.pcmBase
	if cut < pcmTrimStep {
		return
	}
	cut = min(cut, int64(len(f.PCM)))
	f.PCM = append(f.PCM[:0], f.PCM[cut:]...)
	f.pcmBase += cut
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
	at := int(max(0, f.sampleAt(p.PTS))*int64(fb) - f.pcmBase)
	// Packets within a couple of milliseconds of the end simply continue.
	if d := at - len(f.PCM); d < 0 && d > -2*fb*f.Audio.SampleRate/1000 || d > 0 && d < 2*fb*f.Audio.SampleRate/1000 {
		at = len(f.PCM)
	}
	data := p.Data[:len(p.Data)/fb*fb]
	if at < 0 { // overlaps sound already dropped (a span)
		data = data[min(len(data), -at):]
		at = 0
	}
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
		if p.Frame >= f.Len() {
			return 0, noFrame(p.Frame, f.Len())
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
