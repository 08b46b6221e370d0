package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/likexian/whois"
)

// whoisQuery asks one WHOIS server one question (RFC 3912) through
// likexian/whois, pinned to server, bounded to MaxAnswer bytes and the
// registry timeout, after the server's token bucket allows it.
func (c *Client) whoisQuery(ctx context.Context, server, query string) (string, error) {
	server = withPort(server)
	if err := c.polite.wait(ctx, server); err != nil {
		if errors.Is(err, ErrBackingOff) {
			c.counters.limited.Add(1)
		}
		return "", err
	}
	c.counters.whois.Add(1)
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	wc := whois.NewClient().
		SetDisableReferral(true). // nsguard follows referrals itself, in scope and rate-limited
		SetDisableStats(true).
		SetDialer(pinnedDialer{ctx: qctx, addr: server, dial: c.dial}).
		SetTimeout(c.timeout)
	answer, err := wc.Whois(query, server)
	switch {
	case errors.Is(err, ErrTooLarge):
		return "", fmt.Errorf("%w (%d bytes) from %s", ErrTooLarge, MaxAnswer, server)
	case err != nil && ctx.Err() != nil:
		return "", ctx.Err()
	case err != nil && (qctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)):
		return "", fmt.Errorf("no answer from %s within %s", server, c.timeout)
	case err != nil:
		return "", fmt.Errorf("asking %s: %w", server, err)
	}
	if isQuotaAnswer(answer) {
		c.counters.limited.Add(1)
		until := c.polite.limited(server, 0)
		return answer, fmt.Errorf("%w by %s (%q); not asking again before %s", ErrRateLimited, server, firstLine(answer), until.UTC().Format("2006-01-02T15:04:05Z"))
	}
	c.polite.ok(server)
	return answer, nil
}

// whoisLookup reads a domain over WHOIS: the registry's server, then the
// registrar's server the registry refers to (thin registries such as
// Verisign's .com keep registrar, abuse contacts and the registrar's
// expiry there).
func (c *Client) whoisLookup(ctx context.Context, name, tld, server string, rec *Record) error {
	server = withPort(server)
	answer, err := c.whoisQuery(ctx, server, name)
	if err != nil {
		rec.Trail = append(rec.Trail, Attempt{Protocol: SourceWHOIS, Server: server, Query: name, Result: err.Error()})
		return err
	}
	wd, err := parseWhois(answer, tld)
	if err != nil {
		if errors.Is(err, ErrRateLimited) {
			c.polite.limited(server, 0)
		}
		rec.Trail = append(rec.Trail, Attempt{Protocol: SourceWHOIS, Server: server, Query: name, Result: err.Error()})
		return fmt.Errorf("%s: %w", server, err)
	}
	rec.Trail = append(rec.Trail, Attempt{Protocol: SourceWHOIS, Server: server, Query: name, Result: "ok"})
	rec.Source, rec.Server, rec.Query = SourceWHOIS, server, name
	rec.Raw = answer
	rec.Registrar, rec.Registrant = wd.Registrar, wd.Registrant
	rec.Statuses, rec.OtherStatuses = wd.Statuses, wd.Other
	rec.Created, rec.Updated, rec.RegistryExpiry = wd.Created, wd.Updated, wd.Expiry
	rec.Nameservers, rec.DNSSEC = wd.NS, wd.DNSSEC
	rec.ParseNotes = wd.Notes

	ref := wd.Referral
	if ref == "" || withPort(ref) == server {
		return nil
	}
	ref = withPort(ref)
	if err := checkReferral(hostOf(server), hostOf(ref)); err != nil {
		rec.Trail = append(rec.Trail, Attempt{Protocol: SourceWHOIS, Server: ref, Query: name, Result: err.Error()})
		return nil
	}
	answer, err = c.whoisQuery(ctx, ref, name)
	if err == nil {
		var rd *whoisData
		if rd, err = parseWhois(answer, tld); err == nil {
			mergeRegistrar(rec, rd.Registrar, rd.Expiry, rd.Statuses, rd.NS)
			rec.Registrar.Server = ref
			for _, n := range rd.Notes {
				rec.ParseNotes = append(rec.ParseNotes, "registrar's answer: "+n)
			}
			if rd.Registrant != "" {
				// Thin registries (Verisign) leave the registrant to the registrar.
				rec.Registrant = rd.Registrant
			}
			rec.Raw += "\n\n% registrar " + ref + "\n" + answer
		}
	}
	result := "ok"
	if err != nil {
		// The registry's answer stands; the registrar's is a bonus.
		result = err.Error()
		c.log.Debug("registrar whois failed", "domain", name, "server", ref, "err", err)
	}
	rec.Trail = append(rec.Trail, Attempt{Protocol: SourceWHOIS, Server: ref, Query: name, Result: result})
	return nil
}

// mergeRegistrar fills what the registry left out from the registrar's
// answer. The registry stays authoritative for statuses and name servers
// (locks are enforced there); the registrar's expiry is kept beside the
// registry's, and the earlier one is judged.
func mergeRegistrar(rec *Record, r Registrar, expiry time.Time, statuses, ns []string) {
	if rec.Registrar.Name == "" {
		rec.Registrar.Name = r.Name
	}
	if rec.Registrar.IANAID == "" {
		rec.Registrar.IANAID = r.IANAID
	}
	if rec.Registrar.AbuseEmail == "" {
		rec.Registrar.AbuseEmail = r.AbuseEmail
	}
	if rec.Registrar.AbusePhone == "" {
		rec.Registrar.AbusePhone = r.AbusePhone
	}
	if rec.Registrar.URL == "" {
		rec.Registrar.URL = r.URL
	}
	if !expiry.IsZero() {
		rec.RegistrarExpiry = expiry
	}
	if len(rec.Statuses) == 0 && len(rec.OtherStatuses) == 0 {
		rec.Statuses = statuses
	}
	if len(rec.Nameservers) == 0 {
		rec.Nameservers = ns
	}
}

// whoisServerFor finds the WHOIS server for a TLD: registry.whois_servers
// (longest suffix wins, so "co.uk" can differ from "uk"), else the server
// IANA names for the TLD.
func (c *Client) whoisServerFor(ctx context.Context, name string) (string, error) {
	if s := longestSuffix(c.cfg.Registry.WhoisServers, name); s != "" {
		return s, nil
	}
	tld := tldOf(name)
	info, err := c.tldInfo(ctx, tld)
	if err != nil {
		return "", fmt.Errorf("finding the WHOIS server for .%s: %w", tld, err)
	}
	if info.Whois == "" {
		return "", fmt.Errorf("%w for .%s (IANA lists no WHOIS server)", ErrNoServer, tld)
	}
	if err := checkReferral(hostOf(withPort(c.cfg.Registry.IANAWhois)), hostOf(info.Whois)); err != nil {
		return "", err
	}
	return info.Whois, nil
}

// longestSuffix returns the value of the longest key of m that is name or a
// parent of name.
func longestSuffix(m map[string]string, name string) string {
	best, bestLen := "", -1
	for k, v := range m {
		k = strings.Trim(strings.ToLower(k), ".")
		if (name == k || strings.HasSuffix(name, "."+k)) && len(k) > bestLen {
			best, bestLen = v, len(k)
		}
	}
	return best
}

func tldOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}
