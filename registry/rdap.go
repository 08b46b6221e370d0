package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/openrdap/rdap"
	"github.com/openrdap/rdap/bootstrap"
)

const userAgent = "nsguard-registry/1 (+https://github.com/nsguard/nsguard)"

// rdapData is what one RDAP domain object says.
type rdapData struct {
	Registrar     Registrar
	Registrant    string
	Statuses      []string
	Other         []string
	Created       time.Time
	Updated       time.Time
	Expiry        time.Time
	NS            []string
	DNSSEC        DNSSEC
	Redacted      []string
	RegistrarLink *url.URL
}

// rdapLookup reads a domain from the registry's RDAP server, then from the
// registrar's RDAP server the registry links to. The registrar is always
// asked when linked: registries auto-renew and show next year's expiry
// while the registrar may be about to let the name go.
func (c *Client) rdapLookup(ctx context.Context, name string, base *url.URL, rec *Record) error {
	dom, raw, u, err := c.rdapGet(ctx, rdap.DomainRequest, name, base)
	if err != nil {
		rec.Trail = append(rec.Trail, Attempt{Protocol: SourceRDAP, Server: base.String(), Query: u, Result: err.Error()})
		return err
	}
	if dom.LDHName != "" && !strings.EqualFold(strings.TrimSuffix(dom.LDHName, "."), name) {
		err := fmt.Errorf("%w: %s answered for %q, not %q", ErrMalformed, base.Host, dom.LDHName, name)
		rec.Trail = append(rec.Trail, Attempt{Protocol: SourceRDAP, Server: base.String(), Query: u, Result: err.Error()})
		return err
	}
	rec.Trail = append(rec.Trail, Attempt{Protocol: SourceRDAP, Server: base.String(), Query: u, Result: "ok"})
	d := fromRDAP(dom)
	rec.Source, rec.Server, rec.Query = SourceRDAP, base.String(), u
	rec.Raw = string(raw)
	rec.Registrar, rec.Registrant = d.Registrar, d.Registrant
	rec.Statuses, rec.OtherStatuses = d.Statuses, d.Other
	rec.Created, rec.Updated, rec.RegistryExpiry = d.Created, d.Updated, d.Expiry
	rec.Nameservers, rec.DNSSEC, rec.Redacted = d.NS, d.DNSSEC, d.Redacted

	link := d.RegistrarLink
	if link == nil {
		return nil
	}
	if err := checkReferral(base.Hostname(), link.Hostname()); err != nil {
		rec.Trail = append(rec.Trail, Attempt{Protocol: SourceRDAP, Server: link.Host, Query: link.String(), Result: err.Error()})
		return nil
	}
	rdom, rraw, ru, err := c.rdapGet(ctx, rdap.RawRequest, "", link)
	result := "ok"
	if err == nil && rdom.LDHName != "" && !strings.EqualFold(strings.TrimSuffix(rdom.LDHName, "."), name) {
		err = fmt.Errorf("%w: registrar answered for %q", ErrMalformed, rdom.LDHName)
	}
	if err != nil {
		// The registry's answer stands; the registrar's is a bonus.
		result = err.Error()
		c.log.Debug("registrar rdap failed", "domain", name, "url", ru, "err", err)
	} else {
		r := fromRDAP(rdom)
		mergeRegistrar(rec, r.Registrar, r.Expiry, r.Statuses, r.NS)
		rec.Registrar.Server = ru
		if r.Registrant != "" {
			// Thin registries leave the registrant to the registrar.
			rec.Registrant = r.Registrant
		}
		rec.Redacted = append(rec.Redacted, r.Redacted...)
		rec.Raw += "\n\n" + string(rraw)
	}
	rec.Trail = append(rec.Trail, Attempt{Protocol: SourceRDAP, Server: link.Host, Query: ru, Result: result})
	return nil
}

// rdapGet runs one RDAP request through openrdap, rate-limited per server
// and bounded in time and size, and classifies failures.
func (c *Client) rdapGet(ctx context.Context, typ rdap.RequestType, query string, server *url.URL) (_ *rdap.Domain, _ []byte, u string, _ error) {
	srv := *server // openrdap's Request.URL modifies its Server
	req := &rdap.Request{Type: typ, Query: query, Server: &srv}
	u = req.URL().String()
	if err := c.polite.wait(ctx, srv.Host); err != nil {
		if errors.Is(err, ErrBackingOff) {
			c.counters.limited.Add(1)
		}
		return nil, nil, u, err
	}
	c.counters.rdap.Add(1)
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// A client per request: openrdap fills nil fields on first use, which
	// would race between concurrent lookups on a shared client.
	cl := &rdap.Client{HTTP: c.http, Bootstrap: &bootstrap.Client{}, Verbose: func(string) {}, UserAgent: userAgent}
	resp, err := cl.Do(req.WithContext(rctx))

	var hr *rdap.HTTPResponse
	if resp != nil && len(resp.HTTP) > 0 {
		hr = resp.HTTP[len(resp.HTTP)-1]
	}
	status := 0
	if hr != nil && hr.Response != nil {
		status = hr.Response.StatusCode
	}
	switch {
	case ctx.Err() != nil:
		return nil, nil, u, ctx.Err()
	case status == http.StatusTooManyRequests:
		c.counters.limited.Add(1)
		until := c.polite.limited(srv.Host, retryAfter(hr.Response.Header, c.now()))
		return nil, nil, u, fmt.Errorf("%w by %s (HTTP 429); not asking again before %s", ErrRateLimited, srv.Host, until.UTC().Format(time.RFC3339))
	case hr != nil && errors.Is(hr.Error, ErrTooLarge):
		return nil, nil, u, fmt.Errorf("%w (%d bytes) from %s", ErrTooLarge, MaxAnswer, srv.Host)
	case status == http.StatusNotFound:
		return nil, nil, u, fmt.Errorf("%w (%s answered HTTP 404)", ErrNotRegistered, srv.Host)
	case hr != nil && hr.Error != nil && status >= 200 && status < 300:
		return nil, nil, u, fmt.Errorf("%w: %s sent an invalid RDAP document: %v", ErrMalformed, srv.Host, hr.Error)
	case status != 0 && (status < 200 || status > 299):
		return nil, nil, u, fmt.Errorf("%s answered HTTP %d", srv.Host, status)
	case rctx.Err() != nil || (hr != nil && errors.Is(hr.Error, os.ErrDeadlineExceeded)):
		return nil, nil, u, fmt.Errorf("no answer from %s within %s", srv.Host, c.timeout)
	case hr != nil && hr.Error != nil:
		return nil, nil, u, fmt.Errorf("asking %s: %w", srv.Host, hr.Error)
	case err != nil:
		return nil, nil, u, fmt.Errorf("asking %s: %w", srv.Host, err)
	}
	c.polite.ok(srv.Host)
	switch obj := resp.Object.(type) {
	case *rdap.Domain:
		return obj, hr.Body, u, nil
	case *rdap.Error:
		return nil, nil, u, fmt.Errorf("%w: %s sent an RDAP error: %s %s", ErrMalformed, srv.Host, obj.Title, strings.Join(obj.Description, " "))
	}
	return nil, nil, u, fmt.Errorf("%w: %s sent an RDAP object that is not a domain", ErrMalformed, srv.Host)
}

