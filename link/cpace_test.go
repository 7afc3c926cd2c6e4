package link

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/gtank/ristretto255"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCPaceVectors: the test vectors of draft-irtf-cfrg-cpace, appendix
// "Test vector for CPace using group ristretto255 and hash SHA-512"
// (github.com/cfrg/draft-irtf-cfrg-cpace, draft-irtf-cfrg-cpace.md).
func TestCPaceVectors(t *testing.T) {
	prs := []byte("Password")
	ci := unhex(t, "0b415f696e69746961746f720b425f726573706f6e646572")
	sid := unhex(t, "7e4b4791d6a8ef019b936c79fb7f2c57")
	if !bytes.Equal(ci, lvCat([]byte("A_initiator"), []byte("B_responder"))) {
		t.Fatal("lv_cat of the parties")
	}
	wantGenStr := unhex(t, `11435061636552697374726574746f3235350850617373776f726464
      00000000000000000000000000000000000000000000000000000000
      00000000000000000000000000000000000000000000000000000000
      00000000000000000000000000000000000000000000000000000000
      00000000000000000000000000000000180b415f696e69746961746f
      720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
      2c57`)
	if got := cpaceGeneratorString(prs, ci, sid); !bytes.Equal(got, wantGenStr) {
		t.Fatalf("generator_string:\n%x\nwant\n%x", got, wantGenStr)
	}
	g := cpaceGenerator(prs, ci, sid)
	if got, want := g.Encode(nil), unhex(t, "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56"); !bytes.Equal(got, want) {
		t.Fatalf("generator %x, want %x", got, want)
	}
	scalar := func(h string) *ristretto255.Scalar {
		s := ristretto255.NewScalar()
		if err := s.Decode(unhex(t, h)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	ya := scalar("da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08")
	yb := scalar("d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d")
	Ya := ristretto255.NewElement().ScalarMult(ya, g).Encode(nil)
	Yb := ristretto255.NewElement().ScalarMult(yb, g).Encode(nil)
	if want := unhex(t, "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157"); !bytes.Equal(Ya, want) {
		t.Fatalf("Ya %x, want %x", Ya, want)
	}
	if want := unhex(t, "3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258"); !bytes.Equal(Yb, want) {
		t.Fatalf("Yb %x, want %x", Yb, want)
	}
	ada, adb := []byte("ADa"), []byte("ADb")
	wantISK := unhex(t, `b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc
      ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c
      3fa2068af7900447`)
	iskA, err := cpaceISK(ya, sid, Ya, ada, Yb, adb, Yb)
	if err != nil || !bytes.Equal(iskA, wantISK) {
		t.Fatalf("ISK of A %x (%v), want %x", iskA, err, wantISK)
	}
	iskB, err := cpaceISK(yb, sid, Ya, ada, Yb, adb, Ya)
	if err != nil || !bytes.Equal(iskB, wantISK) {
		t.Fatalf("ISK of B %x (%v), want %x", iskB, err, wantISK)
	}
	// scalar_mult_vfy: the identity and a non-element are refused.
	if _, err := cpaceISK(ya, sid, Ya, nil, Yb, nil, make([]byte, 32)); err == nil {
		t.Error("the identity was accepted as a share")
	}
	if _, err := cpaceISK(ya, sid, Ya, nil, Yb, nil, bytes.Repeat([]byte{0xff}, 32)); err == nil {
		t.Error("a non-canonical encoding was accepted as a share")
	}
	// prepend_len beyond one byte (the draft's LEB128 vectors).
	if got := prependLen(make([]byte, 128))[:2]; !bytes.Equal(got, []byte{0x80, 0x01}) {
		t.Errorf("prepend_len of 128 bytes starts %x, want 8001", got)
	}
}

// TestCPaceRoundTrip: the same code gives both sides the same key; a
// wrong code or another device pin gives different keys.
func TestCPaceRoundTrip(t *testing.T) {
	pin := bytes.Repeat([]byte{7}, 32)
	msgA, st := cpaceStart("123456", cpaceCI(pin))
	msgB, iskB, err := cpaceRespond("123456", cpaceCI(pin), msgA)
	if err != nil {
		t.Fatal(err)
	}
	iskA, err := st.finish(msgB)
	if err != nil || !bytes.Equal(iskA, iskB) || len(msgA) != msgASize || len(msgB) != msgBSize {
		t.Fatalf("keys differ or sizes wrong: %v", err)
	}
	for name, resp := range map[string]func() ([]byte, []byte, error){
		"wrong code":  func() ([]byte, []byte, error) { return cpaceRespond("123457", cpaceCI(pin), msgA) },
		"another pin": func() ([]byte, []byte, error) { return cpaceRespond("123456", cpaceCI(make([]byte, 32)), msgA) },
	} {
		mb, ib, err := resp()
		if err != nil {
			t.Fatal(err)
		}
		ia, err := st.finish(mb)
		if err != nil || bytes.Equal(ia, ib) {
			t.Errorf("%s: the keys agree", name)
		}
	}
	if _, _, err := cpaceRespond("123456", cpaceCI(pin), msgA[:40]); err == nil {
		t.Error("a short msg_a was accepted")
	}
}
