module attune.dev/attune

go 1.26

require (
	filippo.io/age v1.3.2
	filippo.io/cpace v0.0.0-20210101143347-24d601e2e469
	github.com/BurntSushi/toml v1.4.0
	github.com/at-wat/ebml-go v0.19.0
	github.com/blackjack/webcam v0.6.1
	github.com/brutella/dnssd v1.2.14
	github.com/chromedp/chromedp v0.14.2
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/jonboulle/clockwork v0.5.0
	github.com/pion/mediadevices v0.9.4
	golang.org/x/crypto v0.55.0
	golang.org/x/image v0.23.0
	golang.org/x/net v0.58.0
	golang.org/x/sys v0.47.0
	golang.org/x/term v0.45.0
	periph.io/x/conn/v3 v3.7.2
	periph.io/x/devices/v3 v3.7.4
	periph.io/x/host/v3 v3.8.5
)

require (
	filippo.io/hpke v0.4.0 // indirect
	github.com/chromedp/cdproto v0.0.0-20250724212937-08a3db8b4327 // indirect
	github.com/chromedp/sysutil v1.1.0 // indirect
	github.com/gen2brain/malgo v0.11.24 // indirect
	github.com/go-json-experiment/json v0.0.0-20250725192818-e39067aee2d2 // indirect
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
	github.com/gobwas/ws v1.4.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/gtank/ristretto255 v0.1.2 // indirect
	github.com/miekg/dns v1.1.61 // indirect
	github.com/pion/logging v0.2.4 // indirect
	github.com/vishvananda/netlink v1.2.1-beta.2 // indirect
	github.com/vishvananda/netns v0.0.0-20200728191858-db3c7e526aae // indirect
	golang.org/x/mod v0.39.0 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/tools v0.49.0 // indirect
)
