package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFirstDelivery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		path := b.path(t)
		s := openStore(t, path)
		t0 := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
		tests := []struct {
			name  string
			id    string
			at    time.Time
			first bool
		}{
			{"a new envelope", "env-1", t0, true},
			{"its redelivery", "env-1", t0.Add(time.Minute), false},
			{"another envelope", "env-2", t0.Add(time.Minute), true},
			{"the second action of the first", "env-1/1", t0.Add(time.Minute), true},
			{"a redelivery within the TTL", "env-2", t0.Add(EnvelopeTTL), false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				first, err := s.FirstDelivery(ctx, tt.id, tt.at)
				if err != nil {
					t.Fatal(err)
				}
				if first != tt.first {
					t.Errorf("FirstDelivery(%s) = %v, want %v", tt.id, first, tt.first)
				}
			})
		}

		// Remembered across a restart on the same file.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openStore(t, path)
		if first, err := s.FirstDelivery(ctx, "env-1", t0.Add(2*time.Minute)); err != nil || first {
			t.Errorf("after reopening: first=%v, %v; want a known envelope", first, err)
		}

		// Past the TTL a record is deleted by the next insert.
		late := t0.Add(EnvelopeTTL + 2*time.Minute)
		if _, err := s.FirstDelivery(ctx, "env-3", late); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM envelopes WHERE id IN ('env-1', 'env-1/1')`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d expired envelopes kept (%v)", n, err)
		}
		if _, err := s.FirstDelivery(ctx, "", late); err == nil {
			t.Error("an empty id was recorded")
		}
	})
}

func TestFirstDeliveryOnceUnderConcurrency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.path(t))
		var firsts atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				first, err := s.FirstDelivery(context.Background(), "env-race", time.Now())
				if err != nil {
					t.Error(err)
				}
				if first {
					firsts.Add(1)
				}
			})
		}
		wg.Wait()
		if firsts.Load() != 1 {
			t.Errorf("%d deliveries were first, want 1", firsts.Load())
		}
	})
}
