package review

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"attune.dev/attune/laptop"
	"attune.dev/attune/link"
)

//go:embed app.html
var appFS embed.FS

// Options configure a Server.
type Options struct {
	Dial       link.Dialer
	DeviceAddr string // the device's HOST:PORT when not where it was paired
	FFmpeg     string // "" looks on the PATH
	Now        func() time.Time
	// CopyFolder is the folder the family copy suggests.
	CopyFolder string
}

// Server is the review workspace's web app for one home.
type Server struct {
	home  *laptop.Home
	opts  Options
	token string

	mu    sync.Mutex
	ids   map[string]age.Identity // unlocked cases
	pass  map[string]string       // their passphrases, for sync
	films map[string]*Film        // recently opened, newest last in order
	order []string
	notes map[string]*notesState
	sync  syncStatus
}

type notesState struct {
	cur  *Notes
	undo []*Notes
}

type syncStatus struct {
	Running bool               `json:"running"`
	Bytes   int64              `json:"bytes"`
	Total   int64              `json:"total"`
	Done    int                `json:"done"` // recordings completed
	Count   int                `json:"count"`
	Message string             `json:"message"`
	Error   string             `json:"error,omitempty"`
	Result  *laptop.SyncResult `json:"result,omitempty"`
}

// keepFilms is how many films stay decrypted in memory.
const keepFilms = 2

// NewServer makes the workspace of home with a fresh secret token.
func NewServer(home *laptop.Home, opts Options) *Server {
	var b [32]byte
	rand.Read(b[:])
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Dial == nil {
		opts.Dial = &net.Dialer{Timeout: 10 * time.Second}
	}
	return &Server{home: home, opts: opts, token: hex.EncodeToString(b[:]),
		ids: map[string]age.Identity{}, pass: map[string]string{}, films: map[string]*Film{}, notes: map[string]*notesState{}}
}

// Listen listens on addr, which must be a loopback address ("" is
// 127.0.0.1 on a free port).
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ui: --addr %q: want 127.0.0.1:PORT", addr)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("ui: --addr %q: the workspace serves this computer only; use 127.0.0.1:PORT", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ui: %v", err)
	}
	return l, nil
}

// URL is the address that opens the workspace served at addr, with the token.
func (s *Server) URL(addr net.Addr) string {
	return "http://" + addr.String() + "/?token=" + s.token
}

const cookieName = "attune_session"

// Handler serves the workspace: every request must come with the token,
// for the loopback address it was sent to, and from the workspace's own
// pages.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /api/home", s.apiHome)
	mux.HandleFunc("GET /api/device", s.apiDevice)
	mux.HandleFunc("POST /api/pair", s.apiPair)
	mux.HandleFunc("POST /api/sync", s.apiSyncStart)
	mux.HandleFunc("GET /api/sync", s.apiSync)
	mux.HandleFunc("POST /api/unlock", s.apiUnlock)
	mux.HandleFunc("GET /api/film/{rec}", s.apiFilm)
	mux.HandleFunc("GET /api/film/{rec}/frame/{n}", s.apiFrame)
	mux.HandleFunc("GET /api/film/{rec}/audio.wav", s.apiAudio)
	mux.HandleFunc("GET /api/notes/{case}", s.apiNotes)
	mux.HandleFunc("PUT /api/notes/{case}", s.apiNotesPut)
	mux.HandleFunc("POST /api/notes/{case}/undo", s.apiUndo)
	mux.HandleFunc("POST /api/copy", s.apiCopy)
	mux.HandleFunc("POST /api/case/use", s.apiCaseUse)
	mux.HandleFunc("POST /api/case/consent", s.apiConsent)
	mux.HandleFunc("POST /api/case/withdraw", s.apiWithdraw)
	mux.HandleFunc("POST /api/case/close", s.apiClose)
	return s.guard(mux)
}

