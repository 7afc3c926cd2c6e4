package link

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"sync"
)

// pairState is the device's view of the current pairing window.
type pairState struct {
	mu     sync.Mutex
	code   string // the window (its code) the counters below belong to
	starts int
	wrong  int
	closed string // why the window no longer accepts anything: "locked", "used"
	sess   *pairSession
}

// pairSession is the pending exchange: one /pair/start awaiting its
// /pair/finish.
type pairSession struct {
	id   []byte
	keys pairKeys
}

// window follows the backend's window, resetting the counters when a new
// one (a new code) opens, and says whether pairing may proceed: 0, or the
// status and message to answer.
func (p *pairState) window(code string, open bool) (int, string) {
	if open && code != "" && code != p.code {
		p.code, p.starts, p.wrong, p.closed, p.sess = code, 0, 0, "", nil
	}
	if p.closed != "" && (!open || code == p.code) {
		if p.closed == "locked" {
			return http.StatusGone, "pairing window closed after too many wrong codes: hold PAIR on the device to get a new code"
		}
		return http.StatusGone, "this pairing code was used already: hold PAIR on the device to get a new code"
	}
	if !open || code == "" {
		p.sess = nil
		return http.StatusConflict, "no pairing window is open: hold PAIR on the device for 3 seconds, then use the code it shows"
	}
	return 0, ""
}

func (s *Server) handlePairStart(w http.ResponseWriter, r *http.Request) {
	req, err := parseStartRequest(r.Body)
	if err != nil {
		badBody(w, err)
		return
	}
	p := &s.pair
	p.mu.Lock()
	defer p.mu.Unlock()
	code, open := s.Backend.PairingCode()
	if st, msg := p.window(code, open); st != 0 {
		writeError(w, st, msg)
		return
	}
	if p.starts >= MaxStarts {
		writeError(w, http.StatusTooManyRequests, "too many pairing attempts in this window: hold PAIR on the device to get a new code")
		return
	}
	p.starts++
	msgB, key, err := cpaceRespond(code, cpaceCI(s.pinRaw), req.MsgA)
	if err != nil {
		writeError(w, http.StatusBadRequest, "msg_a is not a valid CPace message")
		return
	}
	id := make([]byte, sessionSize)
	rand.Read(id)
	// A new start replaces any pending session.
	p.sess = &pairSession{id: id, keys: deriveKeys(key, transcriptHash(s.pinRaw, id, req.MsgA, msgB))}
	writeJSON(w, http.StatusOK, startResponse{Session: id, MsgB: msgB})
}

func (s *Server) handlePairFinish(w http.ResponseWriter, r *http.Request) {
	req, err := parseFinishRequest(r.Body)
	if err != nil {
		badBody(w, err)
		return
	}
	p := &s.pair
	p.mu.Lock()
	locked := false
	defer func() {
		p.mu.Unlock()
		if locked {
			s.Backend.PairingFailed()
		}
	}()
	code, open := s.Backend.PairingCode()
	if st, msg := p.window(code, open); st != 0 {
		writeError(w, st, msg)
		return
	}
	if p.sess == nil || !hmac.Equal(p.sess.id, req.Session) {
		writeError(w, http.StatusConflict, "no pairing in progress for this session (another attempt may have replaced it): start again")
		return
	}
	// One finish per session, right or wrong.
	k := p.sess.keys
	p.sess = nil
	if !hmac.Equal(req.Confirm, k.laptopConfirm()) {
		p.wrong++
		s.Log.Warn("pairing: wrong code", "wrong", p.wrong, "max", MaxWrongCodes)
		if p.wrong >= MaxWrongCodes {
			p.closed, locked = "locked", true
			s.Log.Warn("pairing: window closed after too many wrong codes")
		}
		writeError(w, http.StatusForbidden, "wrong code")
		return
	}
	plain, err := k.open(roleLaptop, k.h1, req.Sealed)
	if err != nil {
		writeError(w, http.StatusBadRequest, "sealed payload does not open")
		return
	}
	pairing, err := parseLaptopPayload(plain)
	if err != nil {
		writeError(w, http.StatusBadRequest, "payload: "+err.Error())
		return
	}
	if err := s.Backend.Paired(pairing); err != nil {
		s.Log.Warn("pairing: refused by the device", "err", err)
		writeError(w, http.StatusBadRequest, "pairing refused: "+err.Error())
		return
	}
	p.closed = "used"
	clockSet := true
	if err := s.Backend.SetClock(pairing.Now); err != nil {
		clockSet = false
		s.Log.Warn("pairing: clock not set", "err", err)
	}
	s.Log.Info("paired", "laptop_pin", pairing.LaptopPin[:16], "recipient_kind", pairing.Case.Parsed.Kind, "recipients", len(pairing.Case.Recipients))

	dev, err := json.Marshal(deviceWire{DeviceCertPin: s.pin, DeviceID: s.Backend.Status().DeviceID, ClockSet: clockSet})
	if err != nil {
		s.internal(w, "pairing", err)
		return
	}
	h2 := k.h2(req.Confirm, req.Sealed)
	writeJSON(w, http.StatusOK, finishResponse{
		Confirm: k.mac(roleDevice, h2),
		Sealed:  k.seal(roleDevice, h2, dev),
	})
}
