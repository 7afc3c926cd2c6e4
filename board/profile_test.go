package board

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestBuiltinProfiles(t *testing.T) {
	if got := ProfileNames(); !reflect.DeepEqual(got, []string{"pi-ref", "sim"}) {
		t.Errorf("ProfileNames() = %v", got)
	}
	p, err := LoadProfile("pi-ref")
	if err != nil {
		t.Fatal(err)
	}
	want := &Profile{
		Name:        "pi-ref",
		Description: p.Description,
		Buttons: map[string]ButtonSpec{
			"rec":  {Pin: "GPIO17", ActiveLow: true},
			"mark": {Pin: "GPIO27", ActiveLow: true},
			"pair": {Pin: "GPIO22", ActiveLow: true},
		},
		LED:     LEDSpec{Type: "rgb", Red: "GPIO5", Green: "GPIO6", Blue: "GPIO13"},
		Display: DisplaySpec{Type: "tm1637", CLK: "GPIO23", DIO: "GPIO24", Brightness: 4},
		Battery: &BatterySpec{Type: "ina219", I2C: "1", Addr: 0x40, ShuntOhms: 0.1, MaxAmps: 3.2, EmptyVolts: 3.3, FullVolts: 4.1},
		Source:  "pi-ref (built-in)",
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("pi-ref = %+v\nwant %+v", p, want)
	}
	if p.Simulated() {
		t.Error("pi-ref is simulated")
	}

	s, err := LoadProfile("sim")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Simulated() || s.Name != "sim" || s.Battery == nil || s.Display.Type != "sim" || s.LED.Type != "sim" {
		t.Errorf("sim = %+v", s)
	}
	for _, name := range ButtonNames {
		if b := s.Buttons[name]; b.Type != "sim" || b.Pin != "" || !b.ActiveLow {
			t.Errorf("sim button %s = %+v", name, b)
		}
	}
}

func TestLoadProfileUnknown(t *testing.T) {
	_, err := LoadProfile("pi-zero")
	if err == nil || !strings.Contains(err.Error(), "load profile pi-zero: no built-in profile or file by that name; use one of pi-ref, sim") {
		t.Errorf("err = %v", err)
	}
	if _, err := BuiltinProfile("nope"); err == nil {
		t.Error("BuiltinProfile(nope) succeeded")
	}
}

// TestUserProfileRoundTrip loads a user's file edited from pi-ref, writes it
// back with WriteTOML and loads that again.
func TestUserProfileRoundTrip(t *testing.T) {
	text, err := BuiltinProfile("pi-ref")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.NewReplacer(
		`name = "pi-ref"`, `name = "bench"`,
		`pin = "GPIO17"`, `pin = "GPIO16"`,
		`type = "rgb"`, `type = "discrete"`,
		"active_low = false", "active_low = true",
		"addr = 0x40", "addr = 0x41",
		"brightness = 4", "brightness = 7",
	).Replace(string(text))
	dir := t.TempDir()
	path := filepath.Join(dir, "bench.toml")
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "bench" || p.Buttons["rec"].Pin != "GPIO16" || p.LED.Type != "discrete" || !p.LED.ActiveLow ||
		p.Battery.Addr != 0x41 || p.Display.Brightness != 7 || p.Source != path {
		t.Errorf("loaded %+v", p)
	}

	var buf bytes.Buffer
	if err := p.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	path2 := filepath.Join(dir, "again.toml")
	if err := os.WriteFile(path2, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	q, err := LoadProfile(path2)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	q.Source = p.Source
	if !reflect.DeepEqual(p, q) {
		t.Errorf("round trip changed the profile:\n%+v\n%+v\n%s", p, q, buf.Bytes())
	}

	// The sim profile too, and a profile without a battery or name.
	for _, name := range []string{"sim"} {
		s, _ := LoadProfile(name)
		buf.Reset()
		if err := s.WriteTOML(&buf); err != nil {
			t.Fatal(err)
		}
		s2, err := ParseProfile(buf.Bytes(), s.Source)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Errorf("%s round trip: %v\n%+v\n%+v", name, err, s, s2)
		}
	}
}

