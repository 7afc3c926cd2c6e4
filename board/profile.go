package board

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

//go:embed profiles/*.toml
var builtinProfiles embed.FS

// Profile describes a board: which pins the buttons and LED use and which
// display and fuel gauge it has. The TOML schema is documented at the top of
// profiles/pi-ref.toml. LoadProfile fills in defaults, so every field of a
// returned Profile is explicit.
type Profile struct {
	Name        string                `toml:"name"`
	Description string                `toml:"description,omitempty"`
	Buttons     map[string]ButtonSpec `toml:"buttons"` // "rec", "mark" and "pair"
	LED         LEDSpec               `toml:"led"`
	Display     DisplaySpec           `toml:"display"`
	Battery     *BatterySpec          `toml:"battery,omitempty"` // nil: no fuel gauge

	// Source says where the profile came from: "pi-ref (built-in)" or the
	// path of the file.
	Source string `toml:"-"`
}

// ButtonSpec is one button of a profile.
type ButtonSpec struct {
	Type      string `toml:"type,omitempty"` // "" or "gpio" (a header pin), or "sim"
	Pin       string `toml:"pin,omitempty"`  // "GPIO17"
	ActiveLow bool   `toml:"active_low"`     // button to ground with the internal pull-up (default)
}

// LEDSpec is the status light of a profile.
type LEDSpec struct {
	Type      string `toml:"type"` // "rgb", "discrete" or "sim"
	Red       string `toml:"red,omitempty"`
	Green     string `toml:"green,omitempty"`
	Blue      string `toml:"blue,omitempty"`
	ActiveLow bool   `toml:"active_low"` // true for a common-anode RGB LED
}

// DisplaySpec is the 7-segment display of a profile.
type DisplaySpec struct {
	Type       string `toml:"type"`          // "tm1637", "max7219", "ht16k33", "none" or "sim"
	CLK        string `toml:"clk,omitempty"` // tm1637
	DIO        string `toml:"dio,omitempty"` // tm1637
	SPI        string `toml:"spi,omitempty"` // max7219: "/dev/spidev0.0"
	I2C        string `toml:"i2c,omitempty"` // ht16k33: bus number, "1"
	Addr       int    `toml:"addr,omitzero"`
	Brightness int    `toml:"brightness"` // tm1637 0–7, max7219 and ht16k33 0–15
}

// BatterySpec is the fuel gauge of a profile.
type BatterySpec struct {
	Type       string  `toml:"type"`          // "ina219" or "sim"
	I2C        string  `toml:"i2c,omitempty"` // bus number, "1"
	Addr       int     `toml:"addr,omitzero"`
	ShuntOhms  float64 `toml:"shunt_ohms,omitzero"`
	MaxAmps    float64 `toml:"max_amps,omitzero"`
	EmptyVolts float64 `toml:"empty_volts"`
	FullVolts  float64 `toml:"full_volts"`
}

// ButtonNames are the buttons every profile has, in panel order.
var ButtonNames = []string{"rec", "mark", "pair"}

// Simulated reports whether the profile describes the simulated board
// (open it with NewSimFromProfile) rather than hardware (Open).
func (p *Profile) Simulated() bool {
	for _, b := range p.Buttons {
		if b.Type == "sim" {
			return true
		}
	}
	return p.LED.Type == "sim" || p.Display.Type == "sim" || (p.Battery != nil && p.Battery.Type == "sim")
}

// WriteTOML writes p in the profile format; LoadProfile reads it back to an
// equal Profile. Comments of the original file are not kept.
func (p *Profile) WriteTOML(w io.Writer) error {
	if err := toml.NewEncoder(w).Encode(p); err != nil {
		return fmt.Errorf("write profile %s: %w", p.Name, err)
	}
	return nil
}

// ProfileNames lists the built-in profiles.
func ProfileNames() []string {
	entries, _ := fs.ReadDir(builtinProfiles, "profiles")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(names)
	return names
}

// BuiltinProfile returns the text of a built-in profile, comments included:
// a starting point for a user's own file.
func BuiltinProfile(name string) ([]byte, error) {
	data, err := builtinProfiles.ReadFile("profiles/" + name + ".toml")
	if err != nil {
		return nil, fmt.Errorf("read built-in profile %q: no such profile; the built-in profiles are %s", name, strings.Join(ProfileNames(), ", "))
	}
	return data, nil
}

