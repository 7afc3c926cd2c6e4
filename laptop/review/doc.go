// Package review is the practitioner's review workspace, the half of a VIG
// cycle after the offload: a local web app (attune ui) that shows a case's
// recordings frame by frame with their sound, cuts clips and stills, keeps
// the practitioner's clips and notes encrypted to the case, runs the shared
// review with the family, and writes the family's copy.
//
// Nothing decrypted is written to disk except what the practitioner
// exports: a recording is decrypted into memory (Film) and its JPEG frames
// and PCM sound are served from there; clips and notes are kept sealed with
// age to the case's recipients (Notes); a family copy goes to the folder the
// practitioner picks, fed to ffmpeg through a pipe when ffmpeg is there.
//
// The server (Server) listens on 127.0.0.1 only, admits a request only with
// the session's secret token (given once in the URL, then kept as an
// HttpOnly, SameSite=Strict cookie), checks Host and Origin and sends no
// CORS headers, so no other local user or web page can drive it.
//
// It is laptop code: it never links the device's code and never prints or
// logs.
package review
