package laptop

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// namedMark is a mark ready to show: in offset order, never before the
// start, with a one-line label.
type namedMark struct {
	n     int // rank by offset, from 1
	at    time.Duration
	label string
}

// namedMarks sorts marks by offset (keeping the given order among equal
// offsets), moves negative offsets to 0, folds each label's whitespace
// (newlines included) into single spaces and names unlabelled marks
// "Mark N" by their rank.
func namedMarks(marks []Mark) []namedMark {
	out := make([]namedMark, 0, len(marks))
	for _, m := range marks {
		label := strings.Join(strings.Fields(strings.ToValidUTF8(m.Label, "\uFFFD")), " ")
		out = append(out, namedMark{at: max(0, m.Offset), label: label})
	}
	slices.SortStableFunc(out, func(a, b namedMark) int { return cmp.Compare(a.at, b.at) })
	for i := range out {
		out[i].n = i + 1
		if out[i].label == "" {
			out[i].label = "Mark " + strconv.Itoa(i+1)
		}
	}
	return out
}

// vttCueLength is how long a mark's WebVTT cue stays on screen.
const vttCueLength = time.Second

// WriteMarks writes marks, in offset order, as:
//
//   - "vtt": a WebVTT file with a cue of one second at each mark showing its
//     label, for players to overlay on the export;
//   - "csv": a header row "index,offset_seconds,timecode,label", then one
//     row a mark: its rank from 1, its offset in seconds (three decimals), the
//     same as hh:mm:ss.mmm, and its label.
//
// An unlabelled mark is named "Mark N", N its rank, as in the export's
// chapters.
func WriteMarks(w io.Writer, marks []Mark, format string) error {
	ms := namedMarks(marks)
	switch strings.ToLower(format) {
	case "vtt":
		return writeVTT(w, ms)
	case "csv":
		return writeCSV(w, ms)
	}
	return fmt.Errorf("write marks: unknown format %q (want vtt or csv)", format)
}

func writeVTT(w io.Writer, ms []namedMark) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("WEBVTT\n")
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	for _, m := range ms {
		fmt.Fprintf(bw, "\n%s --> %s\n%s\n", timecode(m.at), timecode(m.at+vttCueLength), esc.Replace(m.label))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write marks: %w", err)
	}
	return nil
}

func writeCSV(w io.Writer, ms []namedMark) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"index", "offset_seconds", "timecode", "label"})
	for _, m := range ms {
		ms := m.at.Round(time.Millisecond).Milliseconds()
		cw.Write([]string{
			strconv.Itoa(m.n),
			fmt.Sprintf("%d.%03d", ms/1000, ms%1000),
			timecode(m.at),
			m.label,
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write marks: %w", err)
	}
	return nil
}

// timecode formats d, rounded to the millisecond, as hh:mm:ss.mmm (more
// hour digits past 99 hours).
func timecode(d time.Duration) string {
	ms := max(0, d.Round(time.Millisecond).Milliseconds())
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}