// LoadProfile loads a built-in profile by name ("pi-ref", "sim") or a
// user's profile file by path. A name wins over a file of the same name in
// the working directory; write "./pi-ref" to mean the file.
func LoadProfile(nameOrPath string) (*Profile, error) {
	if !strings.ContainsAny(nameOrPath, `/\`) && !strings.HasSuffix(nameOrPath, ".toml") {
		if data, err := builtinProfiles.ReadFile("profiles/" + nameOrPath + ".toml"); err == nil {
			return ParseProfile(data, nameOrPath+" (built-in)")
		}
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load profile %s: no built-in profile or file by that name; use one of %s or the path of a .toml file", nameOrPath, strings.Join(ProfileNames(), ", "))
		}
		return nil, fmt.Errorf("load profile %s: %w", nameOrPath, err)
	}
	return ParseProfile(data, nameOrPath)
}

// ProfileError is one problem in a profile. LoadProfile returns all the
// problems it finds, joined with errors.Join; errors.As finds the first.
type ProfileError struct {
	Source  string // "pi-ref (built-in)" or the file's path
	Line    int    // 1-based line of the offending key; 0 if unknown
	Problem string
	Fix     string // what to write instead
}

func (e *ProfileError) Error() string {
	var b strings.Builder
	b.WriteString("load profile ")
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// ParseProfile parses and validates a profile; source names it in errors.
func ParseProfile(data []byte, source string) (*Profile, error) {
	v := &validator{source: source, data: data, loc: newLocator(data)}
	var p Profile
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&p)
	if err != nil {
		return nil, v.decodeError(err)
	}
	p.Source = source
	v.md = &md
	v.check(&p)
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
		errs := make([]error, len(v.errs))
		for i, e := range v.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return &p, nil
}

// Key tables, for unknown-key errors.
var (
	topKeys     = []string{"name", "description", "buttons", "led", "display", "battery"}
	buttonKeys  = []string{"pin", "active_low", "type"}
	ledKeys     = []string{"type", "red", "green", "blue", "active_low"}
	displayKeys = []string{"type", "clk", "dio", "spi", "i2c", "addr", "brightness"}
	batteryKeys = []string{"type", "i2c", "addr", "shunt_ohms", "max_amps", "empty_volts", "full_volts"}
)

type validator struct {
	source string
	data   []byte
	md     *toml.MetaData
	loc    *locator
	errs   []*ProfileError
	claims []claim
}

// claim is one use of a GPIO, for the duplicate check.
type claim struct {
	gpio  int
	what  string // "button rec", "I2C bus 1 (SDA) of the battery"
	line  int
	owner string // uses by the same owner (a shared bus) don't clash
}

func (v *validator) add(line int, fix, format string, args ...any) {
	v.errs = append(v.errs, &ProfileError{Source: v.source, Line: line, Problem: fmt.Sprintf(format, args...), Fix: fix})
}

// line finds the line of key, or of its nearest defined ancestor, or the
// end of the file when nothing of it is there (where it should be added).
func (v *validator) line(key ...string) int {
	for n := len(key); n > 0; n-- {
		if l := v.loc.line(key[:n]...); l > 0 {
			return l
		}
	}
	return v.loc.end()
}

func (v *validator) defined(key ...string) bool { return v.md.IsDefined(key...) }

var tomlErrRE = regexp.MustCompile(`^toml: (?:line (\d+) )?(?:\(last key "([^"]*)"\))?:? ?(.*)$`)

func (v *validator) decodeError(err error) error {
	pe := &ProfileError{Source: v.source}
	var perr toml.ParseError
	if errors.As(err, &perr) {
		pe.Line = perr.Position.Line
		// toml counts an error found at a line's end on the next line;
		// the byte offset is exact.
		if st := perr.Position.Start; st > 0 && st < len(v.data) {
			pe.Line = 1 + bytes.Count(v.data[:st], []byte("\n"))
		}
		pe.Problem = perr.Message
		if pe.Problem == "" {
			pe.Problem = perr.Error()
			if m := tomlErrRE.FindStringSubmatch(pe.Problem); m != nil {
				pe.Problem = m[3]
			}
		}
		pe.Problem = tidy(pe.Problem)
		pe.Fix = "fix the TOML syntax (see the schema at the top of the built-in pi-ref profile)"
		if strings.Contains(pe.Problem, "already been defined") {
			pe.Fix = "remove the duplicate, or merge the two"
		}
		return pe
	}
	// Type mismatches come as plain errors: "toml: line 5 (last key "x"): …".
	pe.Problem = err.Error()
	if m := tomlErrRE.FindStringSubmatch(err.Error()); m != nil {
		pe.Line, _ = strconv.Atoi(m[1])
		pe.Problem = m[3]
		if m[2] != "" {
			pe.Problem = fmt.Sprintf("key %q: %s", m[2], m[3])
			if pe.Line == 0 {
				pe.Line = v.loc.line(strings.Split(m[2], ".")...)
			}
		}
	}
	pe.Problem = tidy(pe.Problem)
	pe.Fix = `write the value as the schema says: pins and buses are quoted strings ("GPIO17", "1"), numbers and true/false are bare`
	return pe
}

// tidy makes a toml message fit our errors: lowercase start, no final
// period.
func tidy(msg string) string {
	msg = strings.TrimSuffix(strings.TrimSpace(msg), ".")
	if len(msg) > 1 && msg[0] >= 'A' && msg[0] <= 'Z' && !(msg[1] >= 'A' && msg[1] <= 'Z') {
		msg = strings.ToLower(msg[:1]) + msg[1:]
	}
	return msg
}

func (v *validator) check(p *Profile) {
	v.unknownKeys()

	if !v.defined("name") || p.Name == "" {
		base := filepath.Base(v.source)
		p.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}

	// Buttons.
	if len(p.Buttons) == 0 {
		v.add(v.line("buttons"), `add [buttons.rec], [buttons.mark] and [buttons.pair], each with pin = "GPIOn"`, "no buttons")
	} else {
		var unknown []string
		for name := range p.Buttons {
			if !contains(ButtonNames, name) {
				unknown = append(unknown, name)
			}
		}
		sort.Strings(unknown)
		for _, name := range unknown {
			v.add(v.line("buttons", name), "the buttons are rec, mark and pair"+didYouMean(name, ButtonNames), "unknown button %q", name)
		}
		for _, name := range ButtonNames {
			b, ok := p.Buttons[name]
			if !ok {
				v.add(v.line("buttons"), fmt.Sprintf(`add [buttons.%s] with pin = "GPIOn"`, name), "no %s button", name)
				continue
			}
			if !v.defined("buttons", name, "active_low") {
				b.ActiveLow = true
			}
			switch b.Type {
			case "", "gpio":
				v.pin(b.Pin, "button "+name, "buttons", name, "pin")
			case "sim":
				if b.Pin != "" {
					v.add(v.line("buttons", name, "pin"), `remove pin, or remove type = "sim" to use the pin`, "button %s is simulated but has pin %q", name, b.Pin)
				}
			default:
				v.add(v.line("buttons", name, "type"), `leave type out for a header pin, or write type = "sim"`, "unknown button type %q", b.Type)
			}
			p.Buttons[name] = b
		}
	}

	// LED.
	if !v.defined("led") {
		v.add(v.line("led"), `add [led] with type = "rgb" and red, green and blue pins`, "no [led] table")
	} else {
		switch p.LED.Type {
		case "rgb", "discrete":
			v.pin(p.LED.Red, "led red", "led", "red")
			v.pin(p.LED.Green, "led green", "led", "green")
			v.pin(p.LED.Blue, "led blue", "led", "blue")
		case "sim":
			v.notFor("led", "sim", "red", "green", "blue")
		default:
			v.add(v.line("led", "type"), `use type = "rgb", "discrete" or "sim"`, "unknown led type %q", p.LED.Type)
		}
	}

	// Display.
	d := &p.Display
	if !v.defined("display") {
		v.add(v.line("display"), `add [display] with type = "tm1637", "max7219", "ht16k33" or "none"`, "no [display] table")
	} else {
		switch d.Type {
		case "tm1637":
			v.notFor("display", d.Type, "spi", "i2c", "addr")
			v.pin(d.CLK, "display clk", "display", "clk")
			v.pin(d.DIO, "display dio", "display", "dio")
			v.brightness(d, 4, 7)
		case "max7219":
			v.notFor("display", d.Type, "clk", "dio", "i2c", "addr")
			if !v.defined("display", "spi") {
				d.SPI = "/dev/spidev0.0"
			}
			v.spi(d.SPI, "display", "spi")
			v.brightness(d, 8, 15)
		case "ht16k33":
			v.notFor("display", d.Type, "clk", "dio", "spi")
			if !v.defined("display", "i2c") {
				d.I2C = "1"
			}
			if !v.defined("display", "addr") {
				d.Addr = 0x70
			}
			v.i2c(d.I2C, "the display", "display", "i2c")
			v.addr(d.Addr, 0x70, 0x77, "HT16K33", "A0–A2 solder jumpers", "display")
			v.brightness(d, 8, 15)
		case "none", "sim":
			v.notFor("display", d.Type, "clk", "dio", "spi", "i2c", "addr")
		default:
			v.add(v.line("display", "type"), `use type = "tm1637", "max7219", "ht16k33", "none" or "sim"`, "unknown display type %q", d.Type)
		}
	}

	// Battery.
	if bt := p.Battery; bt != nil {
		switch bt.Type {
		case "ina219":
			if !v.defined("battery", "i2c") {
				bt.I2C = "1"
			}
			if !v.defined("battery", "addr") {
				bt.Addr = 0x40
			}
			v.i2c(bt.I2C, "the battery", "battery", "i2c")
			v.addr(bt.Addr, 0x40, 0x4F, "INA219", "A0/A1 solder jumpers", "battery")
			if !v.defined("battery", "shunt_ohms") {
				bt.ShuntOhms = 0.1
			}
			if !v.defined("battery", "max_amps") {
				bt.MaxAmps = 3.2
			}
			if bt.ShuntOhms <= 0 {
				v.add(v.line("battery", "shunt_ohms"), "write the shunt resistor's value in ohms, 0.1 on most INA219 boards", "shunt_ohms %v must be more than 0", bt.ShuntOhms)
			}
			if bt.MaxAmps <= 0 {
				v.add(v.line("battery", "max_amps"), "write the largest current to measure in amperes, e.g. 3.2", "max_amps %v must be more than 0", bt.MaxAmps)
			}
		case "sim":
			v.notFor("battery", "sim", "i2c", "addr", "shunt_ohms", "max_amps")
		default:
			v.add(v.line("battery", "type"), `use type = "ina219" or "sim", or remove [battery] if the board has no fuel gauge`, "unknown battery type %q", bt.Type)
		}
		if !v.defined("battery", "empty_volts") {
			bt.EmptyVolts = 3.3
		}
		if !v.defined("battery", "full_volts") {
			bt.FullVolts = 4.1
		}
		if bt.EmptyVolts <= 0 || bt.FullVolts <= bt.EmptyVolts {
			v.add(v.line("battery", "full_volts"), "set 0 < empty_volts < full_volts, e.g. 3.3 and 4.1 for one Li-ion cell", "empty_volts %v and full_volts %v are not an increasing range", bt.EmptyVolts, bt.FullVolts)
		}
	}

	v.mixedSim(p)
	v.duplicates()
}

// mixedSim rejects a profile with both simulated and hardware parts: Open
// could not drive the first, nor NewSimFromProfile the second.
func (v *validator) mixedSim(p *Profile) {
	type part struct {
		sim, hw bool
		key     []string
	}
	var parts []part
	for _, name := range ButtonNames {
		if b, ok := p.Buttons[name]; ok {
			parts = append(parts, part{b.Type == "sim", b.Type != "sim", []string{"buttons", name}})
		}
	}
	if v.defined("led") {
		parts = append(parts, part{p.LED.Type == "sim", p.LED.Type == "rgb" || p.LED.Type == "discrete", []string{"led", "type"}})
	}
	if v.defined("display") {
		d := p.Display.Type
		parts = append(parts, part{d == "sim", d == "tm1637" || d == "max7219" || d == "ht16k33", []string{"display", "type"}})
	}
	if p.Battery != nil {
		parts = append(parts, part{p.Battery.Type == "sim", p.Battery.Type == "ina219", []string{"battery", "type"}})
	}
	var sim, hw bool
	for _, pt := range parts {
		sim = sim || pt.sim
		hw = hw || pt.hw
	}
	if !sim || !hw {
		return
	}
	for _, pt := range parts {
		if pt.sim {
			v.add(v.line(pt.key...), `a profile is either all "sim" or all hardware; start from the built-in sim or pi-ref profile`, "[%s] is simulated but other parts are hardware", pt.key[0]+tail(pt.key))
		}
	}
}

func tail(key []string) string {
	if key[0] == "buttons" {
		return "." + key[1]
	}
	return ""
}

// unknownKeys reports keys the schema doesn't have.
func (v *validator) unknownKeys() {
	reported := map[string]bool{}
	for _, k := range v.md.Undecoded() {
		parentReported := false
		for n := 1; n < len(k); n++ {
			if reported[k[:n].String()] {
				parentReported = true
				break
			}
		}
		if parentReported {
			continue
		}
		reported[k.String()] = true
		var known []string
		var table string
		switch {
		case len(k) == 1:
			known, table = topKeys, "the top level"
		case len(k) == 3 && k[0] == "buttons":
			known, table = buttonKeys, fmt.Sprintf("[buttons.%s]", k[1])
		case len(k) == 2 && k[0] == "led":
			known, table = ledKeys, "[led]"
		case len(k) == 2 && k[0] == "display":
			known, table = displayKeys, "[display]"
		case len(k) == 2 && k[0] == "battery":
			known, table = batteryKeys, "[battery]"
		}
		fix := "remove it"
		if known != nil {
			fix = fmt.Sprintf("the keys of %s are %s%s", table, strings.Join(known, ", "), didYouMean(k[len(k)-1], known))
		}
		v.add(v.loc.line(k...), fix, "unknown key %q", k.String())
	}
}

// notFor reports keys that don't apply to the part's type.
func (v *validator) notFor(table, typ string, keys ...string) {
	for _, k := range keys {
		if v.defined(table, k) {
			v.add(v.line(table, k), "remove it (or change type)", "key %s does not apply to %s type %q", k, table, typ)
		}
	}
}

func (v *validator) brightness(d *DisplaySpec, def, max int) {
	if !v.defined("display", "brightness") {
		d.Brightness = def
		return
	}
	if d.Brightness < 0 || d.Brightness > max {
		v.add(v.line("display", "brightness"), fmt.Sprintf("use 0 (dimmest) to %d (brightest)", max), "brightness %d is out of range for %s", d.Brightness, d.Type)
	}
}

var gpioRE = regexp.MustCompile(`^GPIO(0|[1-9][0-9]?)$`)
var digitsRE = regexp.MustCompile(`([0-9]+)$`)

// pin checks a header pin name and claims it.
func (v *validator) pin(name, what string, key ...string) {
	line := v.line(key...)
	if name == "" {
		v.add(line, fmt.Sprintf(`add %s = "GPIOn", the BCM GPIO it is wired to`, key[len(key)-1]), "%s has no pin", what)
		return
	}
	m := gpioRE.FindStringSubmatch(name)
	if m == nil {
		fix := `write the GPIO as the kernel names it, "GPIO0" to "GPIO27"`
		if d := digitsRE.FindStringSubmatch(name); d != nil {
			if n, err := strconv.Atoi(d[1]); err == nil && n <= 27 {
				fix = fmt.Sprintf(`write "GPIO%d"`, n)
				if d[1] == name {
					fix += " (the BCM GPIO number, not the physical header pin number)"
				}
			}
		}
		v.add(line, fix, "pin %q for %s is not a GPIO name", name, what)
		return
	}
	n, _ := strconv.Atoi(m[1])
	if n > 27 {
		v.add(line, "use GPIO0 to GPIO27, the GPIOs on the 40-pin header", "pin %s for %s is not on the 40-pin header", name, what)
		return
	}
	v.claims = append(v.claims, claim{gpio: n, what: what, line: line, owner: what})
}

// spi checks a SPI device path and claims the bus's pins.
var spiRE = regexp.MustCompile(`^/dev/spidev([0-9]+)\.([0-9]+)$`)

func (v *validator) spi(dev string, key ...string) {
	line := v.line(key...)
	m := spiRE.FindStringSubmatch(dev)
	if m == nil {
		v.add(line, `write the spidev device, e.g. "/dev/spidev0.0" (enable SPI with dtparam=spi=on)`, "spi %q is not a SPI device path", dev)
		return
	}
	bus, cs := m[1], m[2]
	var pins map[int]string
	switch bus + "." + cs {
	case "0.0":
		pins = map[int]string{8: "CE0", 9: "MISO", 10: "MOSI", 11: "SCLK"}
	case "0.1":
		pins = map[int]string{7: "CE1", 9: "MISO", 10: "MOSI", 11: "SCLK"}
	case "1.0":
		pins = map[int]string{18: "CE0", 19: "MISO", 20: "MOSI", 21: "SCLK"}
	case "1.1":
		pins = map[int]string{17: "CE1", 19: "MISO", 20: "MOSI", 21: "SCLK"}
	case "1.2":
		pins = map[int]string{16: "CE2", 19: "MISO", 20: "MOSI", 21: "SCLK"}
	}
	for _, g := range sortedKeys(pins) {
		v.claims = append(v.claims, claim{gpio: g, what: fmt.Sprintf("SPI%s %s of the display", bus, pins[g]), line: line, owner: "spi" + bus})
	}
}

// i2c checks an I2C bus number and claims the bus's pins.
func (v *validator) i2c(bus, what string, key ...string) {
	line := v.line(key...)
	n, err := strconv.Atoi(bus)
	if err != nil || n < 0 {
		v.add(line, `write the bus number as a string, "1" for the header's I2C (GPIO2/GPIO3)`, "i2c %q is not an I2C bus number", bus)
		return
	}
	pins := map[int]string{}
	switch n {
	case 0:
		pins = map[int]string{0: "SDA", 1: "SCL"}
	case 1:
		pins = map[int]string{2: "SDA", 3: "SCL"}
	}
	for _, g := range sortedKeys(pins) {
		v.claims = append(v.claims, claim{gpio: g, what: fmt.Sprintf("I2C bus %d %s of %s", n, pins[g], what), line: line, owner: "i2c" + bus})
	}
}

func (v *validator) addr(addr, lo, hi int, chip, jumpers, table string) {
	if addr < lo || addr > hi {
		v.add(v.line(table, "addr"), fmt.Sprintf("use 0x%02X to 0x%02X, as set by the %s (0x%02X with none bridged)", lo, hi, jumpers, lo),
			"i2c address 0x%02X is not an %s address", addr, chip)
	}
}

// duplicates reports a GPIO claimed twice, at the later of the two lines.
func (v *validator) duplicates() {
	sort.SliceStable(v.claims, func(i, j int) bool { return v.claims[i].line < v.claims[j].line })
	first := map[int]claim{}
	for _, c := range v.claims {
		f, ok := first[c.gpio]
		if !ok {
			first[c.gpio] = c
			continue
		}
		if f.owner == c.owner && (strings.HasPrefix(c.owner, "i2c") || strings.HasPrefix(c.owner, "spi")) {
			continue // one bus shared by two devices
		}
		v.add(c.line, "give each its own GPIO (buses always use their fixed pins)",
			"GPIO%d is used twice: by %s (line %d) and by %s", c.gpio, f.what, f.line, c.what)
	}
}

func sortedKeys(m map[int]string) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// didYouMean suggests the closest known word, if one is close.
func didYouMean(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(s), k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// locator finds the line where a key is defined. toml v1.4.0 keeps key
// positions private, so it parses growing prefixes of the file with the
// same parser and reports the first prefix in which the key exists: exact
// for dotted keys, quoted keys, inline tables and implicit tables alike.
// It only runs when there is an error to report.
type locator struct {
	lines []string
	mds   []*toml.MetaData // mds[n]: the first n lines, nil if they don't parse
}

func newLocator(data []byte) *locator {
	s := strings.TrimSuffix(string(data), "\n")
	return &locator{lines: strings.Split(s, "\n")}
}

func (l *locator) build() {
	if l.mds != nil {
		return
	}
	l.mds = make([]*toml.MetaData, len(l.lines)+1)
	for n := 1; n <= len(l.lines); n++ {
		var m map[string]any
		md, err := toml.Decode(strings.Join(l.lines[:n], "\n"), &m)
		if err == nil {
			l.mds[n] = &md
		}
	}
}

// line returns the 1-based line defining key, or 0.
func (l *locator) line(key ...string) int {
	if len(key) == 0 {
		return 0
	}
	l.build()
	for n := 1; n < len(l.mds); n++ {
		if md := l.mds[n]; md != nil && md.IsDefined(key...) {
			return n
		}
	}
	return 0
}

// end is the last line, where a missing table would be added.
func (l *locator) end() int { return len(l.lines) }
