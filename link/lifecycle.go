package link

import (
	"context"
	"errors"
	"net/http"
	"strconv"
)

// ErrUnsynced is returned by Reset without force while the device holds
// footage the laptop has not acknowledged.
var ErrUnsynced = errors.New("the device holds footage that was never synced")

type resetRequest struct {
	Force bool `json:"force"`
}

type resetResponse struct {
	Certificate []byte `json:"certificate"`
}

type auditResponse struct {
	Records []byte `json:"records"` // JSON lines, as the device wrote them
}

type certificatesResponse struct {
	Certificates [][]byte `json:"certificates"`
}

// lifecycleRoutes adds the end-of-case endpoints: the audit chain the
// laptop pulls, the factory reset it asks for, and the erasure certificates
// of resets done on the device itself.
func (s *Server) lifecycleRoutes(api *http.ServeMux) {
	lc := s.Backend
	api.HandleFunc("GET /api/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		var after uint64
		if q := r.URL.Query().Get("after"); q != "" {
			n, err := strconv.ParseUint(q, 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, "after must be a sequence number")
				return
			}
			after = n
		}
		raw, err := lc.Audit(after)
		if err != nil {
			s.internal(w, "audit", err)
			return
		}
		writeJSON(w, http.StatusOK, auditResponse{Records: raw})
	})
	api.HandleFunc("GET /api/v1/certificates", func(w http.ResponseWriter, r *http.Request) {
		certs, err := lc.Certificates()
		if err != nil {
			s.internal(w, "certificates", err)
			return
		}
		if certs == nil {
			certs = [][]byte{}
		}
		writeJSON(w, http.StatusOK, certificatesResponse{Certificates: certs})
	})
	api.HandleFunc("POST /api/v1/reset", func(w http.ResponseWriter, r *http.Request) {
		var req resetRequest
		if err := decodeJSON(r.Body, &req); err != nil {
			badBody(w, err)
			return
		}
		cert, err := lc.Reset(req.Force)
		switch {
		case errors.Is(err, ErrUnsynced):
			writeError(w, http.StatusConflict, err.Error()+": sync first, or force the reset (the certificate will say what was lost)")
			return
		case err != nil:
			s.internal(w, "reset", err)
			return
		}
		s.Log.Warn("factory reset by the paired laptop")
		writeJSON(w, http.StatusOK, resetResponse{Certificate: cert})
	})
}

// Audit fetches the device's audit records after sequence number after.
func (c *Client) Audit(ctx context.Context, after uint64) ([]byte, error) {
	var out auditResponse
	err := c.call(ctx, "audit", http.MethodGet, "/api/v1/audit?after="+strconv.FormatUint(after, 10), nil, &out)
	return out.Records, err
}

// Certificates fetches the erasure certificates waiting on the device.
func (c *Client) Certificates(ctx context.Context) ([][]byte, error) {
	var out certificatesResponse
	err := c.call(ctx, "certificates", http.MethodGet, "/api/v1/certificates", nil, &out)
	return out.Certificates, err
}

// Reset factory-resets the device and returns its signed erasure
// certificate. Without force a device holding unsynced footage refuses
// (an error wrapping ErrUnsynced) and nothing changes.
func (c *Client) Reset(ctx context.Context, force bool) ([]byte, error) {
	var out resetResponse
	err := c.call(ctx, "reset", http.MethodPost, "/api/v1/reset", resetRequest{Force: force}, &out)
	return out.Certificate, err
}
