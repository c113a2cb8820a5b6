package core

import "sync"

// teamAuth is the per-team authorization list: which peer ids may use
// which team ids. When it is off, every trusted peer may use every team.
type teamAuth struct {
	enabled bool

	mu    sync.RWMutex
	teams map[PeerID]map[TeamID]struct{}
}

func newTeamAuth(enabled bool) *teamAuth {
	return &teamAuth{enabled: enabled, teams: make(map[PeerID]map[TeamID]struct{})}
}

// allows reports whether peer may open a stream of kind on team: a
// channel on a team it is allowed on, a sync stream when it is allowed on
// any team.
func (a *teamAuth) allows(peer PeerID, kind Kind, team TeamID) bool {
	if !a.enabled {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	teams := a.teams[peer]
	if kind == KindSync {
		return len(teams) > 0
	}
	_, ok := teams[team]
	return ok
}

func (a *teamAuth) allow(peer PeerID, team TeamID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	teams := a.teams[peer]
	if teams == nil {
		teams = make(map[TeamID]struct{})
		a.teams[peer] = teams
	}
	teams[team] = struct{}{}
}

// revoke removes the pair; changed says it was allowed, lastTeam that the
// peer is now allowed on no team (its sync streams go too).
func (a *teamAuth) revoke(peer PeerID, team TeamID) (changed, lastTeam bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	teams := a.teams[peer]
	if _, ok := teams[team]; !ok {
		return false, false
	}
	delete(teams, team)
	if len(teams) == 0 {
		delete(a.teams, peer)
		return true, true
	}
	return true, false
}
