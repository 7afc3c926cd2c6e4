package hwtest_test

import (
	"errors"
	"testing"
	"time"

	"attune.dev/attune/board/hw"
	"attune.dev/attune/board/hw/hwtest"
)

func TestFakes(t *testing.T) {
	d := &hwtest.Display{}
	if _, ok := d.Last(); ok {
		t.Error("Last on a fresh display")
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		_ = d.Show([4]byte{1}, false)
		_ = d.Show([4]byte{2}, true)
	}()
	f, ok := d.WaitFor(2*time.Second, func(f hwtest.Frame) bool { return f.Colon })
	if !ok || f.Digits[0] != 2 {
		t.Errorf("WaitFor = %+v, %v", f, ok)
	}
	if h := d.History(); len(h) != 2 || h[0].Digits[0] != 1 {
		t.Errorf("History = %+v", h)
	}
	if _, ok := d.WaitFor(10*time.Millisecond, func(f hwtest.Frame) bool { return !f.Colon }); ok {
		t.Error("WaitFor matched a frame that was not shown last")
	}
	boom := errors.New("boom")
	d.SetErr(boom)
	if err := d.Show([4]byte{}, false); err != boom {
		t.Errorf("Show = %v", err)
	}

	l := &hwtest.LED{}
	go func() { _ = l.Set(true, true, false) }()
	if !l.WaitFor(2*time.Second, hwtest.Amber) {
		t.Error("LED never amber")
	}
	if c, _ := l.Last(); c != hwtest.Amber || len(l.History()) != 1 {
		t.Errorf("Last = %+v", c)
	}

	var bat hw.Battery = hwtest.NewBattery(50)
	r, err := bat.Read()
	if err != nil || r.Percent != 50 || r.Volts < 3.69 || r.Volts > 3.71 {
		t.Errorf("Read = %+v, %v", r, err)
	}
	fb := bat.(*hwtest.Battery)
	fb.SetErr(boom)
	if _, err := bat.Read(); err != boom || fb.Reads() != 2 {
		t.Errorf("Read = %v after %d reads", err, fb.Reads())
	}
}

func TestFakesCountOnlySuccessfulWrites(t *testing.T) {
	boom := errors.New("boom")
	d := &hwtest.Display{}
	d.SetErr(boom)
	if err := d.Show([4]byte{1}, false); err != boom || d.Writes() != 0 {
		t.Errorf("failed Show = %v, %d writes recorded", err, d.Writes())
	}
	d.SetErr(nil)
	go func() { _ = d.Show([4]byte{2}, false) }()
	if !d.WaitWrites(2*time.Second, 1) {
		t.Error("WaitWrites: the Show was not seen")
	}
	if f, ok := d.Last(); !ok || f.Digits[0] != 2 {
		t.Errorf("Last = %+v, %v", f, ok)
	}
	if d.WaitWrites(10*time.Millisecond, 2) {
		t.Error("WaitWrites saw a write that was not made")
	}

	l := &hwtest.LED{}
	l.SetErr(boom)
	if err := l.Set(true, false, false); err != boom || l.Sets() != 0 {
		t.Errorf("failed Set = %v, %d sets recorded", err, l.Sets())
	}
	l.SetErr(nil)
	go func() { _ = l.Set(false, true, false) }()
	if !l.WaitSets(2*time.Second, 1) {
		t.Error("WaitSets: the Set was not seen")
	}
	if c, ok := l.Last(); !ok || c != hwtest.Green {
		t.Errorf("Last = %+v, %v", c, ok)
	}
	if l.WaitSets(10*time.Millisecond, 2) {
		t.Error("WaitSets saw a set that was not made")
	}
}
