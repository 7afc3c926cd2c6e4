//go:build linux

package main

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"attune.dev/attune/internal/benchdoc"
)

type report struct {
	when       time.Time
	in         input
	rec        *recording
	rounds     int
	contenders []*contender
	prof       *profileResult
	machine    machine
	srv        *servers
	tlsOurs    string
	quiet      time.Duration // -quiet: the longest wait for an idle machine
	retries    int           // -retries
}

// busyBefore is the machine's busy percentage in the second before each run.
func (r report) busyBefore() benchdoc.Summary {
	var xs []float64
	for _, k := range r.contenders {
		for _, s := range k.samples {
			xs = append(xs, 100*s.busyBefore)
		}
	}
	return benchdoc.Summarize(xs)
}

func over(ss []sample, f func(sample) float64) benchdoc.Summary {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	return benchdoc.Summarize(xs)
}

func (r report) mbps(k *contender) benchdoc.Summary {
	return over(k.samples, func(s sample) float64 { return s.mbps(r.rec.bytes) })
}

func (r report) get(key string) *contender {
	for _, k := range r.contenders {
		if k.key == key {
			return k
		}
	}
	panic("no contender " + key)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// table is the main result, in Markdown (also what stdout shows).
func (r report) table() string {
	var b strings.Builder
	b.WriteString("| | MB/s | wall s | client CPU s | server CPU s | kernel threads CPU s | other processes CPU s | `sync` after, s |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	diag := false
	secs := func(k *contender, f func(sample) time.Duration) string {
		return over(k.samples, func(s sample) float64 { return f(s).Seconds() }).Format(2)
	}
	for _, k := range r.contenders {
		if k.diag && !diag {
			b.WriteString("| _diagnostics: ours in parts_ | | | | | | | |\n")
			diag = true
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", k.label, r.mbps(k).Format(1),
			secs(k, func(s sample) time.Duration { return s.wall }),
			secs(k, func(s sample) time.Duration { return s.clientCPU }),
			secs(k, func(s sample) time.Duration { return s.serverCPU }),
			secs(k, func(s sample) time.Duration { return s.kernelCPU }),
			secs(k, func(s sample) time.Duration { return s.otherCPU }),
			secs(k, func(s sample) time.Duration { return s.syncAfter }))
	}
	b.WriteString("\n")
	b.WriteString(r.goals())
	return b.String()
}

func (r report) ratios() (curl, scp float64) {
	ours := r.mbps(r.get("ours")).Med
	return ours / r.mbps(r.get("curl")).Med, ours / r.mbps(r.get("scp")).Med
}

// likeForLike is ours against curl ← nginx followed by sync: both ending
// with the bytes on disk.
func (r report) likeForLike() float64 {
	return r.mbps(r.get("ours")).Med / r.mbps(r.get("curlsync")).Med
}

// roundRatios is ours / key's throughput round by round (runs next to each
// other), for how much the machine moved under the medians; nil unless
// both ran every round.
func (r report) roundRatios(key string) []float64 {
	ours, other := r.get("ours").samples, r.get(key).samples
	if len(ours) != len(other) || len(ours) < 2 {
		return nil
	}
	out := make([]float64, len(ours))
	for i := range ours {
		out[i] = ours[i].mbps(r.rec.bytes) / other[i].mbps(r.rec.bytes)
	}
	return out
}

func (r report) goals() string {
	curl, scp := r.ratios()
	var b strings.Builder
	fmt.Fprintf(&b, "attune sync / curl ← nginx: ×%.2f (goal ≥ %.1f: %s); like for like, attune sync / (curl ← nginx, then sync): ×%.2f; attune sync / scp: ×%.2f (goal > %.0f: %s).\n",
		curl, goalCurlRatio, verdict(curl >= goalCurlRatio), r.likeForLike(), scp, goalSCPRatio, verdict(scp > goalSCPRatio))
	for _, k := range []string{"curl", "curlsync"} {
		rs := r.roundRatios(k)
		if rs == nil {
			continue
		}
		fmt.Fprintf(&b, "\nattune sync / %s round by round: ", r.get(k).label)
		for i, x := range rs {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "×%.2f", x)
		}
		b.WriteString(".\n")
	}
	return b.String()
}

// readme is the sync figures the README's "How fast" quotes, between the
// benchsync:readme markers.
func (r report) readme() string {
	curl, scp := r.ratios()
	ratio := func(x float64, key string) string {
		s := fmt.Sprintf("×%.2f", x)
		if rs := r.roundRatios(key); rs != nil {
			sum := benchdoc.Summarize(rs)
			s += fmt.Sprintf(" (round by round %.2f–%.2f)", sum.Min, sum.Max)
		}
		return s
	}
	return fmt.Sprintf("- `attune sync` moves a %.0f MB recording over loopback at %.0f MB/s, hashing, decrypting and fsyncing every segment before the device may delete it: "+
		"%s curl from nginx, %s curl from nginx followed by `sync` (its bytes then as durable), ×%.1f scp. "+
		"Median of %s on %s, load average %s at the start (the machine is shared).",
		float64(r.rec.bytes)/1e6, r.mbps(r.get("ours")).Med, ratio(curl, "curl"), ratio(r.likeForLike(), "curlsync"), scp,
		plural(r.rounds, "round"), r.when.Format("2006-01-02"), r.machine.load)
}

// breakdownTable is where the in-process sync's time went, and what its
// checks and fsyncs cost timed alone.
func (r report) breakdownTable() string {
	p := r.prof
	w := p.wall.Seconds()
	streamS := float64(p.streams) * p.phase.Seconds()
	own := max(0, streamS-p.open.Seconds()-p.download.Seconds())
	var b strings.Builder
	b.WriteString("| where `laptop.Home.Sync`'s time went | s | share |\n|---|---:|---:|\n")
	fmt.Fprintf(&b, "| the whole sync (wall; %.1f MB/s; this process's CPU %.2f s, attuned's %.2f s) | %.2f | |\n",
		float64(r.rec.bytes)/1e6/w, p.cpu.Seconds(), p.serverCPU.Seconds(), w)
	fmt.Fprintf(&b, "| … downloading segments, from the first request to the last byte | %.2f | %.0f%% of wall |\n", p.phase.Seconds(), 100*p.phase.Seconds()/w)
	fmt.Fprintf(&b, "| … before and after: clock, listing, manifest, the last acknowledgement | %.2f | %.0f%% of wall |\n", w-p.phase.Seconds(), 100*(w-p.phase.Seconds())/w)
	fmt.Fprintf(&b, "| the %d download streams' time (%d × downloading) | %.2f | |\n", p.streams, p.streams, streamS)
	row := func(what string, d float64) {
		fmt.Fprintf(&b, "| … %s | %.2f | %.0f%% of stream time |\n", what, d, 100*d/max(streamS, 1e-9))
	}
	row("waiting for the device's answer to each request (request → headers)", p.open.Seconds())
	row("inside the body reads: network, TLS decryption", p.download.Seconds())
	row("the laptop's work on what arrived: SHA-256, vault writes, age decryption", own)
	fmt.Fprintf(&b, "| acknowledgements, beside the downloads (the device deleting what they name) | %.2f | |\n", p.ack.Seconds())
	b.WriteString("\nThe checks and fsyncs `attune sync` makes, each timed alone over the same files afterwards (page cache), whichever way sync arranges them:\n\n")
	b.WriteString("| step, over all segments | s |\n|---|---:|\n")
	for _, st := range []struct {
		what string
		d    time.Duration
	}{
		{"SHA-256 of each segment", p.hash},
		{"age header of each: ML-KEM-768 + X25519 unwrap (and the final chunk)", p.unwrap},
		{"age payload of each: ChaCha20-Poly1305 decryption", p.decrypt},
		{"fsync of each segment just written", p.fsync},
		{"fsync of the directory after each rename", p.dirSync},
	} {
		fmt.Fprintf(&b, "| %s | %.2f |\n", st.what, st.d.Seconds())
	}
	return b.String()
}

// deviceTable is where attuned's CPU time went during the profiled sync.
func (r report) deviceTable() string {
	p := r.prof
	if len(p.device) == 0 {
		return fmt.Sprintf("No profile of the device's side: %s.\n", p.perfNote)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The device's side: attuned used %.2f CPU s during that run; where it went, from one more sync with `perf record -e cpu-clock -g -p PID` on attuned "+
		"(shares of its samples, children included, times those %.2f s; frames nest):\n\n", p.serverCPU.Seconds(), p.serverCPU.Seconds())
	b.WriteString("| attuned frame | CPU s | of attuned's CPU |\n|---|---:|---:|\n")
	for _, l := range p.device {
		fmt.Fprintf(&b, "| %s | %.2f | %.0f%% |\n", l.what, l.cum, 100*l.cum/max(p.serverCPU.Seconds(), 1e-9))
	}
	return b.String()
}

func (r report) deviceFrame(frame string) float64 {
	for i, df := range deviceFrames {
		if df.frame == frame && i < len(r.prof.device) {
			return r.prof.device[i].cum
		}
	}
	return 0
}

func (r report) profileTable() string {
	p := r.prof
	if len(p.top) == 0 {
		return "(`go` not found: no profile benchdoc.Summary)\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CPU profile of that run (`%s`, %.2f s of samples over %.2f s), cumulative time in frames that do not nest:\n\n",
		filepath.Base(p.path), p.samplesS, p.wall.Seconds())
	b.WriteString("| frame | CPU s | of samples |\n|---|---:|---:|\n")
	rest := p.samplesS
	for _, l := range p.top {
		fmt.Fprintf(&b, "| %s | %.2f | %.0f%% |\n", l.what, l.cum, 100*l.cum/max(p.samplesS, 1e-9))
		rest -= l.cum
	}
	fmt.Fprintf(&b, "| everything else: HTTP, pipes, other syscalls, the runtime | %.2f | %.0f%% |\n", rest, 100*rest/max(p.samplesS, 1e-9))
	b.WriteString("\n`go tool pprof -top` (flat):\n\n```text\n")
	b.WriteString(p.topText)
	b.WriteString("\n```\n")
	return b.String()
}

// interpretation is the text under the table, written from the numbers.
func (r report) interpretation() string {
	ours, curl, scp := r.mbps(r.get("ours")).Med, r.mbps(r.get("curl")).Med, r.mbps(r.get("scp")).Med
	godl, curlAtt := r.mbps(r.get("godl")).Med, r.mbps(r.get("curlattuned")).Med
	med := func(key string, f func(sample) time.Duration) float64 {
		return over(r.get(key).samples, func(s sample) float64 { return f(s).Seconds() }).Med
	}
	client := func(s sample) time.Duration { return s.clientCPU }
	server := func(s sample) time.Duration { return s.serverCPU }
	both := func(s sample) time.Duration { return s.clientCPU + s.serverCPU + s.kernelCPU }
	wall := func(s sample) time.Duration { return s.wall }
	cr, sr := r.ratios()
	p := r.prof
	mb := float64(r.rec.bytes) / 1e6
	ncpu := float64(r.machine.nproc)
	checks := (p.hash + p.unwrap + p.decrypt).Seconds()
	var b strings.Builder

	fmt.Fprintf(&b, "`attune sync` moved the %.0f MB recording at %.0f MB/s, curl from nginx at %.0f MB/s and scp at %.0f MB/s: ×%.2f and ×%.2f. ",
		mb, ours, curl, scp, cr, sr)
	fmt.Fprintf(&b, "They do not do the same work. curl and scp only copy: their files are left in the page cache, and writing them out took another %.2f s and %.2f s (the `sync` column). "+
		"`attune sync` checks every segment's SHA-256 against the device's index, decrypts it whole with the case's age identity "+
		"(ML-KEM-768 + X25519 header, ChaCha20-Poly1305 payload), makes it durable (fsync) and only then acknowledges it, so that the device may delete it; "+
		"timed alone, those checks cost %.2f s of CPU for this recording. "+
		"Like for like, curl from nginx followed by `sync` (timed to its end, the bytes then on disk) moved it at %.0f MB/s: `attune sync` ×%.2f of that.\n\n",
		med("curl", func(s sample) time.Duration { return s.syncAfter }), med("scp", func(s sample) time.Duration { return s.syncAfter }), checks,
		r.mbps(r.get("curlsync")).Med, r.likeForLike())

	fmt.Fprintf(&b, "**How.** %d segments download at once, each over its own connection, and nothing is read back from the disk: each segment is received into memory, hashed as it arrives, "+
		"written to the vault 256 KB at a time and decrypted there (age's random-access reader), while fsyncs and acknowledgements (in batches, once durable) run beside the next downloads. "+
		"The device sends each 256 KB of a segment as one socket write (its TLS records gathered), instead of one system call and one packet per 16 KB record. "+
		"In the profiled run below the streams spent %.0f%% of their time waiting for the device's answers, %.0f%% inside the reads, and the rest on the laptop's own work on what arrived.\n\n",
		p.streams, 100*p.open.Seconds()/max(float64(p.streams)*p.phase.Seconds(), 1e-9), 100*p.download.Seconds()/max(float64(p.streams)*p.phase.Seconds(), 1e-9))

	fmt.Fprintf(&b, "**Transport.** attune's Go link client alone, writing the same files from attuned without checking, fsyncing or acknowledging, gets %.0f MB/s (×%.2f curl ← nginx); "+
		"curl against attuned's link API gets %.0f MB/s (×%.2f). Client, server and kernel together spend %.2f CPU s on the recording through `attune sync` "+
		"(attune %.2f, attuned %.2f), %.2f through curl ← nginx (curl %.2f, nginx %.2f). "+
		"AES-GCM (Go's `gcmAesEnc`) took %.2f of attuned's CPU s.\n\n",
		godl, godl/curl, curlAtt, curlAtt/curl, med("ours", both), med("ours", client), med("ours", server), med("curl", both), med("curl", client), med("curl", server),
		r.deviceFrame("crypto/internal/fips140/aes/gcm.seal"))

	target := mb / (goalCurlRatio * curl) // s, for 0.9× curl
	budget := target * ncpu
	need := med("ours", both)
	if cr >= goalCurlRatio {
		fmt.Fprintf(&b, "It meets the %.1f× goal against curl with every check and fsync in place: the work is spread over the %d CPUs "+
			"(%.2f CPU s in %.2f s, %.1f CPUs busy), where curl and nginx, one process each, keep %.1f busy. ",
			goalCurlRatio, r.machine.nproc, need, med("ours", wall), need/max(med("ours", wall), 1e-9), med("curl", both)/max(med("curl", wall), 1e-9))
	} else {
		fmt.Fprintf(&b, "**Why it misses %.1f× curl.** %.1f× curl is %.0f MB/s, %.2f s for this recording: on %d CPUs at most %.2f CPU s for client, server and kernel together. "+
			"`attune sync` and attuned use %.2f CPU s (curl and nginx %.2f) and keep %.1f CPUs busy. ",
			goalCurlRatio, goalCurlRatio, goalCurlRatio*curl, target, r.machine.nproc, budget, need, med("curl", both), need/max(med("ours", wall), 1e-9))
		if need > budget {
			fmt.Fprintf(&b, "The CPU per byte has to come down by %.0f%% first; the checks alone are %.2f CPU s, and Go's TLS costs more than OpenSSL's on both ends. ",
				100*(1-budget/need), checks)
		} else {
			b.WriteString("The CPU would allow it: the time is lost to waiting (request round trips under load, fsyncs), not to work. ")
		}
	}
	if sr > goalSCPRatio {
		b.WriteString("It beats scp, which does no checking. ")
	} else {
		fmt.Fprintf(&b, "It does not beat scp either (×%.2f), which does no checking. ", sr)
	}
	fmt.Fprintf(&b, "All of this is over loopback with client, server and the disk's writeback sharing %d CPUs, and the machine is shared: curl ← nginx ran at %.0f–%.0f MB/s across the rounds of this one run. "+
		"Over the device's real USB or Wi-Fi link, slower than any figure here, the link sets the pace as long as the laptop keeps up.\n",
		r.machine.nproc, r.mbps(r.get("curl")).Min, r.mbps(r.get("curl")).Max)
	return b.String()
}

// markdown is the whole section, markers included.
func (r report) markdown() string {
	var b strings.Builder
	b.WriteString(startMarker + "\n")
	b.WriteString("## Sync: `attune sync` against curl from nginx (with and without `sync`) and scp\n\n")
	fmt.Fprintf(&b, "_Written by `make bench` (`internal/benchsync`) on %s; everything between the benchsync markers is replaced on each run._\n\n",
		r.when.Format("2006-01-02 15:04 MST"))
	ix := r.rec.index
	fmt.Fprintf(&b, "One recording made on a simulated device: `attuned run --board sim` replaying %.0f s of %dx%d %d fps MJPEG (`-q:v %d`) + 48 kHz PCM "+
		"as fast as it reads (`pace = \"none\"`), REC pressed on the panel API, ended by the end of the source; "+
		"sealed to the paired case's %s key: %d segments and the manifest, %.1f MB. "+
		"Every contender moves those same files over 127.0.0.1, from the page cache, into a fresh directory on the same disk; "+
		"each output is checked file by file against the device's index (size and SHA-256), and `attune sync` must report the recording complete with no problems and leave the device empty. "+
		"%s, the contenders alternating; median (min–max). MB/s is the recording's %d bytes / wall time, MB = 10^6 bytes. "+
		"CPU is user + system time: the client from `wait4`, the server from `/proc/PID/stat` before and after (its reaped children included), "+
		"the kernel's threads (writeback, journal, softirq) and every other process from `/proc` and `/proc/stat`; "+
		"each run waits up to %s for an idle machine (under 10%% busy) first — the machine was %s%% busy in the second before a run — "+
		"and a run during which other processes took more than a tenth of a CPU is run again, up to %s. "+
		"`sync` after is a `sync(2)` right after each run, untimed in MB/s.\n\n",
		r.in.seconds, inWidth, inHeight, inFPS, inQuality, ix.RecipientKind, len(ix.Segments), float64(r.rec.bytes)/1e6,
		plural(r.rounds, "round"), r.rec.bytes, r.quiet, r.busyBefore().Format(0), plural(r.retries, "time"))
	b.WriteString(r.table())
	if n := r.reruns(); n > 0 {
		verb := "were"
		if n == 1 {
			verb = "was"
		}
		fmt.Fprintf(&b, "\n%s disturbed by other processes on the machine (more than a tenth of a CPU) %s discarded and run again.\n", plural(n, "run"), verb)
	}
	b.WriteString("\n")
	b.WriteString(r.interpretation())
	b.WriteString("\n### Where `attune sync`'s time goes\n\n")
	b.WriteString("One more sync, untimed above, run in the benchmark's own process: the same `laptop.Home.Sync` over `link.Client` that `attune sync` runs, " +
		"with the device client wrapped to time each call (summed over the download streams, which overlap), then the verification and fsync steps timed alone over the vault's files.\n\n")
	b.WriteString(r.breakdownTable())
	b.WriteString("\n")
	b.WriteString(r.profileTable())
	b.WriteString("\n")
	b.WriteString(r.deviceTable())

	b.WriteString("\n### Machine\n\n")
	m := r.machine
	fmt.Fprintf(&b, "- CPU: %s, %d logical CPUs (nproc); client, server and the disk's writeback share them\n", m.cpu, m.nproc)
	if m.kernel != "" {
		fmt.Fprintf(&b, "- Linux %s; load average %s at the start\n", m.kernel, m.load)
	}
	fmt.Fprintf(&b, "- files written to %s\n", m.fs)
	fmt.Fprintf(&b, "- attune and attuned built with %s; TLS: %s (Go's choice)\n", m.goBuilt, r.tlsOurs)
	fmt.Fprintf(&b, "- %s; TLS: %s\n", m.nginx, r.srv.nginxTLS)
	fmt.Fprintf(&b, "- %s\n", m.curl)
	fmt.Fprintf(&b, "- %s; cipher: %s (default), SFTP protocol (scp's default since OpenSSH 9.0)\n", m.ssh, r.srv.sshCipher)

	b.WriteString("\n### Commands\n\n```sh\n")
	for _, g := range r.in.gen {
		fmt.Fprintf(&b, "%s   # once, cached\n", g)
	}
	b.WriteString("# the binaries run as copies named benchsync-device and benchsync-laptop, so that a `pkill attuned` elsewhere cannot stop them\n")
	b.WriteString("attuned run --config device.toml   # board = \"sim\", [capture] source = \"file:…-loop.mkv\", pace = \"none\"\n")
	b.WriteString("attune pair --device 127.0.0.1:PORT --code NNNNNN --case benchsync --home HOME   # code from the panel after holding PAIR\n")
	b.WriteString("# POST /api/panel/press {\"buttons\":[\"rec\"]}, wait for the panel to show ready again; cp -a the recording as the pristine copy\n")
	b.WriteString("sshd -D -e -f sshd_config -p PORT   # fresh ed25519 host and client keys, public key only, UsePAM no\n")
	b.WriteString("nginx -c nginx.conf -p DIR   # daemon off, one process, listen 127.0.0.1:PORT ssl, TLSv1.3, self-signed ECDSA P-256\n")
	b.WriteString("# each round, in alternating order (the device's copy restored and the vault emptied before each):\n")
	for _, k := range r.contenders {
		fmt.Fprintf(&b, "%s\n", k.command)
	}
	b.WriteString("```\n")
	b.WriteString(endMarker + "\n")
	return b.String()
}

func (r report) reruns() int {
	n := 0
	for _, k := range r.contenders {
		n += k.reruns
	}
	return n
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

// machine describes where the numbers were taken.
type machine struct {
	cpu     string
	nproc   int
	kernel  string
	load    string
	fs      string
	goBuilt string
	nginx   string
	curl    string
	ssh     string
}

func machineInfo(c config, dir, load string) machine {
	m := machine{cpu: benchdoc.CPUModel(), nproc: runtime.NumCPU(), load: load, fs: benchdoc.Filesystem(dir), goBuilt: "unknown"}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if bi, err := buildinfo.ReadFile(c.attune); err == nil {
		m.goBuilt = bi.GoVersion
	}
	m.nginx = strings.TrimPrefix(firstLine(toolOutput(c.nginx, "-v")), "nginx version: ")
	m.curl = firstLine(toolOutput(c.curl, "--version"))
	m.ssh = firstLine(toolOutput(c.ssh, "-V"))
	return m
}

// updateDoc creates path or replaces its benchsync section, keeping the rest.
func updateDoc(path, section string) error {
	return benchdoc.Update(path, startMarker, endMarker, section)
}

// replaceSection puts section (markers included) in place of the one in doc.
func replaceSection(doc, section string) (string, error) {
	return benchdoc.Replace(doc, startMarker, endMarker, section)
}
