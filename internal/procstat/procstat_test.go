package procstat

import (
	"os"
	"testing"
	"time"
)

// TestReads: this machine's and this process's CPU times read, and grow
// with work done.
func TestReads(t *testing.T) {
	busy0, total0, err := Machine()
	if err != nil || busy0 <= 0 || total0 < busy0 {
		t.Fatalf("machine: busy %v total %v, %v", busy0, total0, err)
	}
	self0, _, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Work until a tick of CPU time shows in both (the machine's counters
	// are summed from the CPUs' lazily; a loaded machine may take long).
	self1, busy1, total1 := self0, busy0, total0
	for end := time.Now().Add(10 * time.Second); (self1 == self0 || busy1 == busy0) && time.Now().Before(end); {
		if self1, _, err = Process(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if busy1, total1, err = Machine(); err != nil {
			t.Fatal(err)
		}
	}
	if self1 <= self0 || busy1 <= busy0 || total1 <= total0 {
		t.Errorf("after work: self %v → %v, machine busy %v → %v, total %v → %v", self0, self1, busy0, busy1, total0, total1)
	}
	if _, _, err := Process(-1); err == nil {
		t.Error("no process -1, but read")
	}
}