// guard admits a request only with the token and a loopback Host, and
// from the workspace's own origin.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; media-src 'self' blob:; frame-ancestors 'none'")
		host, port, err := net.SplitHostPort(r.Host)
		if err != nil || (host != "127.0.0.1" && host != "localhost" && host != "[::1]" && host != "::1") || port == "" {
			http.Error(w, "forbidden: open the workspace with the address attune ui printed", http.StatusForbidden)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
			http.Error(w, "forbidden: requests from other pages are refused", http.StatusForbidden)
			return
		}
		if sf := r.Header.Get("Sec-Fetch-Site"); sf != "" && sf != "same-origin" && sf != "none" {
			http.Error(w, "forbidden: requests from other pages are refused", http.StatusForbidden)
			return
		}
		if t := r.URL.Query().Get("token"); t != "" && r.Method == http.MethodGet && r.URL.Path == "/" {
			if subtle.ConstantTimeCompare([]byte(t), []byte(s.token)) != 1 {
				http.Error(w, "forbidden: this link is from another session; run attune ui again", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		c, err := r.Cookie(cookieName)
		if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.token)) != 1 {
			http.Error(w, "forbidden: open the workspace with the address attune ui printed (it holds a secret)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	b, _ := appFS.ReadFile("app.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// fail answers with an error a person can act on.
func fail(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 8<<20))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request: %v", err)
	}
	return nil
}

// --- home ---

type caseView struct {
	ID           string      `json:"id"`
	Label        string      `json:"label"`
	Cycle        int         `json:"cycle"` // recordings so far: the cycle reached
	Consent      string      `json:"consent"`
	State        string      `json:"state"`
	RetentionDue string      `json:"retention_due,omitempty"`
	Protected    bool        `json:"protected"`
	Unlocked     bool        `json:"unlocked"`
	Recordings   []recView   `json:"recordings"`
	Copies       int         `json:"copies"` // plaintext files attune wrote: exports, family copies
	Scopes       []scopeView `json:"scopes"`
	Filming      bool        `json:"filming"` // the paired device records to it
	Open         bool        `json:"open"`
}

type recView struct {
	ID      string  `json:"id"`
	Cycle   int     `json:"cycle"`
	Date    string  `json:"date"`
	Seconds float64 `json:"seconds"`
	Synced  bool    `json:"synced"`
	Marks   int     `json:"marks"`
}

func consentWords(c *laptop.Case) string {
	var yes, gone []string
	for _, v := range scopesOf(c) {
		switch {
		case v.Withdrawn != "":
			gone = append(gone, v.Words+" "+v.Withdrawn)
		case v.Granted && v.Scope != laptop.ScopeFilming:
			yes = append(yes, v.Words)
		}
	}
	s := "no consent recorded yet"
	if n := len(c.Consent); n > 0 {
		s = "consent " + c.Consent[n-1].Date + ": "
		if len(yes) == 0 {
			s += "nothing beyond filming"
		} else {
			s += strings.Join(yes, ", ")
		}
	}
	if len(gone) > 0 {
		s += "; " + strings.Join(gone, "; ")
	}
	return s
}

// cycleOf is a recording's cycle: as the practitioner set it, else its rank
// among the case's recordings.
func cycleOf(n *Notes, rec string, rank int) int {
	if n != nil {
		if c, ok := n.Cycles[rec]; ok && c > 0 {
			return c
		}
	}
	return rank
}

