package audit

import (
	"fmt"
	"strings"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// Action is what the domain's owner should do about a finding, in one
// sentence a non-engineer can act on: the "what to do" column of the
// report and the digest. For DOMAIN_UNBACKED it names the backup's fixes.
func (r *Report) Action(f finding.Finding) string {
	if f.ID == IDDomainUnbacked {
		var fixes []string
		for _, bc := range r.backupRows(f.Domain) {
			if !bc.Usable() {
				fixes = append(fixes, backupActions(bc.Primary, bc)...)
			}
		}
		if len(fixes) > 0 {
			return "Make the backup usable and independent: " + strings.Join(fixes, "; ") + "."
		}
	}
	return Action(f, r.Policy)
}

func (r *Report) backupRows(primary string) []BackupCheck {
	var out []BackupCheck
	if r.backupsOf != nil {
		for _, i := range r.backupsOf[primary] {
			out = append(out, r.Backups[i])
		}
		return out
	}
	for _, bc := range r.Backups {
		if bc.Primary == primary {
			out = append(out, bc)
		}
	}
	return out
}

// Action is the policy-level action for a finding (see Report.Action).
func Action(f finding.Finding, p PolicySummary) string {
	switch f.ID {
	case IDDomainShared:
		return "Split the domain: move services to new domains so none carries more than " +
			fmt.Sprint(max(1, p.MaxServicesPerDomain)) + " (see the suggested split)."
	case IDDomainUnbacked:
		return "Add an independent backup domain: another approved registrar, other DNS providers, another TLD, another group entity as registrant."
	case IDDependencyUndeclared:
		return "Add " + f.Subject + " to the inventory (owner, tier, backups) so its registration and DNS are watched, or stop depending on it."
	case registry.IDRegistrarNotApproved:
		if f.Severity == finding.Info {
			return "Confirm the registrar by hand: the registry does not publish it."
		}
		return "Move the domain to an approved registrar (" + strings.Join(p.ApprovedRegistrars, ", ") + "), or confirm the transfer was planned."
	case registry.IDLockMissing:
		lock := f.Subject
		if strings.HasPrefix(lock, "server") {
			return "Add registry lock: ask the registrar to have the registry set " + lock + "."
		}
		return "Ask the registrar to set " + lock + " on the domain."
	case registry.IDExpirySoon:
		if f.Severity == finding.Info {
			return "Check the expiry date with the registrar: the registry does not publish it."
		}
		return "Renew the registration now and turn on auto-renew."
	case registry.IDStatusHold:
		return "Call the registrar now: the domain is on hold or being deleted (" + f.Subject + ")."
	case registry.IDRegistryNSMismatch:
		return "Make the registry's name servers and the DNS delegation agree (ask the registrar which is intended)."
	case registry.IDRegistrationUnavailable:
		if strings.Contains(f.Message, "not registered") {
			return "Find out why the registry has no such domain: re-register it at once if it lapsed, or fix the inventory."
		}
		return "Check the registration by hand; nsguard will ask again on the next run."
	case monitor.NSSingleProvider:
		return "Add name servers at a second, independent DNS provider."
	case monitor.NSSamePrefix:
		return "Add name servers in another network (a different /24 or /48)."
	}
	if chk, ok := finding.Lookup(f.ID); ok {
		return "Investigate: " + chk.Title + "."
	}
	return "Investigate the finding."
}