func TestProfileDefaults(t *testing.T) {
	p, err := ParseProfile([]byte(`
buttons.rec.pin = "GPIO17"
buttons.mark = { pin = "GPIO27" }
[buttons.pair]
pin = "GPIO22"
active_low = false
[led]
type = "discrete"
red = "GPIO5"
green = "GPIO6"
blue = "GPIO13"
[display]
type = "ht16k33"
[battery]
type = "ina219"
`), "/home/pi/my-board.toml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "my-board" {
		t.Errorf("name = %q, want the file's name", p.Name)
	}
	if !p.Buttons["rec"].ActiveLow || !p.Buttons["mark"].ActiveLow || p.Buttons["pair"].ActiveLow {
		t.Errorf("buttons = %+v", p.Buttons)
	}
	if p.LED.ActiveLow {
		t.Error("led active low by default")
	}
	if d := p.Display; d.I2C != "1" || d.Addr != 0x70 || d.Brightness != 8 {
		t.Errorf("display = %+v", d)
	}
	if b := p.Battery; *b != (BatterySpec{Type: "ina219", I2C: "1", Addr: 0x40, ShuntOhms: 0.1, MaxAmps: 3.2, EmptyVolts: 3.3, FullVolts: 4.1}) {
		t.Errorf("battery = %+v", b)
	}
}

// validProfile is edited by the error cases below; it loads as is.
const validProfile = `name = "test"

[buttons.rec]
pin = "GPIO17"

[buttons.mark]
pin = "GPIO27"

[buttons.pair]
pin = "GPIO22"

[led]
type = "rgb"
red = "GPIO5"
green = "GPIO6"
blue = "GPIO13"

[display]
type = "tm1637"
clk = "GPIO23"
dio = "GPIO24"
brightness = 4

[battery]
type = "ina219"
i2c = "1"
addr = 0x40
`

