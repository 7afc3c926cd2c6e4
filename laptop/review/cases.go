package review

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"attune.dev/attune/laptop"
)

// The case functions of the workspace (the caseload's, as attune case
// has them): choose the case the device records to, see, give and
// withdraw consent, close a case, and see the cases due for erasure. Each
// is the laptop package's own call; the page only puts it in words.

// scopeWords are the consent scopes as the page says them.
var scopeWords = map[string]string{
	laptop.ScopeFilming:      "filming the visits",
	laptop.ScopeSharedReview: "showing clips back in the shared review",
	laptop.ScopeFamilyCopy:   "a copy of clips and pictures for the family",
	laptop.ScopeSupervision:  "the practitioner's supervision",
	laptop.ScopeTraining:     "training and research",
}

type scopeView struct {
	Scope     string `json:"scope"`
	Words     string `json:"words"`
	Granted   bool   `json:"granted"`             // the case's consent permits it now
	Withdrawn string `json:"withdrawn,omitempty"` // "withdrawn on 2025-03-04 by the mother"
}

func scopesOf(c *laptop.Case) []scopeView {
	var out []scopeView
	for _, sc := range laptop.Scopes {
		v := scopeView{Scope: sc, Words: scopeWords[sc], Granted: c.Permits(sc) == nil}
		if w := c.Withdrawn(sc); w != nil {
			v.Withdrawn = fmt.Sprintf("withdrawn on %s by %s", w.Date, w.Who)
		}
		out = append(out, v)
	}
	return out
}

// dueView is a closed case whose footage is crypto-erased soon.
type dueView struct {
	Label string `json:"label"`
	When  string `json:"when"`
}

// dueWithin is how far ahead the home lists cases due for erasure, as
// attune list does.
const dueWithin = 14 * 24 * time.Hour

func (s *Server) due(now time.Time) []dueView {
	cs, err := s.home.Due(now, dueWithin)
	if err != nil {
		return nil
	}
	out := []dueView{}
	for _, c := range cs {
		at, _ := c.EraseDue()
		out = append(out, dueView{Label: c.Label, When: at.Local().Format("Monday 2 January 2006")})
	}
	return out
}

// caseReq names a case in a request.
func (s *Server) caseOf(w http.ResponseWriter, ref string) *laptop.Case {
	c, err := s.home.FindCase(ref)
	if err != nil {
		fail(w, 404, err)
		return nil
	}
	return c
}

// apiCaseUse makes the paired device record to a case from now on.
func (s *Server) apiCaseUse(w http.ResponseWriter, r *http.Request) {
	var req struct{ Case string }
	if err := readJSON(r, &req); err != nil {
		fail(w, 400, err)
		return
	}
	c := s.caseOf(w, req.Case)
	if c == nil {
		return
	}
	d, err := s.device()
	if err != nil {
		fail(w, 400, err)
		return
	}
	cl, err := s.client(d)
	if err != nil {
		fail(w, 500, err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := s.home.UseCase(ctx, cl, d, c, s.opts.Now()); err != nil {
		fail(w, 400, fmt.Errorf("%s: is the camera on and connected?", strings.TrimPrefix(err.Error(), "case use: ")))
		return
	}
	writeJSON(w, map[string]string{"case": c.Label, "message": "The camera films for " + c.Label + " from now on."})
}

// apiConsent records consent given, or amended (the scopes given replace
// the ones before).
func (s *Server) apiConsent(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Case, Who, Date, Note string
		Scopes                []string
		RetentionDays         *int `json:"retention_days"`
	}
	if err := readJSON(r, &req); err != nil {
		fail(w, 400, err)
		return
	}
	c := s.caseOf(w, req.Case)
	if c == nil {
		return
	}
	now := s.opts.Now()
	if req.Date == "" {
		req.Date = now.Format("2006-01-02")
	}
	cn := laptop.Consent{Date: req.Date, Who: strings.TrimSpace(req.Who), Note: req.Note, RetentionDays: req.RetentionDays}
	for _, sc := range req.Scopes {
		if err := cn.Grant(sc); err != nil {
			fail(w, 400, err)
			return
		}
	}
	if err := s.home.GiveConsent(c, cn, now); err != nil {
		fail(w, 400, fmt.Errorf("%v: correct it and record the consent again", err))
		return
	}
	writeJSON(w, map[string]any{"scopes": scopesOf(c)})
}

// apiWithdraw records consent withdrawn for one scope: exports for it are
// refused from then on.
func (s *Server) apiWithdraw(w http.ResponseWriter, r *http.Request) {
	var req struct{ Case, Scope, Who, Date string }
	if err := readJSON(r, &req); err != nil {
		fail(w, 400, err)
		return
	}
	c := s.caseOf(w, req.Case)
	if c == nil {
		return
	}
	now := s.opts.Now()
	if req.Date == "" {
		req.Date = now.Format("2006-01-02")
	}
	if err := s.home.WithdrawConsent(c, req.Scope, strings.TrimSpace(req.Who), req.Date, now); err != nil {
		fail(w, 400, fmt.Errorf("%v: correct it and try again", err))
		return
	}
	writeJSON(w, map[string]any{"scopes": scopesOf(c)})
}

// apiClose closes a case as attune case close does: the device is told
// (or reset when no other case uses it), and a device that holds footage
// of the case never brought over refuses.
func (s *Server) apiClose(w http.ResponseWriter, r *http.Request) {
	var req struct{ Case string }
	if err := readJSON(r, &req); err != nil {
		fail(w, 400, err)
		return
	}
	c := s.caseOf(w, req.Case)
	if c == nil {
		return
	}
	retention := s.home.RetentionDays()
	if n := len(c.Consent); n > 0 && c.Consent[n-1].RetentionDays != nil {
		retention = *c.Consent[n-1].RetentionDays // what the family agreed to
	}
	connect := func(d *laptop.Device) (laptop.ResetAPI, error) { return s.client(d) }
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	res, err := s.home.CloseCase(ctx, c, connect, laptop.CloseOptions{RetentionDays: retention, Addr: s.opts.DeviceAddr, Now: s.opts.Now()})
	var unsynced *laptop.UnsyncedError
	switch {
	case errors.As(err, &unsynced):
		fail(w, 409, fmt.Errorf("%s is not closed: the camera still holds %d of their recordings that were never brought over to this laptop. Press Sync now, then close the case", c.Label, len(unsynced.IDs)))
		return
	case err != nil:
		fail(w, 400, fmt.Errorf("%s is not closed: %v", c.Label, strings.TrimPrefix(err.Error(), "case close: ")))
		return
	}
	msg := fmt.Sprintf("%s is closed; their films will be erased on %s.", c.Label, res.EraseDue.Local().Format("2 January 2006"))
	switch {
	case res.Cleared:
		msg += " The camera was told: it films nobody until you choose a family."
	case res.Device != nil:
		msg += " The camera was reset; its erasure certificate is kept with the case."
	}
	if ex, _ := s.home.Exports(c); len(ex) > 0 {
		msg += fmt.Sprintf(" Closing does not reach the %d file(s) copied out for the family or exported: delete them when they are no longer needed.", len(ex))
	}
	writeJSON(w, map[string]string{"message": msg})
}
