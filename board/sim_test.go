package board

import (
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"attune.dev/attune/board/hw"
)

func button(t *testing.T, b *Board, name string) hw.Button {
	t.Helper()
	for _, bt := range b.Buttons {
		if bt.Name == name {
			return bt
		}
	}
	t.Fatalf("no button %s", name)
	return hw.Button{}
}

func TestSimPressEdges(t *testing.T) {
	s := NewSim()
	b := s.Board()
	if len(b.Buttons) != 3 {
		t.Fatalf("buttons = %v", b.Buttons)
	}
	rec := button(t, b, "rec")
	if !rec.ActiveLow || rec.Pressed(rec.Pin.Read()) {
		t.Fatal("rec starts pressed or not active low")
	}
	if rec.Pin.WaitForEdge(10 * time.Millisecond) {
		t.Fatal("edge without a press")
	}

	// A waiter blocked forever sees the press.
	got := make(chan gpio.Level)
	go func() {
		rec.Pin.WaitForEdge(-1)
		got <- rec.Pin.Read()
	}()
	time.Sleep(5 * time.Millisecond)
	if err := s.Press("rec", true); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-got:
		if !rec.Pressed(l) {
			t.Errorf("after the press edge Read = %v", l)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("WaitForEdge(-1) did not see the press")
	}

	// Press and release with nobody waiting: both edges queue, in order.
	if err := s.Press("rec", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Press("rec", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Press("rec", false); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, true, false} {
		if !rec.Pin.WaitForEdge(time.Second) {
			t.Fatalf("edge %d missing", i)
		}
		if p := rec.Pressed(rec.Pin.Read()); p != want {
			t.Errorf("edge %d: pressed = %v, want %v", i, p, want)
		}
	}
	if rec.Pin.WaitForEdge(0) {
		t.Error("extra edge")
	}

	// The other buttons saw nothing.
	if button(t, b, "mark").Pin.WaitForEdge(0) {
		t.Error("mark saw an edge")
	}
	if err := s.Press("stop", true); err == nil {
		t.Error("pressing an unknown button succeeded")
	}
}

func TestSimPressNeverBlocks(t *testing.T) {
	s := NewSim()
	pair := button(t, s.Board(), "pair")
	done := make(chan struct{})
	go func() {
		for i := range 3*simEdgeBuffer + 1 {
			_ = s.Press("pair", i%2 == 0)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Press blocked with nobody waiting")
	}
	// Level set without a waiter; the newest edge is queued last.
	if !pair.Pressed(pair.Pin.Read()) {
		t.Error("level not set by the last press")
	}
	var last gpio.Level
	n := 0
	for pair.Pin.WaitForEdge(0) {
		last = pair.Pin.Read()
		n++
	}
	if n != simEdgeBuffer || !pair.Pressed(last) {
		t.Errorf("drained %d edges, last pressed = %v; want %d and pressed", n, pair.Pressed(last), simEdgeBuffer)
	}
}

func TestSimConcurrentPressAndWait(t *testing.T) {
	s := NewSim()
	mark := button(t, s.Board(), "mark")
	const presses = 200
	var wg sync.WaitGroup
	wg.Add(1)
	seen := 0
	go func() {
		defer wg.Done()
		for seen < presses && mark.Pin.WaitForEdge(time.Second) {
			_ = mark.Pin.Read()
			seen++
		}
	}()
	for i := range presses {
		if err := s.Press("mark", i%2 == 0); err != nil {
			t.Fatal(err)
		}
		if i%16 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	if seen == 0 {
		t.Error("the waiter saw no edges")
	}
}

func TestSimLEDDisplayChanged(t *testing.T) {
	s := NewSim()
	b := s.Board()
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before any change")
	default:
	}
	if err := b.LED.Set(true, true, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("Changed not closed after LED.Set")
	}
	if r, g, bl := s.LED(); !r || !g || bl {
		t.Errorf("LED() = %v %v %v", r, g, bl)
	}

	// The same state again is no change.
	ch = s.Changed()
	_ = b.LED.Set(true, true, false)
	select {
	case <-ch:
		t.Error("Changed closed by an identical Set")
	default:
	}

	// Many waiters all see a display change.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); <-ch }()
	}
	digits := [4]byte{hw.SegG, hw.SegG, hw.SegG, hw.SegG}
	if err := b.Display.Show(digits, true); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if d, colon := s.Digits(); d != digits || !colon {
		t.Errorf("Digits() = %v %v", d, colon)
	}

	ch = s.Changed()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	<-ch
	if r, g, bl := s.LED(); r || g || bl {
		t.Error("LED on after Close")
	}
	if d, colon := s.Digits(); d != ([4]byte{}) || colon {
		t.Error("display not blank after Close")
	}
}

func TestSimCloseWakesWaiters(t *testing.T) {
	s := NewSim()
	rec := button(t, s.Board(), "rec")
	done := make(chan bool)
	go func() { done <- rec.Pin.WaitForEdge(-1) }()
	time.Sleep(5 * time.Millisecond)
	if err := s.Board().Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if got {
			t.Error("WaitForEdge reported an edge on Close")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not interrupt WaitForEdge(-1)")
	}
	if s.Pin("rec") == nil || s.Pin("stop") != nil {
		t.Error("Pin lookup")
	}
}

func TestSimBattery(t *testing.T) {
	if NewSim().Board().Battery != nil {
		t.Error("NewSim() has a battery")
	}
	s := NewSim(WithBattery(50))
	bat := s.Board().Battery
	if bat == nil {
		t.Fatal("WithBattery: no battery")
	}
	r, err := bat.Read()
	if err != nil || r.Percent != 50 || r.Volts < 3.69 || r.Volts > 3.71 {
		t.Errorf("Read() = %+v, %v", r, err)
	}
	ch := s.Changed()
	s.SetBattery(150)
	<-ch
	if r, _ := bat.Read(); r.Percent != 100 {
		t.Errorf("after SetBattery(150): %+v", r)
	}
}

func TestNewSimFromProfile(t *testing.T) {
	p, err := LoadProfile("sim")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSimFromProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Board().Name != "sim" || s.Board().Battery == nil || s.Board().Display == nil {
		t.Errorf("board = %+v", s.Board())
	}
	ref, _ := LoadProfile("pi-ref")
	if _, err := NewSimFromProfile(ref); err == nil {
		t.Error("NewSimFromProfile(pi-ref) succeeded")
	}
	if _, err := Open(p); err == nil {
		t.Error("Open(sim) succeeded")
	}
}
