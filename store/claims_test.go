package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/drbot-dev/drbot/runbook"
)

const testResource = "github-run:dfe-digital/itt-mentor-services:30000003"

// claimBy is a claim on testResource, stamped t0.
func claimBy(runID, stepID string) runbook.Claim {
	return runbook.Claim{Resource: testResource, RunID: runID, StepID: stepID, At: t0}
}

func TestClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		tests := []struct {
			name string
			// first is claimed before, then second; want is what the second
			// claim returns, holder who holds the resource afterwards.
			first, second runbook.Claim
			wantClaimed   bool
			holder        runbook.Claim
		}{
			{name: "same step again is a no-op", first: claimBy("r1", "backup-flawed"), second: claimBy("r1", "backup-flawed"),
				holder: claimBy("r1", "backup-flawed")},
			{name: "another step of the same run is refused", first: claimBy("r1", "backup-flawed"), second: claimBy("r1", "backup-ptr"),
				wantClaimed: true, holder: claimBy("r1", "backup-flawed")},
			{name: "the same step of another run is refused", first: claimBy("r1", "backup-ptr"), second: claimBy("r2", "backup-ptr"),
				wantClaimed: true, holder: claimBy("r1", "backup-ptr")},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				s := b.newStore(t)
				if err := s.Claim(ctx, tt.first); err != nil {
					t.Fatalf("first claim: %v", err)
				}
				err := s.Claim(ctx, tt.second)
				var ce *runbook.ClaimedError
				switch {
				case !tt.wantClaimed && err != nil:
					t.Fatalf("second claim: %v, want nil", err)
				case tt.wantClaimed && !errors.Is(err, runbook.ErrClaimed):
					t.Fatalf("second claim: %v, want ErrClaimed", err)
				case tt.wantClaimed && (!errors.As(err, &ce) || ce.Holder.StepID != tt.holder.StepID || ce.Holder.RunID != tt.holder.RunID):
					t.Errorf("second claim: %v, want a ClaimedError naming %s/%s", err, tt.holder.RunID, tt.holder.StepID)
				}
				got, err := s.ClaimOf(ctx, testResource)
				if err != nil {
					t.Fatal(err)
				}
				want := tt.holder
				want.At = want.At.UTC()
				equal(t, "holder", got, want)
			})
		}
	})
}

func TestClaimOfUnclaimed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		_, err := b.newStore(t).ClaimOf(context.Background(), testResource)
		if !errors.Is(err, runbook.ErrNotFound) {
			t.Errorf("ClaimOf = %v, want ErrNotFound", err)
		}
	})
}

func TestClaimNeedsResourceRunAndStep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.newStore(t)
		for _, c := range []runbook.Claim{{RunID: "r1", StepID: "s"}, {Resource: testResource, StepID: "s"}, {Resource: testResource, RunID: "r1"}} {
			if err := s.Claim(context.Background(), c); err == nil {
				t.Errorf("Claim(%+v) = nil, want a refusal", c)
			}
		}
	})
}

// TestClaimRaceOneWinner claims one resource from several steps at once,
// through one Store and through one Store per claimant (replicas on one
// file): exactly one claim wins each round, the others name the winner, and
// no SQLITE_BUSY leaks.
func TestClaimRaceOneWinner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const claimants, rounds = 2, 20
		tests := []struct {
			name    string
			handles int
		}{
			{"one process", 1},
			{"replicas", claimants},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				path := b.path(t)
				stores := make([]*Store, tt.handles)
				for i := range stores {
					stores[i] = openStore(t, path)
				}
				for round := range rounds {
					resource := fmt.Sprintf("github-run:o/r:%d", round)
					start := make(chan struct{})
					errs := make([]error, claimants)
					var wg sync.WaitGroup
					for i := range claimants {
						s := stores[i%len(stores)]
						c := runbook.Claim{Resource: resource, RunID: "r1", StepID: fmt.Sprintf("step-%d", i), At: t0}
						wg.Go(func() {
							<-start
							errs[i] = s.Claim(ctx, c)
						})
					}
					close(start)
					wg.Wait()

					winner := -1
					for i, err := range errs {
						var ce *runbook.ClaimedError
						switch {
						case err == nil && winner >= 0:
							t.Errorf("round %d: steps %d and %d both claimed %s", round, winner, i, resource)
						case err == nil:
							winner = i
						case isBusy(err):
							t.Errorf("round %d: claimant %d: SQLITE_BUSY leaked: %v", round, i, err)
						case !errors.As(err, &ce):
							t.Errorf("round %d: claimant %d: err = %v, want a ClaimedError", round, i, err)
						}
					}
					if winner < 0 {
						t.Fatalf("round %d: nobody claimed %s: %v", round, resource, errs)
					}
					for i, err := range errs {
						var ce *runbook.ClaimedError
						if i != winner && errors.As(err, &ce) && ce.Holder.StepID != fmt.Sprintf("step-%d", winner) {
							t.Errorf("round %d: claimant %d was told %s holds it, want step-%d", round, i, ce.Holder.StepID, winner)
						}
					}
					got, err := stores[len(stores)-1].ClaimOf(ctx, resource)
					if err != nil || got.StepID != fmt.Sprintf("step-%d", winner) {
						t.Errorf("round %d: stored claim %+v (%v), want step-%d", round, got, err, winner)
					}
				}
			})
		}
	})
}

func TestClaimSurvivesReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		path := b.path(t)
		s := openStore(t, path)
		if err := s.Claim(ctx, claimBy("r1", "backup-flawed")); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openStore(t, path)
		if err := s.Claim(ctx, claimBy("r1", "backup-ptr")); !errors.Is(err, runbook.ErrClaimed) {
			t.Errorf("claim after reopen = %v, want ErrClaimed: a claim must outlive the process", err)
		}
	})
}