func (s *Server) apiHome(w http.ResponseWriter, r *http.Request) {
	cases, err := s.home.Cases()
	if err != nil {
		fail(w, 500, err)
		return
	}
	recs, err := s.home.Recordings()
	if err != nil {
		fail(w, 500, err)
		return
	}
	now := s.opts.Now()
	out := struct {
		Cases  []caseView `json:"cases"`
		Device *struct {
			Paired bool   `json:"paired"`
			Case   string `json:"case"`
			ID     string `json:"id"`
		} `json:"device"`
		CopyFolder string    `json:"copy_folder"`
		Due        []dueView `json:"due"` // closed cases erased within dueWithin
	}{Cases: []caseView{}, CopyFolder: s.opts.CopyFolder, Due: s.due(now)}
	var filming string
	if devs, _ := s.home.Devices(); len(devs) > 0 {
		filming = devs[0].Case
	}
	for _, c := range cases {
		v := caseView{ID: c.ID, Label: c.Label, Consent: consentWords(c), State: "open", Protected: c.Protected, Recordings: []recView{},
			Scopes: scopesOf(c), Filming: c.ID == filming, Open: c.Closed == nil && c.Erased == nil}
		switch {
		case c.Erased != nil:
			v.State = "erased: its footage can no longer be opened"
		case c.Closed != nil:
			v.State = "closed"
		}
		if due, ok := c.EraseDue(); ok {
			days := int(due.Sub(now).Hours() / 24)
			v.RetentionDue = fmt.Sprintf("footage erased %s (in %d days)", due.Local().Format("2 January 2006"), max(0, days))
		}
		s.mu.Lock()
		id := s.ids[c.ID]
		v.Unlocked = id != nil || !c.Protected
		var notes *Notes
		if st := s.notes[c.ID]; st != nil {
			notes = st.cur
		}
		s.mu.Unlock()
		if id == nil && !c.Protected && c.Erased == nil {
			id, _ = s.identity(c)
		}
		rank := 0
		for _, vr := range recs {
			if vr.Case != c.ID {
				continue
			}
			rank++
			rv := recView{ID: vr.ID, Cycle: cycleOf(notes, vr.ID, rank), Synced: vr.Synced()}
			if id != nil {
				if m, err := vr.Manifest(id); err == nil {
					rv.Seconds, rv.Marks = m.Duration, len(m.Marks)
					if m.ClockTrusted {
						rv.Date = m.Started.Local().Format("Monday 2 January 2006, 15:04")
					}
				}
			}
			v.Recordings = append(v.Recordings, rv)
		}
		v.Cycle = rank
		if ex, _ := s.home.Exports(c); ex != nil {
			v.Copies = len(ex)
		}
		out.Cases = append(out.Cases, v)
	}
	if devs, _ := s.home.Devices(); len(devs) > 0 {
		d := devs[0]
		out.Device = &struct {
			Paired bool   `json:"paired"`
			Case   string `json:"case"`
			ID     string `json:"id"`
		}{true, "", d.ID}
		if c, err := s.home.Case(d.Case); err == nil {
			out.Device.Case = c.Label
		}
	}
	writeJSON(w, out)
}

// identity is the unlocked identity of a case (unprotected ones unlock
// themselves).
func (s *Server) identity(c *laptop.Case) (age.Identity, error) {
	s.mu.Lock()
	id := s.ids[c.ID]
	s.mu.Unlock()
	if id != nil {
		return id, nil
	}
	if c.Protected {
		return nil, fmt.Errorf("%s is locked: type its passphrase first", c.Label)
	}
	id, err := s.home.Identity(c, nil)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.ids[c.ID] = id
	s.mu.Unlock()
	return id, nil
}

func (s *Server) apiUnlock(w http.ResponseWriter, r *http.Request) {
	var req struct{ Case, Passphrase string }
	if err := readJSON(r, &req); err != nil {
		fail(w, 400, err)
		return
	}
	c, err := s.home.Case(req.Case)
	if err != nil {
		fail(w, 404, err)
		return
	}
	id, err := s.home.Identity(c, func() (string, error) { return req.Passphrase, nil })
	if err != nil {
		fail(w, 403, fmt.Errorf("that passphrase does not open %s: check it and try again", c.Label))
		return
	}
	s.mu.Lock()
	s.ids[c.ID], s.pass[c.ID] = id, req.Passphrase
	s.mu.Unlock()
	writeJSON(w, map[string]bool{"ok": true})
}

// --- device ---

func (s *Server) device() (*laptop.Device, error) {
	devs, err := s.home.Devices()
	if err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		return nil, errors.New("no device paired yet: hold PAIR on the device for 3 seconds, then type the code it shows")
	}
	d := devs[0]
	if s.opts.DeviceAddr != "" {
		d.Addr = s.opts.DeviceAddr
	}
	return d, nil
}

func (s *Server) client(d *laptop.Device) (*link.Client, error) {
	cert, _, err := s.home.Cert()
	if err != nil {
		return nil, err
	}
	return link.NewClient(s.opts.Dial, d.Addr, cert, d.Pin)
}

func (s *Server) apiDevice(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"paired": false, "reachable": false}
	d, err := s.device()
	if err != nil {
		out["message"] = err.Error()
		writeJSON(w, out)
		return
	}
	out["paired"], out["id"] = true, d.ID
	if c, err := s.home.Case(d.Case); err == nil {
		out["case"] = c.Label
	}
	cl, err := s.client(d)
	if err != nil {
		out["message"] = err.Error()
		writeJSON(w, out)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		out["message"] = "the device does not answer: is it on, and connected by its cable or on this network?"
		writeJSON(w, out)
		return
	}
	out["reachable"], out["state"], out["minutes_left"] = true, st.State, st.Storage.MinutesLeft
	out["battery"] = batteryWords(st.Battery)
	writeJSON(w, out)
}

