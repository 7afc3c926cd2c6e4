package boardtest_test

import (
	"testing"

	"attune.dev/attune/board/boardtest"
	"periph.io/x/conn/v3/gpio"
)

func TestRecordingPin(t *testing.T) {
	p := boardtest.NewRecordingPin("X")
	var _ gpio.PinIO = p
	_ = p.Out(gpio.Low)
	_ = p.In(gpio.PullUp, gpio.NoEdge)
	_ = p.Out(gpio.High)
	ev := p.Trace().Events()
	want := []boardtest.Event{{"X", boardtest.OpOut, gpio.Low}, {"X", boardtest.OpIn, gpio.High}, {"X", boardtest.OpOut, gpio.High}}
	if len(ev) != len(want) {
		t.Fatalf("events = %v", ev)
	}
	for i := range ev {
		if ev[i] != want[i] {
			t.Errorf("event %d = %v, want %v", i, ev[i], want[i])
		}
	}
	if p.Read() != gpio.High || p.WaitForEdge(0) || p.PWM(0, 0) == nil {
		t.Error("Read, WaitForEdge or PWM")
	}
}
