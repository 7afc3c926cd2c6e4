package link_test

import (
	"fmt"
	"slices"
	"testing"
)

// TestSegmentSentOnlyWhole: the backend hears of a segment transfer only
// once the whole segment has been sent — not for a 404, a refused client, a
// HEAD or a range short of the end — and once per segment.
func TestSegmentSentOnlyWhole(t *testing.T) {
	e := newEnv(t)
	e.paired()
	seg := make([]byte, 300<<10) // bigger than a send piece
	ix := e.recording(seg, []byte("second segment"), []byte("third segment"))
	hc := e.raw(e.laptop)
	stranger, _ := newCert(t, "stranger")
	path := func(n int) string { return fmt.Sprintf("/api/v1/recordings/%s/segments/%d", ix.ID, n) }
	size := ix.Segments[0].Size

	steps := []struct {
		name   string
		hc     any
		method string
		n      int
		hdr    []string
		code   int
		want   []string
	}{
		{"past the end", nil, "GET", 7, nil, 404, nil},
		{"a stranger", "stranger", "GET", 0, nil, 403, nil},
		{"head", nil, "HEAD", 0, nil, 200, nil},
		{"ten bytes", nil, "GET", 0, []string{"Range", "bytes=0-9"}, 206, nil},
		{"the last ten bytes", nil, "GET", 0, []string{"Range", fmt.Sprintf("bytes=%d-", size-10)}, 206, nil},
		{"the rest, resumed", nil, "GET", 0, []string{"Range", "bytes=10-"}, 206, []string{ix.ID + "/0"}},
		{"again", nil, "GET", 0, nil, 200, []string{ix.ID + "/0"}},
		{"whole", nil, "GET", 1, nil, 200, []string{ix.ID + "/0", ix.ID + "/1"}},
		{"suffix only", nil, "GET", 2, []string{"Range", "bytes=-5"}, 206, []string{ix.ID + "/0", ix.ID + "/1"}},
	}
	for _, st := range steps {
		c := hc
		if st.hc != nil {
			c = e.raw(stranger)
		}
		code, _, _ := do(t, c, st.method, path(st.n), "", st.hdr...)
		if code != st.code {
			t.Fatalf("%s: %d, want %d", st.name, code, st.code)
		}
		if got := e.b.Sent(); !slices.Equal(got, st.want) {
			t.Fatalf("after %s: transfers %v, want %v", st.name, got, st.want)
		}
	}
}
