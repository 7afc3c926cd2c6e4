package laptop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"attune.dev/attune/capture"
	"attune.dev/attune/mkv"
	"github.com/at-wat/ebml-go"
)

// memSink collects a recording's plaintext stream in memory.
type memSink struct{ bytes.Buffer }

func (*memSink) Flush() error { return nil }

// recordStream records d of the test pattern (and, with audio, the tone)
// with the device's own pipeline and muxer, and returns the live stream.
func recordStream(tb testing.TB, d time.Duration, audio bool) []byte {
	tb.Helper()
	b, err := record(d, audio)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func record(d time.Duration, audio bool) ([]byte, error) {
	srcs := []capture.Source{capture.NewPatternSource(capture.Fast)}
	if audio {
		srcs = append(srcs, capture.NewToneSource(capture.Fast))
	}
	var sink memSink
	st, err := capture.Record(context.Background(), srcs, &sink, capture.RecordOptions{MaxDuration: d})
	if err != nil {
		return nil, err
	}
	if st.Ended != "max-duration" {
		return nil, fmt.Errorf("recording ended by %s", st.Ended)
	}
	return sink.Bytes(), nil
}

var stream5s = sync.OnceValues(func() ([]byte, error) { return record(5*time.Second, true) })

// testStream is a 5 s recording of the pattern and the tone.
func testStream(t *testing.T) []byte {
	t.Helper()
	b, err := stream5s()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testMarks = []Mark{
	{Offset: 3200 * time.Millisecond, Label: "Shared smile"},
	{Offset: 1500 * time.Millisecond},
}

// exportToFile exports in to a file and returns its path.
func exportToFile(t *testing.T, in []byte, marks []Mark, opts ExportOptions) (string, ExportInfo, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.mkv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := Export(context.Background(), bytes.NewReader(in), marks, f, opts)
	if err2 := f.Close(); err2 != nil {
		t.Fatal(err2)
	}
	if err == nil {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != info.Bytes {
			t.Errorf("file is %d bytes, ExportInfo.Bytes %d", st.Size(), info.Bytes)
		}
	}
	return path, info, err
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// run runs a command and returns its stdout; stderr must be empty.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("%s %s printed:\n%s", name, strings.Join(args, " "), stderr.String())
	}
	return stdout.String()
}

type probe struct {
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecName    string `json:"codec_name"`
		CodecType    string `json:"codec_type"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		SampleRate   string `json:"sample_rate"`
		Channels     int    `json:"channels"`
		NbReadFrames string `json:"nb_read_frames"`
	} `json:"streams"`
	Chapters []struct {
		StartTime string            `json:"start_time"`
		EndTime   string            `json:"end_time"`
		Tags      map[string]string `json:"tags"`
	} `json:"chapters"`
}

func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	out := run(t, "ffprobe", "-v", "error", "-show_format", "-show_streams", "-show_chapters", "-count_frames", "-of", "json", path)
	var p probe
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

func seconds(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number of seconds: %q", s)
	}
	return v
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestExportPlays checks the export with ffprobe and ffmpeg: length,
// streams, every frame decodes, chapters, seeking.
func TestExportPlays(t *testing.T) {
	need(t, "ffprobe", "ffmpeg")
	path, info, err := exportToFile(t, testStream(t), testMarks, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", info)
	if info.VideoFrames != 150 || info.AudioSamples != 5*48000 || !near(info.Duration.Seconds(), 5, 0.05) ||
		info.Clusters < 4 || info.Clusters > 6 || info.Chapters != 2 || info.Dropped != 0 {
		t.Errorf("export info %+v", info)
	}

	p := ffprobe(t, path)
	if !strings.Contains(p.Format.FormatName, "matroska") {
		t.Errorf("format %q", p.Format.FormatName)
	}
	if d := seconds(t, p.Format.Duration); !near(d, 5, 0.05) || !near(d, info.Duration.Seconds(), 0.001) {
		t.Errorf("duration %v s, exported %v", d, info.Duration)
	}
	if len(p.Streams) != 2 {
		t.Fatalf("%d streams", len(p.Streams))
	}
	v, a := p.Streams[0], p.Streams[1]
	if v.CodecType != "video" || v.CodecName != "mjpeg" || v.Width != 1280 || v.Height != 720 || v.NbReadFrames != "150" {
		t.Errorf("video stream %+v", v)
	}
	if a.CodecType != "audio" || a.CodecName != "pcm_s16le" || a.SampleRate != "48000" || a.Channels != 1 || a.NbReadFrames == "" {
		t.Errorf("audio stream %+v", a)
	}
	if len(p.Chapters) != 2 {
		t.Fatalf("chapters %+v", p.Chapters)
	}
	for i, want := range []struct {
		start, end float64
		title      string
	}{{1.5, 3.2, "Mark 1"}, {3.2, info.Duration.Seconds(), "Shared smile"}} {
		c := p.Chapters[i]
		if !near(seconds(t, c.StartTime), want.start, 0.001) || !near(seconds(t, c.EndTime), want.end, 0.001) || c.Tags["title"] != want.title {
			t.Errorf("chapter %d: %+v, want %+v", i, c, want)
		}
	}

	// Every frame of both streams decodes without a complaint.
	run(t, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-")
	// Seeking: through the Cues to the cluster at or before 3.5 s.
	run(t, "ffmpeg", "-nostdin", "-v", "error", "-ss", "3.5", "-i", path, "-frames:v", "1", "-f", "null", "-")
	out := run(t, "ffprobe", "-v", "error", "-read_intervals", "3.5%+#1", "-select_streams", "v:0",
		"-show_entries", "frame=pts_time", "-of", "csv=p=0", path)
	if pts := seconds(t, strings.TrimSpace(out)); pts < 2.5 || pts > 3.5 {
		t.Errorf("seek to 3.5 s landed on a frame at %v s", pts)
	}
	// The duration comes from Info, without reading the clusters.
	out = run(t, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path)
	if d := seconds(t, strings.TrimSpace(out)); !near(d, info.Duration.Seconds(), 0.001) {
		t.Errorf("format duration %v", d)
	}
}

// The output, as parsed by ebml-go rather than by our own reader.
type parsedFile struct {
	EBML struct {
		EBMLDocType        string
		EBMLDocTypeVersion uint64
	}
	Segment struct {
		SeekHead struct {
			Seek []struct {
				SeekID       []byte
				SeekPosition uint64
			}
		}
		Info struct {
			TimecodeScale uint64
			Duration      float64
			MuxingApp     string
			WritingApp    string
			Title         string
			DateUTC       time.Time
		}
		Tracks struct {
			TrackEntry []struct {
				TrackNumber     uint64
				TrackType       uint64
				CodecID         string
				DefaultDuration uint64
				Video           struct{ PixelWidth, PixelHeight uint64 }
				Audio           struct {
					SamplingFrequency float64
					Channels          uint64
					BitDepth          uint64
				}
			}
		}
		Cluster []struct {
			Timecode uint64
		}
		Cues struct {
			CuePoint []struct {
				CueTime           uint64
				CueTrackPositions []struct {
					CueTrack            uint64
					CueClusterPosition  uint64
					CueRelativePosition uint64
				}
			}
		}
		Chapters struct {
			EditionEntry []struct {
				ChapterAtom []struct {
					ChapterUID       uint64
					ChapterTimeStart uint64
					ChapterTimeEnd   uint64
					ChapterDisplay   []struct {
						ChapString   string
						ChapLanguage string
					}
				}
			}
		}
	}
}

// parse unmarshals b and returns the positions of its Segment's body and of
// each top-level element in the Segment, by name.
func parse(t *testing.T, b []byte) (f parsedFile, segData int64, elems map[string][]int64) {
	t.Helper()
	elems = map[string][]int64{}
	segData = -1
	hook := func(e *ebml.Element) {
		if e.Name == "Segment" {
			segData = int64(bytes.Index(b, []byte{0x18, 0x53, 0x80, 0x67})) + 12
			if got := int64(len(b)) - segData; got != int64(e.Size) {
				t.Errorf("segment size %d, the file holds %d after its header", e.Size, got)
			}
		}
		if e.Parent != nil && e.Parent.Name == "Segment" {
			elems[e.Name] = append(elems[e.Name], int64(e.Position))
		}
	}
	if err := ebml.Unmarshal(bytes.NewReader(b), &f, ebml.WithElementReadHooks(hook)); err != nil {
		t.Fatalf("ebml-go cannot parse the export: %v", err)
	}
	if segData < 0 {
		t.Fatal("no Segment")
	}
	return f, segData, elems
}

// TestExportStructure checks the elements of the export: header, SeekHead,
// Info, Tracks, sized Clusters, Cues pointing at them, Chapters; and that
// every block is the input's.
func TestExportStructure(t *testing.T) {
	in := testStream(t)
	out := new(seekBuffer)
	info, err := Export(context.Background(), bytes.NewReader(in), testMarks, out, ExportOptions{
		Title: "Visit 3", Date: time.Date(2026, 11, 22, 10, 3, 11, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	b := out.b
	if int64(len(b)) != info.Bytes {
		t.Errorf("wrote %d bytes, ExportInfo.Bytes %d", len(b), info.Bytes)
	}
	f, segData, elems := parse(t, b)
	s := &f.Segment

	if f.EBML.EBMLDocType != "matroska" || f.EBML.EBMLDocTypeVersion != 4 {
		t.Errorf("EBML header %+v", f.EBML)
	}
	if s.Info.TimecodeScale != 1000000 || s.Info.MuxingApp != "attune" || s.Info.WritingApp != "attune" ||
		s.Info.Title != "Visit 3" || !s.Info.DateUTC.Equal(time.Date(2026, 11, 22, 10, 3, 11, 0, time.UTC)) {
		t.Errorf("info %+v", s.Info)
	}
	if want := float64(info.Duration) / 1e6; s.Info.Duration != want {
		t.Errorf("Info Duration %v ms, want %v", s.Info.Duration, want)
	}

	tr := s.Tracks.TrackEntry
	if len(tr) != 2 {
		t.Fatalf("tracks %+v", tr)
	}
	if v := tr[0]; v.TrackNumber != 1 || v.TrackType != 1 || v.CodecID != "V_MJPEG" || v.DefaultDuration != 33333333 ||
		v.Video.PixelWidth != 1280 || v.Video.PixelHeight != 720 {
		t.Errorf("video track %+v", v)
	}
	if a := tr[1]; a.TrackNumber != 2 || a.TrackType != 2 || a.CodecID != "A_PCM/INT/LIT" ||
		a.Audio.SamplingFrequency != 48000 || a.Audio.Channels != 1 || a.Audio.BitDepth != 16 {
		t.Errorf("audio track %+v", a)
	}

	// The SeekHead comes first and points at the elements it names.
	if p := elems["SeekHead"]; len(p) != 1 || p[0] != segData {
		t.Errorf("SeekHead at %v, Segment body at %d", p, segData)
	}
	ids := map[string]string{"\x15\x49\xA9\x66": "Info", "\x16\x54\xAE\x6B": "Tracks", "\x1C\x53\xBB\x6B": "Cues", "\x10\x43\xA7\x70": "Chapters"}
	seen := map[string]bool{}
	for _, sk := range s.SeekHead.Seek {
		name := ids[string(sk.SeekID)]
		pos := segData + int64(sk.SeekPosition)
		if name == "" || len(elems[name]) != 1 || elems[name][0] != pos || !bytes.HasPrefix(b[pos:], sk.SeekID) {
			t.Errorf("seek entry % X → %d (%s at %v)", sk.SeekID, sk.SeekPosition, name, elems[name])
		}
		seen[name] = true
	}
	if len(seen) != 4 {
		t.Errorf("SeekHead names %v", seen)
	}

	// One Cue a Cluster, at its first (video) block.
	clusters := elems["Cluster"]
	if len(clusters) != info.Clusters || len(s.Cluster) != info.Clusters || info.Clusters < 4 || info.Clusters > 6 {
		t.Fatalf("%d clusters, %d parsed, ExportInfo %d", len(clusters), len(s.Cluster), info.Clusters)
	}
	cues := s.Cues.CuePoint
	if len(cues) != len(clusters) {
		t.Fatalf("%d cue points for %d clusters", len(cues), len(clusters))
	}
	for i, c := range cues {
		if len(c.CueTrackPositions) != 1 {
			t.Fatalf("cue %d: %+v", i, c)
		}
		cp := c.CueTrackPositions[0]
		pos := segData + int64(cp.CueClusterPosition)
		if cp.CueTrack != 1 || pos != clusters[i] || !bytes.HasPrefix(b[pos:], []byte{0x1F, 0x43, 0xB6, 0x75}) {
			t.Errorf("cue %d: %+v does not point at cluster %d (at %d)", i, c, i, clusters[i])
		}
		if c.CueTime != s.Cluster[i].Timecode {
			t.Errorf("cue %d at %d ms, its cluster at %d ms", i, c.CueTime, s.Cluster[i].Timecode)
		}
		// The cluster's body follows its 4-byte ID and its size; a
		// SimpleBlock's track number follows its ID and size.
		body := pos + 4 + vintLength(b[pos+4])
		if blk := body + int64(cp.CueRelativePosition); b[blk] != 0xA3 || b[blk+1+vintLength(b[blk+1])] != 0x81 {
			t.Errorf("cue %d: relative position %d is not a video SimpleBlock", i, cp.CueRelativePosition)
		}
		if i > 0 && (c.CueTime < cues[i-1].CueTime+900 || c.CueTime > cues[i-1].CueTime+1100) {
			t.Errorf("cue %d at %d ms, the previous at %d ms", i, c.CueTime, cues[i-1].CueTime)
		}
	}

	ed := s.Chapters.EditionEntry
	if len(ed) != 1 || len(ed[0].ChapterAtom) != 2 {
		t.Fatalf("chapters %+v", ed)
	}
	for i, want := range []struct {
		start, end uint64
		title      string
	}{{1500e6, 3200e6, "Mark 1"}, {3200e6, uint64(info.Duration), "Shared smile"}} {
		a := ed[0].ChapterAtom[i]
		if a.ChapterUID == 0 || a.ChapterTimeStart != want.start || a.ChapterTimeEnd != want.end || len(a.ChapterDisplay) != 1 ||
			a.ChapterDisplay[0].ChapString != want.title || a.ChapterDisplay[0].ChapLanguage != "und" {
			t.Errorf("chapter %d: %+v, want %+v", i, a, want)
		}
	}

	// Every block is the input's, in the input's order, at its time.
	comparePackets(t, in, b, -1)
}

// vintLength is the length of an EBML vint that starts with c.
func vintLength(c byte) int64 { return int64(bits.LeadingZeros8(c)) + 1 }

func readPackets(t *testing.T, b []byte) []mkv.Packet {
	t.Helper()
	r, err := mkv.NewReader(bytes.NewReader(b), true)
	if err != nil {
		t.Fatal(err)
	}
	var ps []mkv.Packet
	for {
		p, err := r.Next()
		if err == io.EOF {
			return ps
		}
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
}

// comparePackets checks that out holds in's packets (the first n, or all if
// n < 0), unchanged.
func comparePackets(t *testing.T, in, out []byte, n int) {
	t.Helper()
	want, got := readPackets(t, in), readPackets(t, out)
	if n >= 0 {
		want = want[:n]
	}
	if len(got) != len(want) {
		t.Fatalf("export holds %d packets, the input %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Kind != g.Kind || w.PTS != g.PTS || w.Key != g.Key || !bytes.Equal(w.Data, g.Data) {
			t.Fatalf("packet %d differs: %v %v %d bytes, exported %v %v %d bytes", i, w.Kind, w.PTS, len(w.Data), g.Kind, g.PTS, len(g.Data))
		}
	}
}

// TestExportTruncated cuts the stream at various points, as an interrupted
// recording or a missing last segment leaves it, and checks that the export
// holds every complete block and plays cleanly.
func TestExportTruncated(t *testing.T) {
	need(t, "ffprobe", "ffmpeg")
	in := testStream(t)
	for _, frac := range []float64{0.37, 0.5731, 0.9, 0.99993} {
		cut := in[:int(float64(len(in))*frac)]
		t.Run(fmt.Sprint(frac), func(t *testing.T) {
			complete := readPackets(t, cut)
			var frames int
			for _, p := range complete {
				if p.Kind == mkv.Video {
					frames++
				}
			}
			path, info, err := exportToFile(t, cut, testMarks, ExportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.VideoFrames != frames {
				t.Errorf("exported %d frames of the %d complete", info.VideoFrames, frames)
			}
			out, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			comparePackets(t, in, out, len(complete))
			f, _, _ := parse(t, out)
			if len(f.Segment.Cues.CuePoint) != info.Clusters {
				t.Errorf("%d cue points, %d clusters", len(f.Segment.Cues.CuePoint), info.Clusters)
			}

			p := ffprobe(t, path)
			if d := seconds(t, p.Format.Duration); !near(d, info.Duration.Seconds(), 0.001) {
				t.Errorf("duration %v s, exported %v", d, info.Duration)
			}
			if p.Streams[0].NbReadFrames != strconv.Itoa(frames) {
				t.Errorf("ffprobe counts %s frames, want %d", p.Streams[0].NbReadFrames, frames)
			}
			// Marks past the end are left out.
			wantCh := 0
			for _, m := range testMarks {
				if m.Offset <= info.Duration {
					wantCh++
				}
			}
			if len(p.Chapters) != wantCh || info.Chapters != wantCh {
				t.Errorf("%d chapters (ExportInfo %d) for a %v export, want %d", len(p.Chapters), info.Chapters, info.Duration, wantCh)
			}
			run(t, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-")
		})
	}
}

// TestExportHeadersOnly exports a recording cut before its first cluster:
// a valid file with no frames, no Cues and no chapters past its end.
func TestExportHeadersOnly(t *testing.T) {
	in := testStream(t)
	cut := in[:bytes.Index(in, []byte{0x1F, 0x43, 0xB6, 0x75})]
	out := new(seekBuffer)
	info, err := Export(context.Background(), bytes.NewReader(cut), append([]Mark{{Offset: -time.Second}}, testMarks...), out, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.VideoFrames != 0 || info.Clusters != 0 || info.Duration != 0 || info.Chapters != 1 {
		t.Errorf("export info %+v", info)
	}
	f, _, elems := parse(t, out.b)
	if len(elems["Cues"]) != 0 || len(elems["Cluster"]) != 0 || len(f.Segment.Tracks.TrackEntry) != 2 || len(f.Segment.SeekHead.Seek) != 3 {
		t.Errorf("elements %v", elems)
	}
}

// TestExportDamaged breaks the stream part-way: the export keeps what comes
// before and says so.
func TestExportDamaged(t *testing.T) {
	need(t, "ffmpeg")
	in := bytes.Clone(testStream(t))
	cl := []byte{0x1F, 0x43, 0xB6, 0x75}
	at := 0
	for range 3 {
		i := bytes.Index(in[at+1:], cl)
		if i < 0 {
			t.Fatal("fewer than 3 clusters")
		}
		at += 1 + i
	}
	copy(in[at:], []byte{0, 0, 0, 0}) // the third Cluster's ID
	path, info, err := exportToFile(t, in, testMarks, ExportOptions{})
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("got %v, want ErrDamaged", err)
	}
	t.Log(err)
	// Two clusters: the first is mkv.FirstCluster long, the second a second.
	if lo := mkv.FirstCluster + time.Second; info.Clusters != 2 || info.Duration < lo-250*time.Millisecond || info.Duration > lo+500*time.Millisecond {
		t.Errorf("export info %+v", info)
	}
	run(t, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-")
}

func TestExportNoMarksVideoOnly(t *testing.T) {
	need(t, "ffprobe")
	in := recordStream(t, 2*time.Second, false)
	path, info, err := exportToFile(t, in, nil, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.VideoFrames != 60 || info.AudioSamples != 0 || info.Chapters != 0 || !near(info.Duration.Seconds(), 2, 0.05) {
		t.Errorf("export info %+v", info)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, _, elems := parse(t, out)
	if len(elems["Chapters"]) != 0 || len(f.Segment.SeekHead.Seek) != 3 || len(f.Segment.Tracks.TrackEntry) != 1 {
		t.Errorf("elements %v, %d seek entries, %d tracks", elems, len(f.Segment.SeekHead.Seek), len(f.Segment.Tracks.TrackEntry))
	}
	p := ffprobe(t, path)
	if len(p.Streams) != 1 || p.Streams[0].NbReadFrames != "60" || len(p.Chapters) != 0 {
		t.Errorf("ffprobe %+v", p)
	}
}

// TestExportAtOffset writes after existing bytes: offsets are relative to
// where out stood, and out is left at the end.
func TestExportAtOffset(t *testing.T) {
	in := testStream(t)
	out := &seekBuffer{b: []byte("prefix"), pos: 6}
	var calls []ExportInfo
	info, err := Export(context.Background(), bytes.NewReader(in), testMarks, out, ExportOptions{
		Progress: func(i ExportInfo) { calls = append(calls, i) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.pos != int64(len(out.b)) || int64(len(out.b)) != 6+info.Bytes || string(out.b[:6]) != "prefix" {
		t.Errorf("writer at %d of %d, export %d bytes", out.pos, len(out.b), info.Bytes)
	}
	parse(t, out.b[6:])
	if len(calls) != info.Clusters || calls[len(calls)-1].VideoFrames != info.VideoFrames {
		t.Errorf("%d progress calls for %d clusters; last %+v", len(calls), info.Clusters, calls[len(calls)-1])
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Clusters != i+1 || calls[i].Bytes <= calls[i-1].Bytes {
			t.Errorf("progress %d: %+v after %+v", i, calls[i], calls[i-1])
		}
	}
}

func TestExportErrors(t *testing.T) {
	in := testStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Export(ctx, bytes.NewReader(in), nil, new(seekBuffer), ExportOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	_, err := Export(ctx, bytes.NewReader(in), nil, new(seekBuffer), ExportOptions{
		Progress: func(i ExportInfo) {
			if i.Clusters == 2 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled mid-way: got %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("RIFF....AVI LIST"), in[:40]} {
		if _, err := Export(context.Background(), bytes.NewReader(bad), nil, new(seekBuffer), ExportOptions{}); err == nil {
			t.Errorf("exported % x", bad[:min(len(bad), 16)])
		}
	}
}

// seekBuffer is an in-memory io.WriteSeeker.
type seekBuffer struct {
	b   []byte
	pos int64
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if end := s.pos + int64(len(p)); end > int64(len(s.b)) {
		s.b = append(s.b, make([]byte, end-int64(len(s.b)))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += int64(len(p))
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += int64(len(s.b))
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	s.pos = off
	return off, nil
}

// TestExportMemory exports a long recording from a file to a file and
// samples the heap: memory is bounded by a cluster, not by the recording.
func TestExportMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("records 60 s")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.mkv")
	if err := os.WriteFile(in, recordStream(t, 60*time.Second, true), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.Create(filepath.Join(dir, "out.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	info, err := Export(context.Background(), r, nil, w, ExportOptions{
		Progress: func(ExportInfo) {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exported %d MB: heap in use %.1f MB before, %.1f MB at most during", info.Bytes>>20, float64(base)/(1<<20), float64(peak)/(1<<20))
	if peak > base+32<<20 {
		t.Errorf("heap grew by %d MB exporting %d MB", (peak-base)>>20, info.Bytes>>20)
	}
}

func BenchmarkExport(b *testing.B) {
	in := recordStream(b, 60*time.Second, true)
	f, err := os.Create(filepath.Join(b.TempDir(), "out.mkv"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		if _, err := Export(context.Background(), bytes.NewReader(in), testMarks, f, ExportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExportVideoStall exports a stream whose video stopped for 5 s while
// audio went on: clusters still end after at most two cluster durations,
// and only clusters holding a frame get a Cue.
func TestExportVideoStall(t *testing.T) {
	need(t, "ffmpeg")
	frame, err := capture.NewPatternSource(capture.Fast).Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tone := capture.NewToneSource(capture.Fast)
	tracks, err := capture.Tracks([]capture.Source{capture.NewPatternSource(capture.Fast), tone})
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := tone.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	mux, err := mkv.NewLiveWriter(&sink, tracks, mkv.LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const ms = time.Millisecond
	var frames int
	for at := time.Duration(0); at < 8*time.Second; at += 20 * ms {
		if at < 2*time.Second || at >= 7*time.Second {
			for v := at; v < at+20*ms; v += 10 * ms {
				if v%(40*ms) == 0 {
					frames++
					if err := mux.WritePacket(mkv.Packet{Kind: mkv.Video, PTS: v, Data: frame.Data, Key: true}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if err := mux.WritePacket(mkv.Packet{Kind: mkv.Audio, PTS: at, Data: pcm.Data, Key: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := mux.Close(); err != nil {
		t.Fatal(err)
	}
	in := sink.Bytes()

	path, info, err := exportToFile(t, in, nil, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.VideoFrames != frames || info.Duration != 8*time.Second {
		t.Errorf("export info %+v, want %d frames", info, frames)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	comparePackets(t, in, out, -1)
	f, _, _ := parse(t, out)
	var prev uint64
	for i, c := range f.Segment.Cluster {
		if i > 0 && c.Timecode-prev > 2000 {
			t.Errorf("cluster %d at %d ms, %d ms after the previous", i, c.Timecode, c.Timecode-prev)
		}
		prev = c.Timecode
	}
	cues := f.Segment.Cues.CuePoint
	if len(cues) >= len(f.Segment.Cluster) || len(cues) < 3 {
		t.Errorf("%d cues for %d clusters", len(cues), len(f.Segment.Cluster))
	}
	for _, c := range cues {
		if c.CueTime >= 2000 && c.CueTime < 7000 {
			t.Errorf("cue at %d ms, during the stall", c.CueTime)
		}
	}
	run(t, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-")
}
