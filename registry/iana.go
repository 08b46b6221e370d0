package registry

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// tldTTL is how long IANA's TLD data is reused: registry operators and
// their contacts change a few times a decade.
const tldTTL = 7 * 24 * time.Hour

// TLDInfo is IANA's record of a TLD: the registry operator, its contacts
// and its WHOIS server (whois.iana.org answers for "com", "cn", ...).
type TLDInfo struct {
	TLD          string `json:"tld"`
	Organisation string `json:"organisation,omitempty"`
	Admin        Person `json:"administrative"`
	Tech         Person `json:"technical"`
	// Whois is the registry's WHOIS server ("host" or "host:port").
	Whois string `json:"whois,omitempty"`
	// RegistrationURL is the operator's "Registration information" page.
	RegistrationURL string    `json:"registration_url,omitempty"`
	Server          string    `json:"server"`
	FetchedAt       time.Time `json:"fetched_at"`
}

// Person is one contact of a registry operator.
type Person struct {
	Name         string `json:"name,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	Email        string `json:"email,omitempty"`
	Phone        string `json:"phone,omitempty"`
}

func (p Person) empty() bool { return p.Email == "" && p.Phone == "" }

// parseIANATLD reads IANA's WHOIS answer for a TLD. Blocks are separated by
// blank lines; "contact: administrative" opens a contact block.
func parseIANATLD(tld, answer string) (*TLDInfo, error) {
	if strings.TrimSpace(answer) == "" {
		return nil, fmt.Errorf("%w: empty answer", ErrMalformed)
	}
	if isQuotaAnswer(answer) {
		return nil, fmt.Errorf("%w: %q", ErrRateLimited, firstLine(answer))
	}
	info := &TLDInfo{TLD: tld}
	var cur *Person
	seenDomain := false
	for line := range strings.SplitSeq(answer, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			cur = nil
			continue
		}
		if strings.HasPrefix(line, "%") {
			if strings.Contains(line, "returned 0 objects") {
				return nil, fmt.Errorf("%w: IANA has no TLD %q", ErrNotRegistered, tld)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "domain":
			seenDomain = true
		case "contact":
			switch strings.ToLower(v) {
			case "administrative":
				cur = &info.Admin
			case "technical":
				cur = &info.Tech
			default:
				cur = nil
			}
		case "name":
			if cur != nil {
				cur.Name = v
			}
		case "organisation", "organization":
			if cur != nil {
				cur.Organisation = v
			} else if info.Organisation == "" {
				info.Organisation = v
			}
		case "e-mail", "email":
			if cur != nil {
				cur.Email = strings.ToLower(v)
			}
		case "phone":
			if cur != nil {
				cur.Phone = v
			}
		case "whois":
			info.Whois = cleanReferral(v)
		case "remarks":
			if u, found := strings.CutPrefix(v, "Registration information:"); found {
				info.RegistrationURL = strings.TrimSpace(u)
			}
		}
	}
	if !seenDomain && info.Organisation == "" {
		return nil, fmt.Errorf("%w: not an IANA TLD record (%q)", ErrMalformed, firstLine(answer))
	}
	return info, nil
}

// tldInfo returns IANA's record of a TLD, from memory, the disk cache, or
// registry.iana_whois. When IANA cannot be asked, an expired copy is better
// than nothing: operators rarely change.
func (c *Client) tldInfo(ctx context.Context, tld string) (*TLDInfo, error) {
	c.mu.Lock()
	cached := c.tlds[tld]
	c.mu.Unlock()
	if cached == nil {
		var fromDisk TLDInfo
		if c.cache.load("tld", tld, &fromDisk) {
			cached = &fromDisk
		}
	}
	if cached != nil && c.now().Sub(cached.FetchedAt) < tldTTL {
		return cached, nil
	}
	if c.cfg.Registry.IANAWhois == "" {
		return nil, fmt.Errorf("%w for .%s: registry.iana_whois is empty", ErrNoServer, tld)
	}
	server := withPort(c.cfg.Registry.IANAWhois)
	answer, err := c.whoisQuery(ctx, server, tld)
	var info *TLDInfo
	if err == nil {
		info, err = parseIANATLD(tld, answer)
	}
	if err != nil {
		if cached != nil && ctx.Err() == nil {
			c.log.Warn("using expired IANA TLD data", "tld", tld, "fetched_at", cached.FetchedAt, "err", err)
			return cached, nil
		}
		return nil, fmt.Errorf("IANA TLD data for .%s from %s: %w", tld, server, err)
	}
	info.Server = server
	info.FetchedAt = c.now().UTC().Truncate(time.Second)
	c.mu.Lock()
	c.tlds[tld] = info
	c.mu.Unlock()
	c.cache.save("tld", tld, info)
	return info, nil
}