func TestProfileErrors(t *testing.T) {
	if _, err := ParseProfile([]byte(validProfile), "test.toml"); err != nil {
		t.Fatalf("the valid profile: %v", err)
	}
	cases := []struct {
		name    string
		from    string // replaced in validProfile…
		to      string // …by this
		at      string // the error's line is the first line containing this in the edited text (the last if it starts with "last:")
		problem string
		fix     string
	}{
		{"unknown top-level key", `name = "test"`, "name = \"test\"\ndispaly = 1", "dispaly", `unknown key "dispaly"`, `did you mean "display"`},
		{"unknown key in table", `blue = "GPIO13"`, "blue = \"GPIO13\"\ncolour = \"red\"", "colour", `unknown key "led.colour"`, "the keys of [led] are type, red, green, blue, active_low"},
		{"unknown key in button", "[buttons.mark]\n", "[buttons.mark]\npul = \"up\"\n", "pul =", `unknown key "buttons.mark.pul"`, "the keys of [buttons.mark] are pin"},
		{"missing button", "[buttons.pair]\npin = \"GPIO22\"\n", "", "[buttons.rec]", "no pair button", `add [buttons.pair] with pin = "GPIOn"`},
		{"unknown button", "[buttons.pair]", "[buttons.stop]\npin = \"GPIO26\"\n[buttons.pair]", "[buttons.stop]", `unknown button "stop"`, "the buttons are rec, mark and pair"},
		{"no buttons", "[buttons.rec]\npin = \"GPIO17\"\n\n[buttons.mark]\npin = \"GPIO27\"\n\n[buttons.pair]\npin = \"GPIO22\"\n", "", "addr = 0x40", "no buttons", "add [buttons.rec]"},
		{"duplicate button pin", `pin = "GPIO27"`, `pin = "GPIO17"`, `last:pin = "GPIO17"`, "GPIO17 is used twice: by button rec (line 4) and by button mark", "give each its own GPIO"},
		{"pin shared by led and display", `dio = "GPIO24"`, `dio = "GPIO6"`, `dio = "GPIO6"`, "GPIO6 is used twice: by led green (line 15) and by display dio", "give each its own GPIO"},
		{"pin on the battery's I2C bus", `pin = "GPIO22"`, `pin = "GPIO3"`, `i2c = "1"`, "GPIO3 is used twice: by button pair (line 10) and by I2C bus 1 SCL of the battery", "give each its own GPIO"},
		{"pin number without GPIO", `pin = "GPIO22"`, `pin = "22"`, `pin = "22"`, `pin "22" for button pair is not a GPIO name`, `write "GPIO22" (the BCM GPIO number, not the physical header pin number)`},
		{"pin in lower case", `red = "GPIO5"`, `red = "gpio5"`, `red =`, `pin "gpio5" for led red is not a GPIO name`, `write "GPIO5"`},
		{"pin off the header", `clk = "GPIO23"`, `clk = "GPIO28"`, `clk =`, "pin GPIO28 for display clk is not on the 40-pin header", "use GPIO0 to GPIO27"},
		{"pin missing", `green = "GPIO6"`, ``, `[led]`, "led green has no pin", `add green = "GPIOn"`},
		{"unknown led type", `type = "rgb"`, `type = "rbg"`, `type = "rbg"`, `unknown led type "rbg"`, `use type = "rgb", "discrete" or "sim"`},
		{"unknown display type", `type = "tm1637"`, `type = "lcd"`, `type = "lcd"`, `unknown display type "lcd"`, `use type = "tm1637", "max7219", "ht16k33", "none" or "sim"`},
		{"brightness out of range", "brightness = 4", "brightness = 9", "brightness", "brightness 9 is out of range for tm1637", "use 0 (dimmest) to 7 (brightest)"},
		{"key for another display type", "brightness = 4", "brightness = 4\nspi = \"/dev/spidev0.0\"", "spi =", `key spi does not apply to display type "tm1637"`, "remove it"},
		{"bad ina219 address", "addr = 0x40", "addr = 0x20", "addr = 0x20", "i2c address 0x20 is not an INA219 address", "use 0x40 to 0x4F, as set by the A0/A1 solder jumpers"},
		{"bad ht16k33 address", "type = \"tm1637\"\nclk = \"GPIO23\"\ndio = \"GPIO24\"\nbrightness = 4", "type = \"ht16k33\"\ni2c = \"1\"\naddr = 0x40", "addr = 0x40", "i2c address 0x40 is not an HT16K33 address", "use 0x70 to 0x77"},
		{"bad i2c bus", `i2c = "1"`, `i2c = "/dev/i2c-1"`, `i2c =`, `i2c "/dev/i2c-1" is not an I2C bus number`, `"1" for the header's I2C`},
		{"bad battery volts", "addr = 0x40", "addr = 0x40\nempty_volts = 4.2\nfull_volts = 3.0", "full_volts", "empty_volts 4.2 and full_volts 3 are not an increasing range", "set 0 < empty_volts < full_volts"},
		{"unknown battery type", `type = "ina219"`, `type = "max17048"`, `type = "max17048"`, `unknown battery type "max17048"`, "remove [battery] if the board has no fuel gauge"},
		{"bad spi device", "type = \"tm1637\"\nclk = \"GPIO23\"\ndio = \"GPIO24\"", "type = \"max7219\"\nspi = \"spi0\"", `spi = "spi0"`, `spi "spi0" is not a SPI device path`, `"/dev/spidev0.0"`},
		{"pin on the display's SPI bus", "blue = \"GPIO13\"\n\n[display]\ntype = \"tm1637\"\nclk = \"GPIO23\"\ndio = \"GPIO24\"", "blue = \"GPIO10\"\n\n[display]\ntype = \"max7219\"\nspi = \"/dev/spidev0.0\"", `spi =`, "GPIO10 is used twice: by led blue (line 16) and by SPI0 MOSI of the display", "give each its own GPIO"},
		{"missing led", "[led]\ntype = \"rgb\"\nred = \"GPIO5\"\ngreen = \"GPIO6\"\nblue = \"GPIO13\"\n", "", "addr = 0x40", "no [led] table", `add [led] with type = "rgb"`},
		{"mixed sim and hardware", `type = "tm1637"
clk = "GPIO23"
dio = "GPIO24"
brightness = 4`, `type = "sim"`, `type = "sim"`, "[display] is simulated but other parts are hardware", `a profile is either all "sim" or all hardware`},
		{"sim button with pin", `pin = "GPIO27"`, "type = \"sim\"\npin = \"GPIO27\"", `pin = "GPIO27"`, `button mark is simulated but has pin "GPIO27"`, "remove pin"},
		{"syntax error", `[display]`, `[display`, `[display`, "", "fix the TOML"},
		{"wrong value type", `pin = "GPIO22"`, `pin = 22`, `pin = 22`, `key "buttons.pair.pin"`, "pins and buses are quoted strings"},
		{"duplicate key", `dio = "GPIO24"`, "dio = \"GPIO24\"\nclk = \"GPIO25\"", "clk = \"GPIO25\"", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(validProfile, tc.from) {
				t.Fatalf("%q is not in the valid profile", tc.from)
			}
			text := strings.Replace(validProfile, tc.from, tc.to, 1)
			wantLine := 0
			at, last := strings.CutPrefix(tc.at, "last:")
			for i, l := range strings.Split(text, "\n") {
				if strings.Contains(l, at) {
					wantLine = i + 1
					if !last {
						break
					}
				}
			}
			if wantLine == 0 {
				t.Fatalf("%q not in the edited text", tc.at)
			}
			_, err := ParseProfile([]byte(text), "test.toml")
			if err == nil {
				t.Fatalf("loaded without error:\n%s", text)
			}
			var all []*ProfileError
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					var pe *ProfileError
					if !errors.As(e, &pe) {
						t.Fatalf("%T is not a *ProfileError: %v", e, e)
					}
					all = append(all, pe)
				}
			} else {
				var pe *ProfileError
				if !errors.As(err, &pe) {
					t.Fatalf("%T is not a *ProfileError: %v", err, err)
				}
				all = append(all, pe)
			}
			for _, pe := range all {
				if pe.Line == 0 || pe.Fix == "" || !strings.HasPrefix(pe.Error(), "load profile test.toml: line ") {
					t.Errorf("error without line or fix: %v", pe)
				}
			}
			var found bool
			for _, pe := range all {
				if pe.Line == wantLine && strings.Contains(pe.Problem, tc.problem) && strings.Contains(pe.Fix, tc.fix) {
					found = true
				}
			}
			if !found {
				t.Errorf("want line %d, %q, fix %q; got:\n%v", wantLine, tc.problem, tc.fix, err)
			}
		})
	}
}

