package board

import (
	"fmt"
	"math"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ina219"

	"attune.dev/attune/board/hw"
)

// INA219 is a Battery read from an INA219 current/voltage monitor in series
// with the battery (battery + to VIN+, load to VIN-).
type INA219 struct {
	mu          sync.Mutex
	dev         *ina219.Dev
	where       string // "0x40 on I2C bus 1", for errors
	empty, full float64
}

var _ hw.Battery = (*INA219)(nil)

// NewINA219 calibrates the INA219 at spec.Addr on bus for spec's shunt and
// maximum current; the percentage is linear between spec's empty and full
// volts.
func NewINA219(bus i2c.Bus, spec BatterySpec) (*INA219, error) {
	where := fmt.Sprintf("0x%02X on %s", spec.Addr, bus)
	if spec.ShuntOhms <= 0 || spec.MaxAmps <= 0 || spec.EmptyVolts <= 0 || spec.FullVolts <= spec.EmptyVolts {
		return nil, fmt.Errorf("open ina219 %s: need shunt_ohms > 0, max_amps > 0 and 0 < empty_volts < full_volts; load the spec through LoadProfile to get defaults", where)
	}
	dev, err := ina219.New(bus, &ina219.Opts{
		Address:       spec.Addr,
		SenseResistor: physic.ElectricResistance(math.Round(spec.ShuntOhms * float64(physic.Ohm))),
		MaxCurrent:    physic.ElectricCurrent(math.Round(spec.MaxAmps * float64(physic.Ampere))),
	})
	if err != nil {
		return nil, fmt.Errorf("open ina219 %s: %w", where, err)
	}
	return &INA219{dev: dev, where: where, empty: spec.EmptyVolts, full: spec.FullVolts}, nil
}

// Read measures the bus voltage and the current through the shunt.
func (b *INA219) Read() (hw.BatteryReading, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pm, err := b.dev.Sense()
	if err != nil {
		return hw.BatteryReading{}, fmt.Errorf("read battery (ina219 %s): %w; check its wiring", b.where, err)
	}
	v := float64(pm.Voltage) / float64(physic.Volt)
	return hw.BatteryReading{
		Volts:   v,
		Amps:    float64(pm.Current) / float64(physic.Ampere),
		Percent: BatteryPercent(v, b.empty, b.full),
	}, nil
}

// BatteryPercent is the charge estimated linearly from volts between empty
// (0 %) and full (100 %), rounded and clamped to 0–100.
func BatteryPercent(volts, empty, full float64) int {
	if full <= empty || math.IsNaN(volts) {
		return 0
	}
	p := math.Round((volts - empty) / (full - empty) * 100)
	return int(max(0, min(100, p)))
}
