package system

import (
	"testing"
	"time"

	"filippo.io/age"

	"attune.dev/attune/custody"
	"attune.dev/attune/device"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// A case the laptop closed leaves the device paired but with no case: it
// shows so, refuses REC, and says so again after a restart; a case set
// later makes it ready again, showing that case's number.
func TestNoCaseRefusesRec(t *testing.T) {
	td := newTestDaemon(t)
	td.waitState(t, device.StateReady)
	b := &linkBackend{d: td.d, data: t.TempDir()}
	id, _ := age.GenerateX25519Identity()
	const ref = "000000ff00000000" // case number c255
	c, err := link.NewCase([]string{id.Recipient().String()}, ref)
	if err != nil {
		t.Fatal(err)
	}
	b.state.LaptopPin = custody.ZeroHash
	if err := b.SetRecipients(c); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st := td.d.Status(); st.State != device.StateReady || st.Case != "c255"; st = td.d.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("status %s, case %q: want ready, case c255", st.State, st.Case)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.SetRecipients(link.Case{}); err != nil {
		t.Fatal(err)
	}
	td.waitState(t, device.StateNoCase)
	if _, ok := td.d.Recipients(); ok {
		t.Error("recipients kept after the case was cleared")
	}
	td.d.Send(device.EventRec)
	time.Sleep(200 * time.Millisecond)
	if st := td.d.Status(); st.State != device.StateNoCase {
		t.Errorf("after REC with no case: state %s, want no_case", st.State)
	}
	if list, _ := td.store.List(); len(list) != 0 {
		t.Errorf("recorded with no case: %d recordings", len(list))
	}

	// After a restart the device still has no case.
	td.d.SetRecipients(storage.Recipients{})
	td.waitState(t, device.StateNotPaired)
	b2 := &linkBackend{d: td.d, data: b.data}
	if err := b2.loadPairing(); err != nil {
		t.Fatal(err)
	}
	td.waitState(t, device.StateNoCase)
	if b2.LaptopPin() != custody.ZeroHash {
		t.Error("the pairing was lost with the case")
	}

	if err := b2.SetRecipients(c); err != nil {
		t.Fatal(err)
	}
	td.waitState(t, device.StateReady)
}

// The link's status reports the battery from the fuel gauge, and leaves
// it out without one.
func TestStatusBattery(t *testing.T) {
	td := newTestDaemon(t)
	td.waitState(t, device.StateReady)
	b := &linkBackend{d: td.d, data: t.TempDir()}
	td.d.SetBattery(-1)
	if st := b.Status(); st.Battery != nil {
		t.Errorf("without a gauge the status says battery %d", *st.Battery)
	}
	td.d.SetBattery(42)
	if st := b.Status(); st.Battery == nil || *st.Battery != 42 {
		t.Errorf("status battery %v, want 42", st.Battery)
	}
}
