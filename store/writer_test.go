package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// Writes committed together stay apart: one that fails is undone alone, and
// the others in its group commit.
func TestGroupedWritesFailAlone(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "drbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const writers = 200
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			errs[w] = s.write(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO envelopes (id, handled_at) VALUES (?, ?)`, fmt.Sprintf("w%d", w), "2026-12-02T00:00:00Z"); err != nil {
					return err
				}
				if w%3 == 0 {
					return fmt.Errorf("writer %d changed its mind", w)
				}
				return nil
			})
		})
	}
	wg.Wait()
	var kept int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM envelopes`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	for w, err := range errs {
		if (err != nil) != (w%3 == 0) {
			t.Errorf("writer %d: %v", w, err)
		}
	}
	if want := writers - (writers+2)/3; kept != want {
		t.Errorf("%d rows kept, want %d (every writer that did not fail)", kept, want)
	}
}

// BenchmarkConcurrentClaims measures claims from many goroutines at once,
// as under incident load: grouped commits share one fsync.
func BenchmarkConcurrentClaims(b *testing.B) {
	ctx := context.Background()
	s, steps := awaitingSteps(b)
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			step, ev := claimed(steps[next.Add(1)-1], "U_ANA")
			if err := s.SwapStep(ctx, step, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}
