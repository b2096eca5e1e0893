package node

import (
	"testing"

	"github.com/charla-im/charla/crypto"
	"github.com/charla-im/charla/wire"
)

// rosterCase builds roster ops by hand, in total order, for computeRoster.
type rosterCase struct {
	t       *testing.T
	g       *wire.Genesis
	ids     map[string]*crypto.Identity
	ops     []*rosterOp
	seq     map[string]uint64
	lamport uint64
}

func newRosterCase(t *testing.T, names ...string) *rosterCase {
	rc := &rosterCase{t: t, ids: map[string]*crypto.Identity{}, seq: map[string]uint64{}}
	for _, n := range names {
		id, err := crypto.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		rc.ids[n] = id
	}
	founder, _ := rc.ids[names[0]].MemberRecord(names[0])
	rc.g = &wire.Genesis{Name: "Acme", Founder: founder, Created: 1, Nonce: make([]byte, wire.GenesisNonceBytes)}
	return rc
}

func (rc *rosterCase) peer(name string) []byte { return []byte(rc.ids[name].PeerID()) }

// op appends an op by author; it returns its (seq, id).
func (rc *rosterCase) op(author string, op wire.RosterOp) (uint64, wire.ID) {
	rc.seq[author]++
	rc.lamport++
	o := &rosterOp{author: rc.peer(author), seq: rc.seq[author], lamport: rc.lamport, op: &op}
	o.id[0], o.id[1] = byte(len(rc.ops)), 0xee
	if len(op.Member.Peer) > 0 {
		o.member = crypto.VerifyMember(&op.Member) == nil
	}
	rc.ops = append(rc.ops, o)
	return o.seq, o.id
}

func (rc *rosterCase) admit(by, who string, role wire.Role) {
	m, _ := rc.ids[who].MemberRecord(who)
	rc.op(by, wire.RosterOp{Kind: wire.RosterAdmit, Member: m, Role: role})
}

func (rc *rosterCase) roles() map[string]string {
	r := computeRoster(rc.g, rc.ops)
	out := map[string]string{}
	for n := range rc.ids {
		m, ok := r.members[string(rc.peer(n))]
		switch {
		case !ok:
			out[n] = "-"
		case m.removed:
			out[n] = "removed"
		default:
			out[n] = m.role.String()
		}
	}
	return out
}

func TestRosterRules(t *testing.T) {
	rc := newRosterCase(t, "ana", "ben", "cai", "dan")
	rc.admit("ana", "ben", wire.RoleAdmin)
	rc.admit("ben", "cai", wire.RoleMember)
	// A member may not admit (policy: admins), nor make itself admin.
	rc.admit("cai", "dan", wire.RoleMember)
	rc.op("cai", wire.RosterOp{Kind: wire.RosterRole, Target: rc.peer("cai"), Role: wire.RoleAdmin})
	// An admin may not remove or demote the owner, nor admit an owner.
	rc.op("ben", wire.RosterOp{Kind: wire.RosterRemove, Target: rc.peer("ana")})
	rc.op("ben", wire.RosterOp{Kind: wire.RosterRole, Target: rc.peer("ana"), Role: wire.RoleMember})
	if got := rc.roles(); got["ana"] != "owner" || got["ben"] != "admin" || got["cai"] != "member" || got["dan"] != "-" {
		t.Fatalf("roles %v", got)
	}
	// Under the members policy, cai may admit dan, as a member only.
	rc.op("ana", wire.RosterOp{Kind: wire.RosterPolicy, Key: PolicyInvite, Value: "members"})
	rc.admit("cai", "dan", wire.RoleMember)
	if got := rc.roles(); got["dan"] != "member" {
		t.Fatalf("after the policy: %v", got)
	}
	// Ana demotes ben: his later ops count for nothing.
	rc.op("ana", wire.RosterOp{Kind: wire.RosterRole, Target: rc.peer("ben"), Role: wire.RoleMember})
	rc.op("ben", wire.RosterOp{Kind: wire.RosterRemove, Target: rc.peer("cai")})
	if got := rc.roles(); got["ben"] != "member" || got["cai"] != "member" {
		t.Fatalf("after demotion: %v", got)
	}
	// A removed member is never admitted again.
	seq, id := rc.seq["dan"], wire.ID{}
	rc.op("ana", wire.RosterOp{Kind: wire.RosterRemove, Target: rc.peer("dan"), TargetSeq: seq, TargetID: id})
	rc.admit("ana", "dan", wire.RoleMember)
	if got := rc.roles(); got["dan"] != "removed" {
		t.Fatalf("a removed member came back: %v", got)
	}
}

// TestRosterCutVoidsEarlierOps: an op the removed member signed after its
// cut is void even when it sorts before the removal.
func TestRosterCutVoidsEarlierOps(t *testing.T) {
	rc := newRosterCase(t, "ana", "ben", "cai")
	rc.admit("ana", "ben", wire.RoleAdmin)
	rc.admit("ana", "cai", wire.RoleMember)
	cutSeq, cutID := rc.seq["ben"], wire.ID{}
	// Ben, beyond what Ana held of him, promotes Cai; Ana then removes Ben
	// at the cut she knew: the promotion sorts first but is void.
	rc.op("ben", wire.RosterOp{Kind: wire.RosterRole, Target: rc.peer("cai"), Role: wire.RoleAdmin})
	rc.op("ana", wire.RosterOp{Kind: wire.RosterRemove, Target: rc.peer("ben"), TargetSeq: cutSeq, TargetID: cutID})
	if got := rc.roles(); got["ben"] != "removed" || got["cai"] != "member" {
		t.Fatalf("roles %v", got)
	}
}
