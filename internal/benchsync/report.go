//go:build linux

package main

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
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
}

// summary is the median and range of one measure over the rounds.
type summary struct{ med, min, max float64 }

func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return summary{med: med, min: s[0], max: s[n-1]}
}

// format prints "med (min–max)", or just med for one round.
func (s summary) format(prec int) string {
	m := strconv.FormatFloat(s.med, 'f', prec, 64)
	if s.min == s.max {
		return m
	}
	return fmt.Sprintf("%s (%s–%s)", m, strconv.FormatFloat(s.min, 'f', prec, 64), strconv.FormatFloat(s.max, 'f', prec, 64))
}

func over(ss []sample, f func(sample) float64) summary {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	return summarize(xs)
}

func (r report) mbps(k *contender) summary {
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
		return over(k.samples, func(s sample) float64 { return f(s).Seconds() }).format(2)
	}
	for _, k := range r.contenders {
		if k.diag && !diag {
			b.WriteString("| _diagnostics: ours in parts_ | | | | | | | |\n")
			diag = true
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", k.label, r.mbps(k).format(1),
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
	ours := r.mbps(r.get("ours")).med
	return ours / r.mbps(r.get("curl")).med, ours / r.mbps(r.get("scp")).med
}

func (r report) goals() string {
	curl, scp := r.ratios()
	return fmt.Sprintf("attune sync / curl ← nginx: ×%.2f (goal ≥ %.1f: %s); attune sync / scp: ×%.2f (goal > %.0f: %s).\n",
		curl, goalCurlRatio, verdict(curl >= goalCurlRatio), scp, goalSCPRatio, verdict(scp > goalSCPRatio))
}

// breakdownTable is where the in-process sync's wall time went.
func (r report) breakdownTable() string {
	p := r.prof
	w := p.wall.Seconds()
	rest := p.perSegment - p.hash - p.unwrap - p.decrypt - p.fsync - p.dirSync
	row := func(b *strings.Builder, what string, d time.Duration) {
		fmt.Fprintf(b, "| %s | %.2f | %.0f%% |\n", what, d.Seconds(), 100*d.Seconds()/w)
	}
	var b strings.Builder
	b.WriteString("| part of `laptop.Home.Sync` | wall s | share |\n|---|---:|---:|\n")
	row(&b, "download: request, network, TLS decryption (inside `Segment`, less the file writes)", p.download)
	row(&b, "writing received bytes into the vault file (inside `Segment`)", p.write)
	row(&b, "between downloads: fsync, verification, rename, directory fsync, index.json", p.perSegment)
	row(&b, "  · of which SHA-256 of the file (timed alone afterwards)", p.hash)
	row(&b, "  · of which age header: ML-KEM-768 + X25519 unwrap (timed alone)", p.unwrap)
	row(&b, "  · of which age payload: ChaCha20-Poly1305 decryption (timed alone)", p.decrypt)
	row(&b, "  · of which fsync of the segment file (timed alone: the same files written again)", p.fsync)
	row(&b, "  · of which fsync of the directory after the rename (timed alone)", p.dirSync)
	row(&b, "  · rest, by difference: opens, renames, index.json every 16 segments, and the steps above being slower in place than alone", rest)
	row(&b, "after the last call: hashing every segment again to count those held", p.tail)
	row(&b, "acknowledgements (one per 16 segments)", p.ack)
	row(&b, "manifest, clock, listing", p.manifest+p.list)
	fmt.Fprintf(&b, "| **total** (%.1f MB/s; CPU %.2f s) | **%.2f** | |\n", float64(r.rec.bytes)/1e6/w, p.cpu.Seconds(), w)
	return b.String()
}

// deviceTable is where attuned's CPU time went during the profiled sync.
func (r report) deviceTable() string {
	p := r.prof
	if len(p.device) == 0 {
		return fmt.Sprintf("No profile of the device's side: %s.\n", p.perfNote)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The device's side of the same run, sampled with `perf record -e cpu-clock -g -p PID` (attuned used %.2f CPU s; frames nest):\n\n", p.serverCPU.Seconds())
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
		return "(`go` not found: no profile summary)\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CPU profile of that run (`%s`, %.2f s of samples over %.2f s): cumulative time in some frames (they nest: verify includes its hashing and decryption):\n\n",
		filepath.Base(p.path), p.samplesS, p.wall.Seconds())
	b.WriteString("| frame | CPU s | of samples |\n|---|---:|---:|\n")
	for _, l := range p.top {
		fmt.Fprintf(&b, "| %s | %.2f | %.0f%% |\n", l.what, l.cum, 100*l.cum/max(p.samplesS, 1e-9))
	}
	b.WriteString("\n`go tool pprof -top` (flat):\n\n```text\n")
	b.WriteString(p.topText)
	b.WriteString("\n```\n")
	return b.String()
}

// interpretation is the text under the table, written from the numbers.
func (r report) interpretation() string {
	ours, curl, scp := r.mbps(r.get("ours")).med, r.mbps(r.get("curl")).med, r.mbps(r.get("scp")).med
	godl, curlAtt := r.mbps(r.get("godl")).med, r.mbps(r.get("curlattuned")).med
	med := func(key string, f func(sample) time.Duration) float64 {
		return over(r.get(key).samples, func(s sample) float64 { return f(s).Seconds() }).med
	}
	syncAfter := func(s sample) time.Duration { return s.syncAfter }
	cr, sr := r.ratios()
	p := r.prof
	w := p.wall.Seconds()
	transfer := p.download + p.write
	rest := p.perSegment - p.hash - p.unwrap - p.decrypt - p.fsync - p.dirSync
	mb := float64(r.rec.bytes) / 1e6
	var b strings.Builder

	fmt.Fprintf(&b, "`attune sync` moved the %.0f MB recording at %.0f MB/s, curl from nginx at %.0f MB/s and scp at %.0f MB/s: ×%.2f and ×%.2f. ",
		mb, ours, curl, scp, cr, sr)
	fmt.Fprintf(&b, "They do not do the same work. curl and scp only copy: their files are left in the page cache, and writing them out took another %.2f s and %.2f s (the `sync` column). "+
		"`attune sync` checks every segment's SHA-256 against the device's index, decrypts it whole with the case's age identity "+
		"(ML-KEM-768 + X25519 header, ChaCha20-Poly1305 payload), fsyncs it and its directory, and only then acknowledges it, 16 at a time, so that the device may delete it.\n\n",
		med("curl", syncAfter), med("scp", syncAfter))

	fmt.Fprintf(&b, "**Transport.** attune's Go link client alone, writing the same files from attuned without verifying, fsyncing or acknowledging, gets %.0f MB/s (×%.2f curl ← nginx); "+
		"curl against attuned's link API gets %.0f MB/s. "+
		"With client and server on the same %d CPUs, throughput follows CPU time per byte: client and server together spend %.2f CPU s on the recording through attune's link, %.2f through curl ← nginx (attuned %.2f s, nginx %.2f s). ",
		godl, godl/curl, curlAtt, r.machine.nproc,
		med("godl", func(s sample) time.Duration { return s.clientCPU + s.serverCPU }), med("curl", func(s sample) time.Duration { return s.clientCPU + s.serverCPU }),
		med("godl", func(s sample) time.Duration { return s.serverCPU }), med("curl", func(s sample) time.Duration { return s.serverCPU }))
	if idx := r.deviceFrame("attune.dev/attune/storage.(*Store).Index"); idx > 0 {
		fmt.Fprintf(&b, "On the device, %.2f CPU s of attuned's %.2f in the profiled run (%.0f%%) went to reading and JSON-parsing the recording's whole `index.json` again for every segment request "+
			"(`link.(*Server).recording` → `storage.(*Store).Index`): %d requests × %.0f KB. That cost grows with the square of the recording's length and runs on the device's CPU, "+
			"many times slower on a Pi than here; serving from an index kept in memory (updated on acknowledgement) removes it. "+
			"TLS itself is not the problem: AES-GCM took %.2f s, and both servers already write full 16 KB records, the most TLS allows (checked with strace when this benchmark was written), so larger records are not available. ",
			idx, p.serverCPU.Seconds(), 100*idx/max(p.serverCPU.Seconds(), 1e-9), len(r.rec.index.Segments), float64(indexSize(r.rec))/1e3,
			r.deviceFrame("crypto/internal/fips140/aes/gcm.seal"))
	}
	b.WriteString("\n\n")

	fmt.Fprintf(&b, "**Verification and durability.** In the profiled run (%.2f s, %.0f MB/s), downloading and writing took %.2f s (%.0f%%) and the work between downloads %.2f s (%.0f%%): "+
		"timed alone, SHA-256 %.2f s, age header unwrap %.2f s, age payload decryption %.2f s, fsync of each file %.2f s and of the directory after each rename %.2f s, leaving %.2f s for the rest. "+
		"Acknowledgements, each a round trip in which the device deletes 16 files and rewrites its index, took %.2f s, and a last pass hashing every segment again to count the ones held %.2f s. "+
		"Everything runs one step after another on one goroutine, so these times add up: the link idles while a segment is verified and fsynced, and the CPU idles while the next one downloads.\n\n",
		w, mb/w, transfer.Seconds(), 100*transfer.Seconds()/w, p.perSegment.Seconds(), 100*p.perSegment.Seconds()/w,
		p.hash.Seconds(), p.unwrap.Seconds(), p.decrypt.Seconds(), p.fsync.Seconds(), p.dirSync.Seconds(), rest.Seconds(), p.ack.Seconds(), p.tail.Seconds())

	if cr >= goalCurlRatio {
		fmt.Fprintf(&b, "It meets the %.1f× goal against curl. ", goalCurlRatio)
	} else {
		overlapped := max(transfer, p.perSegment) + p.list + p.manifest
		fmt.Fprintf(&b, "**Why it misses %.1f× curl (%.0f MB/s), and what would fix it:** "+
			"(1) pipeline: verify and fsync segment n, and acknowledge earlier ones, while segment n+1 downloads (acknowledging each segment only once it is verified and durable, as now); "+
			"with a spare core the run is then bounded by the longer of the two streams, here about %.2f s, %.0f MB/s. "+
			"(2) Verify the bytes as they arrive (hash and decrypt through a tee while writing) instead of reading every file back twice. "+
			"(3) Drop the final re-hash of every segment: a segment renamed into place has been verified (%.2f s). "+
			"(4) fsync once per acknowledgement batch (16 files, then the directory once) instead of each file and the directory every time (%.2f s of directory fsyncs alone). "+
			"(5) On the device, keep the index in memory instead of parsing it per request. ",
			goalCurlRatio, goalCurlRatio*curl, overlapped.Seconds(), mb/overlapped.Seconds(), p.tail.Seconds(), p.dirSync.Seconds())
		if godl < goalCurlRatio*curl {
			fmt.Fprintf(&b, "Even all of (1)–(4) cannot reach the goal alone: the transport by itself is ×%.2f curl, so (5) or another change on the serving side is needed as well. ", godl/curl)
		}
	}
	if sr > goalSCPRatio {
		b.WriteString("It beats scp, which does none of the checking. ")
	} else {
		fmt.Fprintf(&b, "For the same reasons it does not beat scp either (×%.2f), which does no checking. ", sr)
	}
	fmt.Fprintf(&b, "All of this is over loopback with client, server and the disk's writeback sharing %d CPUs; on the real USB or Wi-Fi link, slower than any figure here, the link sets the pace as long as the laptop keeps up.\n",
		r.machine.nproc)
	return b.String()
}

// indexSize is the size of the recording's index.json on the device.
func indexSize(rec *recording) int64 {
	fi, err := os.Stat(filepath.Join(rec.pristine, "index.json"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// markdown is the whole section, markers included.
func (r report) markdown() string {
	var b strings.Builder
	b.WriteString(startMarker + "\n")
	b.WriteString("## Sync: `attune sync` against curl from nginx and scp\n\n")
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
		"the kernel's threads (writeback, journal, softirq) and every other process from `/proc` and `/proc/stat`; each run waits for an idle machine first. "+
		"`sync` after is a `sync(2)` right after each run, untimed in MB/s.\n\n",
		r.in.seconds, inWidth, inHeight, inFPS, inQuality, ix.RecipientKind, len(ix.Segments), float64(r.rec.bytes)/1e6,
		plural(r.rounds, "round"), r.rec.bytes)
	b.WriteString(r.table())
	if n := r.reruns(); n > 0 {
		fmt.Fprintf(&b, "\n%s disturbed by other processes on the machine (more than a tenth of a CPU) were discarded and run again.\n", plural(n, "run"))
	}
	b.WriteString("\n")
	b.WriteString(r.interpretation())
	b.WriteString("\n### Where `attune sync`'s time goes\n\n")
	b.WriteString("One more sync, untimed above, run in the benchmark's own process: the same `laptop.Home.Sync` over `link.Client` that `attune sync` runs, " +
		"with the device client wrapped to time each call, then the verification steps timed alone over the vault's files.\n\n")
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
	m := machine{cpu: cpuModel(), nproc: runtime.NumCPU(), load: load, fs: filesystem(dir), goBuilt: "unknown"}
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

// filesystem describes the mount holding dir, from /proc/self/mounts.
func filesystem(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "unknown"
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	best, desc := "", "unknown"
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, fmt.Sprintf("%s (%s) at %s", f[2], f[3], mp)
		}
	}
	return desc
}

// cpuModel is the first "model name" (x86) or "Model"/"Hardware" (ARM)
// line of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	fallback := "unknown"
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			return v
		case "Model", "Hardware":
			if fallback == "unknown" {
				fallback = v
			}
		}
	}
	return fallback
}

// updateDoc creates path or replaces its benchsync section, keeping the rest.
func updateDoc(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc, err := replaceSection(string(old), section)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// replaceSection puts section (markers included) in place of the one in
// doc, or appends it; an empty doc gets a title.
func replaceSection(doc, section string) (string, error) {
	start, end := strings.Index(doc, startMarker), strings.Index(doc, endMarker)
	switch {
	case start >= 0 && end > start:
		rest := strings.TrimPrefix(doc[end+len(endMarker):], "\n")
		return doc[:start] + section + rest, nil
	case start >= 0 || end >= 0:
		return "", fmt.Errorf("unmatched %s / %s markers; fix them by hand", startMarker, endMarker)
	case strings.TrimSpace(doc) == "":
		return "# Benchmarks\n\n" + section, nil
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + section, nil
}