// batteryWords is the device's battery as the page says it.
func batteryWords(pct *int) string {
	switch {
	case pct == nil:
		return "not reported"
	case *pct <= 15:
		return fmt.Sprintf("%d%%: charge it before the next visit", *pct)
	}
	return fmt.Sprintf("%d%%", *pct)
}

func (s *Server) apiPair(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code, Address, Label, Passphrase string
		NoPassphrase                     bool
	}
	if err := readJSON(r, &req); err != nil {
		fail(w, 400, err)
		return
	}
	code, err := link.NormalizeCode(req.Code)
	if err != nil {
		fail(w, 400, fmt.Errorf("the code: %v", err))
		return
	}
	addr := strings.TrimSpace(req.Address)
	if addr == "" {
		addr = s.opts.DeviceAddr
	}
	if addr == "" {
		found, err := link.Browse(r.Context(), 3*time.Second)
		if err != nil || len(found) != 1 {
			fail(w, 404, errors.New("no single device found on the network: connect it by its cable, or type its address (shown in its settings)"))
			return
		}
		addr = found[0].Addr()
	}
	label := strings.TrimSpace(req.Label)
	if label == "" {
		label = "Family " + s.opts.Now().Format("2 Jan 2006")
	}
	if req.Passphrase == "" && !req.NoPassphrase {
		fail(w, 400, errors.New("type a passphrase to protect the family's key (you will need it to open their films), then press Pair again"))
		return
	}
	_, c, err := s.home.Pair(r.Context(), s.opts.Dial, addr, code, laptop.CaseOptions{Label: label, Passphrase: req.Passphrase, NoPassphrase: req.NoPassphrase})
	if err != nil {
		fail(w, 400, fmt.Errorf("pairing failed: %v; hold PAIR on the device again for a new code", err))
		return
	}
	if req.Passphrase != "" {
		// Typed once here: the case is open for this session.
		id, err := s.home.Identity(c, func() (string, error) { return req.Passphrase, nil })
		if err == nil {
			s.mu.Lock()
			s.ids[c.ID], s.pass[c.ID] = id, req.Passphrase
			s.mu.Unlock()
		}
	}
	writeJSON(w, map[string]string{"case": c.Label})
}

// --- sync ---

func (s *Server) apiSyncStart(w http.ResponseWriter, r *http.Request) {
	d, err := s.device()
	if err != nil {
		fail(w, 400, err)
		return
	}
	s.mu.Lock()
	if s.sync.Running {
		s.mu.Unlock()
		fail(w, 409, errors.New("a sync is already running"))
		return
	}
	s.sync = syncStatus{Running: true, Message: "connecting to the device…"}
	s.mu.Unlock()
	go s.runSync(d)
	writeJSON(w, map[string]bool{"started": true})
}

func (s *Server) runSync(d *laptop.Device) {
	finish := func(res *laptop.SyncResult, err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sync.Running, s.sync.Result = false, res
		switch {
		case err != nil:
			s.sync.Error = err.Error() + " — check the device is on and connected, then sync again"
		case res != nil && res.Problems() > 0:
			s.sync.Error = fmt.Sprintf("%d problem(s): what had a problem stays on the device; sync again", res.Problems())
		default:
			s.sync.Message = fmt.Sprintf("done: %d recording(s) safely on this laptop", len(res.Recordings))
		}
	}
	cl, err := s.client(d)
	if err != nil {
		finish(nil, err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Hour)
	defer cancel()
	pass := func() (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if p, ok := s.pass[d.Case]; ok {
			return p, nil
		}
		return "", errors.New("the case is locked: type its passphrase first")
	}
	res, err := s.home.Sync(ctx, cl, d, laptop.SyncOptions{Passphrase: pass, Progress: func(e laptop.SyncEvent) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch e.Kind {
		case "plan":
			s.sync.Total, s.sync.Count = e.Total, e.Recordings
			s.sync.Message = fmt.Sprintf("%d recording(s) to bring over", e.Recordings)
		case "bytes", "segment":
			s.sync.Bytes, s.sync.Total = e.Bytes, max(e.Total, s.sync.Total)
			s.sync.Message = "bringing recordings over…"
		case "recording":
			s.sync.Done++
		case "problem":
			s.sync.Message = e.Message
		}
	}})
	if err == nil {
		if _, cerr := s.home.PullCustody(ctx, cl, d); cerr != nil {
			err = fmt.Errorf("chain of custody: %w", cerr)
		}
	}
	finish(res, err)
}

