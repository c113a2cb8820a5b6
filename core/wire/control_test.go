package wire

import (
	"testing"
)

func TestHelloFlags(t *testing.T) {
	var inst [InstanceIDLen]byte
	inst[0] = 7
	cases := []struct {
		name      string
		payload   []byte
		wantFlags uint64
	}{
		{"no flags, as earlier versions send", AppendHello(nil, inst, 1000), 0},
		{"authorizes teams", AppendHelloFields(nil, Hello{Instance: inst, MaxMessageSize: 1000, Flags: HelloAuthorizesTeams}), HelloAuthorizesTeams},
		{"unknown bits kept, known bit read", AppendHelloFields(nil, Hello{Instance: inst, MaxMessageSize: 1000, Flags: 0x81}), 0x81},
		{"later fields after the flags are ignored", append(AppendHelloFields(nil, Hello{Instance: inst, MaxMessageSize: 1000, Flags: 1}), 9, 9, 9), 1},
		{"flags that do not parse count as none", append(AppendHello(nil, inst, 1000), 0xc0), 0},
	}
	for _, c := range cases {
		h, err := ParseHelloFields(c.payload)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if h.Instance != inst || h.MaxMessageSize != 1000 || h.Flags != c.wantFlags {
			t.Fatalf("%s: got %+v, want flags %#x", c.name, h, c.wantFlags)
		}
	}
	if got, want := len(AppendHelloFields(nil, Hello{Instance: inst, MaxMessageSize: 1000})), len(AppendHello(nil, inst, 1000)); got != want {
		t.Fatalf("a HELLO without flags has %d bytes, want the %d earlier versions send", got, want)
	}
}