// fromRDAP reads the fields nsguard needs from a domain object (RFC 9083,
// with the ICANN gTLD RDAP profile's registrar conventions).
func fromRDAP(d *rdap.Domain) *rdapData {
	out := &rdapData{}
	out.Statuses, out.Other = splitStatuses(d.Status, true)
	for _, e := range d.Events {
		t, ok := parseRegistryDate(e.Date, "")
		if !ok {
			continue
		}
		switch strings.ToLower(e.Action) {
		case "registration":
			out.Created = t
		case "expiration":
			out.Expiry = t
		case "last changed":
			out.Updated = t
		}
	}
	for _, ns := range d.Nameservers {
		out.NS = append(out.NS, ns.LDHName)
	}
	if sd := d.SecureDNS; sd != nil {
		out.DNSSEC.DelegationSigned = sd.DelegationSigned != nil && *sd.DelegationSigned
		for _, ds := range sd.DS {
			if ds.KeyTag == nil || ds.Algorithm == nil || ds.DigestType == nil || ds.Digest == "" {
				continue
			}
			out.DNSSEC.DS = append(out.DNSSEC.DS, fmt.Sprintf("%d %d %d %s", *ds.KeyTag, *ds.Algorithm, *ds.DigestType, strings.ToUpper(ds.Digest)))
		}
	}
	for i := range d.Entities {
		e := &d.Entities[i]
		if hasRole(e.Roles, "registrar") {
			out.Registrar = registrarFromEntity(e)
			break
		}
	}
	out.Registrant = entityRegistrant(d.Entities, 0)
	out.Redacted = redactedNames(d.DecodeData)
	for _, l := range d.Links {
		if !strings.EqualFold(l.Rel, "related") || l.Href == "" {
			continue
		}
		if l.Type != "" && !strings.Contains(strings.ToLower(l.Type), "rdap") {
			continue
		}
		if u, err := url.Parse(l.Href); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && strings.Contains(u.Path, "/domain/") {
			out.RegistrarLink = u
			break
		}
	}
	return out
}

func registrarFromEntity(e *rdap.Entity) Registrar {
	var r Registrar
	if e.VCard != nil {
		r.Name = e.VCard.Name()
		if r.Name == "" {
			r.Name = e.VCard.Org()
		}
	}
	for _, id := range e.PublicIDs {
		if strings.EqualFold(id.Type, "IANA Registrar ID") {
			r.IANAID = strings.TrimSpace(id.Identifier)
		}
	}
	if _, err := strconv.Atoi(e.Handle); r.IANAID == "" && err == nil {
		// The gTLD profile makes the registrar entity's handle its IANA ID.
		r.IANAID = e.Handle
	}
	for _, l := range e.Links {
		if strings.EqualFold(l.Rel, "about") && l.Href != "" {
			r.URL = l.Href
		}
	}
	for i := range e.Entities {
		sub := &e.Entities[i]
		if !hasRole(sub.Roles, "abuse") || sub.VCard == nil {
			continue
		}
		r.AbuseEmail = strings.ToLower(strings.TrimPrefix(sub.VCard.Email(), "mailto:"))
		r.AbusePhone = strings.TrimPrefix(sub.VCard.Tel(), "tel:")
	}
	return r
}

func hasRole(roles []string, want string) bool {
	for _, r := range roles {
		if strings.EqualFold(r, want) {
			return true
		}
	}
	return false
}

// redactedNames reads RFC 9537 "redacted" members: the names of withheld
// fields ("Registrant Name"). openrdap keeps unknown members undecoded.
func redactedNames(dd *rdap.DecodeData) []string {
	if dd == nil {
		return nil
	}
	list, ok := dd.Value("redacted").([]any)
	if !ok {
		return nil
	}
	var out []string
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		n, ok := m["name"].(map[string]any)
		if !ok {
			continue
		}
		for _, k := range []string{"type", "description"} {
			if s, ok := n[k].(string); ok && s != "" {
				out = append(out, s)
				break
			}
		}
	}
	return out
}
