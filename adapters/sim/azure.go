package sim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// The simulated Azure checks. They decode their parameters with the same
// contracts as the real adapter and apply the same rules (restore window,
// proposed PTR names) to the simulated world: servers exist once a wait step
// has seen them Ready and until a delete step removes them, so a second
// rehearsal in the same world finds the first one's PTR copy if it was not
// deleted. The live server of scenario 2 is taken to exist, with the seed's
// 7 days of restore points; scenario 1's lost server does not.

// simBackupSize is the size the simulation gives a backup (a small
// application's gzipped dump).
const simBackupSize = "48 MB"

func (s *Sim) serverExists(rg, server string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.servers[rg+"/"+server]
}

func (s *Sim) postgresCheckGone(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeAzureServer(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	s.record(runbook.KindPostgresCheckGone, req, "get")
	if err := s.wait(ctx, 1); err != nil {
		return runbook.Result{}, err
	}
	if s.serverExists(spec.ResourceGroup, spec.Server) {
		return runbook.Result{}, runbook.Refusef("server %s in resource group %s is Ready: it is not lost, so there is nothing to recreate",
			spec.Server, spec.ResourceGroup)
	}
	return runbook.Result{Summary: fmt.Sprintf("server %s is gone: not found in resource group %s", spec.Server, spec.ResourceGroup)}, nil
}

func (s *Sim) postgresPreparePTR(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodePTR(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	s.record(runbook.KindPostgresPreparePTR, req, "check")
	if err := s.wait(ctx, 1); err != nil {
		return runbook.Result{}, err
	}
	from, to := runbook.PTRWindow(time.Time{}, s.opts.Clock.Now())
	if err := runbook.CheckPTRWindow(spec.Server, spec.RestoreTime, from, to, nil); err != nil {
		return runbook.Result{}, err
	}
	var taken []string
	for _, name := range append([]string{spec.PTRServer}, runbook.PTRProposals(spec.PTRServer)...) {
		if !s.serverExists(spec.ResourceGroup, name) {
			summary := fmt.Sprintf("restore time %s is inside the restore window of %s (%s to %s); ",
				runbook.FormatUTC(spec.RestoreTime), spec.Server, runbook.FormatUTC(from), runbook.FormatUTC(to))
			if len(taken) == 0 {
				summary += "PTR server name " + name + " is free"
			} else {
				summary += fmt.Sprintf("PTR server name %s is taken; using %s instead", strings.Join(taken, ", "), name)
			}
			return runbook.Result{Summary: summary, Remember: name}, nil
		}
		taken = append(taken, name+" (Ready)")
	}
	return runbook.Result{}, runbook.Refusef("no free PTR server name: %s are all taken in resource group %s", strings.Join(taken, ", "), spec.ResourceGroup)
}

func (s *Sim) backupsCheck(ctx context.Context, req runbook.Request) (runbook.Result, error) {
	spec, err := runbook.DecodeBackupCheck(req.Params)
	if err != nil {
		return runbook.Result{}, err
	}
	s.record(runbook.KindBackupsCheck, req, "get")
	if err := s.wait(ctx, 1); err != nil {
		return runbook.Result{}, err
	}
	where := spec.Account + "/" + spec.Container
	if spec.Expect == runbook.BackupFree {
		return runbook.Result{Summary: fmt.Sprintf("backup name %s is free in %s; the backup workflow can write it", spec.Name, where)}, nil
	}
	return runbook.Result{Summary: fmt.Sprintf("backup found in %s: %s (%s, 2h ago)", where, spec.Name, simBackupSize)}, nil
}