func (s *Server) apiSync(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.sync
	s.mu.Unlock()
	writeJSON(w, st)
}

// --- films ---

// film opens a recording, keeping the last few in memory.
func (s *Server) film(ctx context.Context, ref string) (*Film, *laptop.Case, error) {
	vr, err := s.home.FindRecording(ref)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.home.Case(vr.Case)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	f := s.films[vr.ID]
	s.mu.Unlock()
	if f != nil {
		return f, c, nil
	}
	id, err := s.identity(c)
	if err != nil {
		return nil, c, err
	}
	f, err = LoadFilm(ctx, vr, id)
	if err != nil {
		return nil, c, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.films[vr.ID]; g != nil {
		return g, c, nil
	}
	s.films[vr.ID] = f
	s.order = append(s.order, vr.ID)
	for len(s.order) > keepFilms {
		delete(s.films, s.order[0])
		s.order = s.order[1:]
	}
	return f, c, nil
}

func (s *Server) apiFilm(w http.ResponseWriter, r *http.Request) {
	f, c, err := s.film(r.Context(), r.PathValue("rec"))
	if err != nil {
		code := 404
		if c != nil {
			code = 403
		}
		fail(w, code, err)
		return
	}
	pts := make([]float64, len(f.PTS))
	for i, p := range f.PTS {
		pts[i] = float64(p-f.PTS[0]) / float64(time.Millisecond)
	}
	marks := make([]float64, len(f.Marks))
	markFrames := make([]int, len(f.Marks))
	for i, m := range f.Marks {
		marks[i] = float64(m) / float64(time.Millisecond)
		markFrames[i] = f.FrameAt(m)
	}
	out := map[string]any{
		"id": f.ID, "case": c.ID, "case_label": c.Label, "frames": f.Len(), "pts_ms": pts,
		"fps": f.Video.FPS, "width": f.Video.Width, "height": f.Video.Height,
		"marks_ms": marks, "mark_frames": markFrames, "duration_ms": float64(f.Duration()-f.PTS[0]) / float64(time.Millisecond),
		"audio": f.Audio != nil && len(f.PCM) > 0,
		// The sound starts this long after the first frame.
		"audio_offset_ms": float64(f.AudioStart-f.PTS[0]) / float64(time.Millisecond),
	}
	if !f.Started.IsZero() {
		out["date"] = f.Started.Local().Format("Monday 2 January 2006, 15:04")
	}
	if f.Damaged != nil {
		out["damaged"] = "the recording is damaged after " + FormatTime(f.Duration()-f.PTS[0]) + "; everything before it is shown"
	}
	writeJSON(w, out)
}

func (s *Server) apiFrame(w http.ResponseWriter, r *http.Request) {
	f, _, err := s.film(r.Context(), r.PathValue("rec"))
	if err != nil {
		fail(w, 404, err)
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= f.Len() {
		fail(w, 404, fmt.Errorf("no frame %s", r.PathValue("n")))
		return
	}
	jpeg, err := f.Frame(n)
	if err != nil {
		fail(w, 500, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	// Kept in the browser's memory cache only, never its disk cache.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(jpeg)))
	w.Write(jpeg)
}

func (s *Server) apiAudio(w http.ResponseWriter, r *http.Request) {
	f, _, err := s.film(r.Context(), r.PathValue("rec"))
	if err != nil {
		fail(w, 404, err)
		return
	}
	if f.Audio == nil || len(f.PCM) == 0 {
		fail(w, 404, errors.New("this recording has no sound"))
		return
	}
	ch, rate := uint16(max(1, f.Audio.Channels)), uint32(f.Audio.SampleRate)
	hdr := make([]byte, 0, 44)
	hdr = append(hdr, "RIFF"...)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(36+len(f.PCM)))
	hdr = append(hdr, "WAVEfmt "...)
	hdr = binary.LittleEndian.AppendUint32(hdr, 16)
	hdr = binary.LittleEndian.AppendUint16(hdr, 1)
	hdr = binary.LittleEndian.AppendUint16(hdr, ch)
	hdr = binary.LittleEndian.AppendUint32(hdr, rate)
	hdr = binary.LittleEndian.AppendUint32(hdr, rate*uint32(ch)*2)
	hdr = binary.LittleEndian.AppendUint16(hdr, ch*2)
	hdr = binary.LittleEndian.AppendUint16(hdr, 16)
	hdr = append(hdr, "data"...)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(f.PCM)))
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Length", strconv.Itoa(len(hdr)+len(f.PCM)))
	w.Write(hdr)
	w.Write(f.PCM)
}

// --- notes, clips, stills ---

func (s *Server) caseNotes(ref string) (*laptop.Case, *notesState, error) {
	c, err := s.home.Case(ref)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	st := s.notes[c.ID]
	s.mu.Unlock()
	if st != nil {
		return c, st, nil
	}
	id, err := s.identity(c)
	if err != nil {
		return c, nil, err
	}
	n, err := LoadNotes(s.home, c, id)
	if err != nil {
		return c, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st = s.notes[c.ID]; st == nil {
		st = &notesState{cur: n}
		s.notes[c.ID] = st
	}
	return c, st, nil
}

func (s *Server) apiNotes(w http.ResponseWriter, r *http.Request) {
	_, st, err := s.caseNotes(r.PathValue("case"))
	if err != nil {
		fail(w, 403, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, map[string]any{"notes": st.cur, "undo": len(st.undo)})
}

func (s *Server) apiNotesPut(w http.ResponseWriter, r *http.Request) {
	c, st, err := s.caseNotes(r.PathValue("case"))
	if err != nil {
		fail(w, 403, err)
		return
	}
	var n Notes
	if err := readJSON(r, &n); err != nil {
		fail(w, 400, err)
		return
	}
	if n.Principles == nil {
		n.Principles = []string{}
	}
	if err := SaveNotes(s.home, c, &n); err != nil {
		fail(w, 400, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.undo = append(st.undo, st.cur)
	st.cur = &n
	writeJSON(w, map[string]any{"notes": st.cur, "undo": len(st.undo)})
}

func (s *Server) apiUndo(w http.ResponseWriter, r *http.Request) {
	c, st, err := s.caseNotes(r.PathValue("case"))
	if err != nil {
		fail(w, 403, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(st.undo) == 0 {
		fail(w, 409, errNoUndo)
		return
	}
	prev := st.undo[len(st.undo)-1]
	if err := SaveNotes(s.home, c, prev); err != nil {
		fail(w, 500, err)
		return
	}
	st.cur, st.undo = prev, st.undo[:len(st.undo)-1]
	writeJSON(w, map[string]any{"notes": st.cur, "undo": len(st.undo)})
}

func (s *Server) apiCopy(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Case   string
		Clips  []string
		Stills []string
		Folder string
		Title  string
	}
	if err := readJSON(r, &req); err != nil {
		fail(w, 400, err)
		return
	}
	c, st, err := s.caseNotes(req.Case)
	if err != nil {
		fail(w, 403, err)
		return
	}
	s.mu.Lock()
	n := st.cur
	s.mu.Unlock()
	cr := CopyRequest{Folder: req.Folder, Title: req.Title}
	pick := map[string]bool{}
	for _, id := range append(req.Clips, req.Stills...) {
		pick[id] = true
	}
	for _, cl := range n.Clips {
		if pick[cl.ID] {
			cr.Clips = append(cr.Clips, cl)
		}
	}
	for _, sl := range n.Stills {
		if pick[sl.ID] {
			cr.Stills = append(cr.Stills, sl)
		}
	}
	sort.SliceStable(cr.Clips, func(i, j int) bool { return cr.Clips[i].Cycle < cr.Clips[j].Cycle })
	res, err := FamilyCopy(r.Context(), s.home, c, func(rec string) (*Film, error) {
		f, _, err := s.film(r.Context(), rec)
		return f, err
	}, cr, ClipOptions{FFmpeg: s.opts.FFmpeg}, s.opts.Now())
	if err != nil {
		fail(w, 400, err)
		return
	}
	writeJSON(w, res)
}
