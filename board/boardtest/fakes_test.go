package boardtest_test

import (
	"errors"
	"testing"
	"time"

	"attune.dev/attune/board"
	"attune.dev/attune/board/boardtest"
	"attune.dev/attune/board/hw"
	"periph.io/x/conn/v3/gpio"
)

func TestFakes(t *testing.T) {
	d := &boardtest.Display{}
	if _, ok := d.Last(); ok {
		t.Error("Last on a fresh display")
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		_ = d.Show([4]byte{1}, false)
		_ = d.Show([4]byte{2}, true)
	}()
	f, ok := d.WaitFor(2*time.Second, func(f boardtest.Frame) bool { return f.Colon })
	if !ok || f.Digits[0] != 2 {
		t.Errorf("WaitFor = %+v, %v", f, ok)
	}
	if h := d.History(); len(h) != 2 || h[0].Digits[0] != 1 {
		t.Errorf("History = %+v", h)
	}
	if _, ok := d.WaitFor(10*time.Millisecond, func(f boardtest.Frame) bool { return !f.Colon }); ok {
		t.Error("WaitFor matched a frame that was not shown last")
	}
	boom := errors.New("boom")
	d.SetErr(boom)
	if err := d.Show([4]byte{}, false); err != boom {
		t.Errorf("Show = %v", err)
	}

	l := &boardtest.LED{}
	go func() { _ = l.Set(true, true, false) }()
	if !l.WaitFor(2*time.Second, boardtest.Amber) {
		t.Error("LED never amber")
	}
	if c, _ := l.Last(); c != boardtest.Amber || len(l.History()) != 1 {
		t.Errorf("Last = %+v", c)
	}

	var bat hw.Battery = boardtest.NewBattery(50)
	r, err := bat.Read()
	if err != nil || r.Percent != 50 || r.Volts < 3.69 || r.Volts > 3.71 {
		t.Errorf("Read = %+v, %v", r, err)
	}
	fb := bat.(*boardtest.Battery)
	fb.SetErr(boom)
	if _, err := bat.Read(); err != boom || fb.Reads() != 2 {
		t.Errorf("Read = %v after %d reads", err, fb.Reads())
	}
}

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
