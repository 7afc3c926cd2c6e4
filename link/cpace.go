package link

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"

	"github.com/gtank/ristretto255"
)

// CPace-RISTR255-SHA512 of draft-irtf-cfrg-cpace (the CFRG draft as of
// 2026; checked against its test vectors in cpace_test.go), in the
// initiator-responder setting: the laptop is the initiator A, the device
// the responder B. The pairing code is the password (PRS), the channel
// identifier CI binds the parties and the device's certificate pin
// (cpaceCI), the laptop picks the 16-byte sid, and both associated data
// are empty: the pin is already in CI, and the transcript hash the keys
// are derived from (transcriptHash) covers the messages again.
const (
	cpaceDSI    = "CPaceRistretto255"
	cpaceDSIISK = "CPaceRistretto255_ISK"
	cpaceBlock  = 128 // SHA-512's input block size, H.s_in_bytes
	cpaceSIDLen = 16
	cpaceYLen   = 32
)

// prependLen is the draft's prepend_len: the LEB128 length, then data.
func prependLen(data []byte) []byte {
	var out []byte
	n := len(data)
	for {
		if n < 128 {
			out = append(out, byte(n))
		} else {
			out = append(out, byte(n&0x7f)|0x80)
		}
		n >>= 7
		if n == 0 {
			break
		}
	}
	return append(out, data...)
}

// lvCat is the draft's lv_cat: each argument with prepend_len.
func lvCat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, prependLen(p)...)
	}
	return out
}

// cpaceGeneratorString is generator_string(G.DSI, PRS, CI, sid, 128).
func cpaceGeneratorString(prs, ci, sid []byte) []byte {
	zpad := max(0, cpaceBlock-1-len(prependLen(prs))-len(prependLen([]byte(cpaceDSI))))
	return lvCat([]byte(cpaceDSI), prs, make([]byte, zpad), ci, sid)
}

// cpaceGenerator is calculate_generator: the 64-byte SHA-512 of the
// generator string, mapped to ristretto255 (element derivation, RFC 9496).
func cpaceGenerator(prs, ci, sid []byte) *ristretto255.Element {
	h := sha512.Sum512(cpaceGeneratorString(prs, ci, sid))
	return ristretto255.NewElement().FromUniformBytes(h[:])
}

// cpaceSampleScalar is the draft's recommended sample_scalar: 32 random
// bytes with the bits above 252 cleared, little-endian.
func cpaceSampleScalar() *ristretto255.Scalar {
	var b [32]byte
	rand.Read(b[:])
	b[31] &= 0x0f
	s := ristretto255.NewScalar()
	if err := s.Decode(b[:]); err != nil {
		panic("cpace: a 252-bit scalar did not decode: " + err.Error())
	}
	return s
}

// cpaceISK is the intermediate session key of one side with scalar y:
// K = scalar_mult_vfy(y, peer), refused when peer does not decode or K is
// the identity; ISK = SHA-512(lv_cat(DSI_ISK, sid, K) ‖ transcript_ir).
func cpaceISK(y *ristretto255.Scalar, sid, ya, ada, yb, adb, peer []byte) ([]byte, error) {
	x := ristretto255.NewElement()
	if err := x.Decode(peer); err != nil {
		return nil, errors.New("cpace: the peer's share is not a ristretto255 element")
	}
	k := ristretto255.NewElement().ScalarMult(y, x)
	if k.Equal(ristretto255.NewElement().Zero()) == 1 {
		return nil, errors.New("cpace: the shared point is the identity")
	}
	h := sha512.New()
	h.Write(lvCat([]byte(cpaceDSIISK), sid, k.Encode(nil)))
	h.Write(lvCat(ya, ada))
	h.Write(lvCat(yb, adb))
	return h.Sum(nil), nil
}

// cpaceCI is the channel identifier: the two roles and the pairing
// additional data (the protocol label and the device's pin).
func cpaceCI(devicePin []byte) []byte {
	return lvCat([]byte(cpaceIDLaptop), []byte(cpaceIDDevice), pairAD(devicePin))
}

// cpaceInitiator is the laptop's half-finished exchange.
type cpaceInitiator struct {
	y       *ristretto255.Scalar
	sid, ya []byte
}

// cpaceStart is the laptop's first move: msg_a = sid ‖ Ya.
func cpaceStart(code string, ci []byte) ([]byte, *cpaceInitiator) {
	sid := make([]byte, cpaceSIDLen)
	rand.Read(sid)
	y := cpaceSampleScalar()
	ya := ristretto255.NewElement().ScalarMult(y, cpaceGenerator([]byte(code), ci, sid)).Encode(nil)
	return append(append([]byte(nil), sid...), ya...), &cpaceInitiator{y: y, sid: sid, ya: ya}
}

// finish takes msg_b = Yb and returns the ISK.
func (st *cpaceInitiator) finish(msgB []byte) ([]byte, error) {
	if len(msgB) != cpaceYLen {
		return nil, errors.New("cpace: msg_b has the wrong length")
	}
	return cpaceISK(st.y, st.sid, st.ya, nil, msgB, nil, msgB)
}

// cpaceRespond is the device's move: from msg_a it returns msg_b = Yb and
// the ISK.
func cpaceRespond(code string, ci, msgA []byte) (msgB, isk []byte, err error) {
	if len(msgA) != cpaceSIDLen+cpaceYLen {
		return nil, nil, errors.New("cpace: msg_a has the wrong length")
	}
	sid, ya := msgA[:cpaceSIDLen], msgA[cpaceSIDLen:]
	y := cpaceSampleScalar()
	yb := ristretto255.NewElement().ScalarMult(y, cpaceGenerator([]byte(code), ci, sid)).Encode(nil)
	isk, err = cpaceISK(y, sid, ya, nil, yb, nil, ya)
	if err != nil {
		return nil, nil, err
	}
	return yb, isk, nil
}