func TestProfileErrorReportsAll(t *testing.T) {
	text := strings.NewReplacer(`pin = "GPIO22"`, `pin = "GPIO99"`, `type = "rgb"`, `type = "rbg"`).Replace(validProfile)
	_, err := ParseProfile([]byte(text), "x.toml")
	msg := err.Error()
	if !strings.Contains(msg, "line 10: pin GPIO99") || !strings.Contains(msg, `line 13: unknown led type "rbg"`) {
		t.Errorf("err = %v", err)
	}
	if i, j := strings.Index(msg, "line 10"), strings.Index(msg, "line 13"); i > j {
		t.Errorf("errors not in line order: %v", err)
	}
}

func TestLocator(t *testing.T) {
	l := newLocator([]byte("# c\na = 1\n[b.c]\nd = { e = 1 }\n\"q.k\" = 2\nx.y.z = 3\n"))
	for _, tc := range []struct {
		key  []string
		line int
	}{
		{[]string{"a"}, 2},
		{[]string{"b"}, 3},
		{[]string{"b", "c"}, 3},
		{[]string{"b", "c", "d", "e"}, 4},
		{[]string{"b", "c", "q.k"}, 5},
		{[]string{"b", "c", "x", "y", "z"}, 6},
		{[]string{"nope"}, 0},
	} {
		if got := l.line(tc.key...); got != tc.line {
			t.Errorf("line(%q) = %d, want %d", tc.key, got, tc.line)
		}
	}
}
