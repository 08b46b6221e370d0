package registry

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nsguard/nsguard/config"
)

// ExpectedContacts are the contacts: keys every emergency sheet should
// have, with what they are for. A missing one is listed as missing.
var ExpectedContacts = []struct{ Key, Purpose string }{
	{"icann", "ICANN compliance (gTLD registrar disputes)"},
	{"registrar_account_manager", "our account manager at the registrar"},
	{"legal", "our internal IP/legal department"},
}

// ContactSheet is whom the on-call calls when a domain is in trouble at
// the registry: the registrar, the TLD's registry operator, and our own
// configured contacts. Missing lists every piece nsguard could not fill.
type ContactSheet struct {
	Domain      string              `json:"domain"`
	TLD         string              `json:"tld"`
	Registrar   RegistrarContact    `json:"registrar"`
	Registry    RegistryContact     `json:"registry"`
	Configured  []ConfiguredContact `json:"configured"`
	Missing     []string            `json:"missing"`
	GeneratedAt time.Time           `json:"generated_at"`
}

// RegistrarContact is the sponsoring registrar and its abuse desk.
type RegistrarContact struct {
	Name       string `json:"name,omitempty"`
	IANAID     string `json:"iana_id,omitempty"`
	AbuseEmail string `json:"abuse_email,omitempty"`
	AbusePhone string `json:"abuse_phone,omitempty"`
	URL        string `json:"url,omitempty"`
	// Source says which server the data came from.
	Source string `json:"source,omitempty"`
}

// RegistryContact is the TLD's registry operator as IANA lists it.
type RegistryContact struct {
	Operator        string `json:"operator,omitempty"`
	Administrative  Person `json:"administrative"`
	Technical       Person `json:"technical"`
	RegistrationURL string `json:"registration_url,omitempty"`
	Source          string `json:"source,omitempty"`
}

// ConfiguredContact is one entry of the config's contacts: section.
type ConfiguredContact struct {
	Key   string `json:"key"`
	Name  string `json:"name,omitempty"`
	Role  string `json:"role,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	URL   string `json:"url,omitempty"`
	Notes string `json:"notes,omitempty"`
}

// Complete reports whether nothing is missing.
func (s *ContactSheet) Complete() bool { return len(s.Missing) == 0 }

// Contacts builds the emergency contact sheet for domain. Lookup failures
// do not fail the sheet: what is known is shown and the rest is listed in
// Missing. The error is for an invalid domain or a cancelled context.
func (c *Client) Contacts(ctx context.Context, domain string) (*ContactSheet, error) {
	name, err := config.NormalizeDomain(domain)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidDomain, err)
	}
	tld := tldOf(name)
	s := &ContactSheet{Domain: name, TLD: tld, GeneratedAt: c.now().UTC().Truncate(time.Second)}
	missing := func(format string, args ...any) { s.Missing = append(s.Missing, fmt.Sprintf(format, args...)) }

	rec, err := c.Lookup(ctx, name)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		missing("registrar: registration lookup failed: %v", err)
	} else {
		r := rec.Registrar
		s.Registrar = RegistrarContact{Name: r.Name, IANAID: r.IANAID, AbuseEmail: r.AbuseEmail,
			AbusePhone: r.AbusePhone, URL: r.URL, Source: rec.Source + " " + rec.Server}
		from := rec.Source + " " + rec.Server
		if r.Name == "" {
			missing("registrar name (not published by %s)", from)
		}
		if r.IANAID == "" {
			missing("registrar IANA ID (not published by %s)", from)
		}
		if r.AbuseEmail == "" {
			missing("registrar abuse email (not published by %s)", from)
		}
		if r.AbusePhone == "" {
			missing("registrar abuse phone (not published by %s)", from)
		}
	}

	info, err := c.tldInfo(ctx, tld)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		missing("registry operator of .%s: %v", tld, err)
	} else {
		s.Registry = RegistryContact{Operator: info.Organisation, Administrative: info.Admin, Technical: info.Tech,
			RegistrationURL: info.RegistrationURL, Source: "whois " + info.Server + " (fetched " + info.FetchedAt.Format(time.RFC3339) + ")"}
		if info.Organisation == "" {
			missing("registry operator name for .%s (IANA lists none)", tld)
		}
		if info.Admin.empty() {
			missing("registry administrative contact for .%s (IANA lists none)", tld)
		}
		if info.Tech.empty() {
			missing("registry technical contact for .%s (IANA lists none)", tld)
		}
	}

	keys := make([]string, 0, len(c.cfg.Contacts))
	for k := range c.cfg.Contacts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ct := c.cfg.Contacts[k]
		s.Configured = append(s.Configured, ConfiguredContact{Key: k, Name: ct.Name, Role: ct.Role,
			Email: ct.Email, Phone: ct.Phone, URL: ct.URL, Notes: ct.Notes})
	}
	for _, e := range ExpectedContacts {
		if _, ok := c.cfg.Contacts[e.Key]; !ok {
			missing("contacts.%s: %s (not configured)", e.Key, e.Purpose)
		}
	}
	if s.Missing == nil {
		s.Missing = []string{}
	}
	if s.Configured == nil {
		s.Configured = []ConfiguredContact{}
	}
	return s, nil
}

// Markdown renders the sheet for a wiki page, a Slack message or an
// incident document.
func (s *ContactSheet) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Emergency contacts: %s\n\n", s.Domain)
	fmt.Fprintf(&b, "Generated %s.\n\n", s.GeneratedAt.Format(time.RFC3339))

	b.WriteString("## Registrar\n\n| | |\n|---|---|\n")
	for _, row := range [][2]string{
		{"Name", s.Registrar.Name}, {"IANA ID", s.Registrar.IANAID},
		{"Abuse email", s.Registrar.AbuseEmail}, {"Abuse phone", s.Registrar.AbusePhone},
		{"Web", s.Registrar.URL}, {"Source", s.Registrar.Source},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], mdCell(row[1]))
	}

	fmt.Fprintf(&b, "\n## Registry (.%s)", s.TLD)
	if s.Registry.Operator != "" {
		fmt.Fprintf(&b, ": %s", mdCell(s.Registry.Operator))
	}
	b.WriteString("\n\n| Contact | Name | Email | Phone |\n|---|---|---|---|\n")
	for _, p := range []struct {
		role string
		p    Person
	}{{"Administrative", s.Registry.Administrative}, {"Technical", s.Registry.Technical}} {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", p.role, mdCell(personName(p.p)), mdCell(p.p.Email), mdCell(p.p.Phone))
	}
	if s.Registry.RegistrationURL != "" {
		fmt.Fprintf(&b, "\nRegistration information: %s\n", s.Registry.RegistrationURL)
	}
	if s.Registry.Source != "" {
		fmt.Fprintf(&b, "\nSource: %s\n", mdCell(s.Registry.Source))
	}

	b.WriteString("\n## Our contacts\n\n")
	if len(s.Configured) == 0 {
		b.WriteString("None configured.\n")
	} else {
		b.WriteString("| Who | Name | Role | Email | Phone | URL | Notes |\n|---|---|---|---|---|---|---|\n")
		for _, c := range s.Configured {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", mdCell(c.Key), mdCell(c.Name), mdCell(c.Role),
				mdCell(c.Email), mdCell(c.Phone), mdCell(c.URL), mdCell(c.Notes))
		}
	}
	b.WriteString("\n## Missing\n\n")
	if len(s.Missing) == 0 {
		b.WriteString("Nothing: the sheet is complete.\n")
	}
	for _, m := range s.Missing {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	return b.String()
}

// Text renders the sheet as an aligned table for a terminal.
func (s *ContactSheet) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Emergency contacts for %s (generated %s)\n\n", s.Domain, s.GeneratedAt.Format(time.RFC3339))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WHO\tNAME\tEMAIL\tPHONE\tNOTES")
	reg := s.Registrar.Name
	if s.Registrar.IANAID != "" {
		reg += " (IANA " + s.Registrar.IANAID + ")"
	}
	fmt.Fprintf(tw, "registrar abuse\t%s\t%s\t%s\t%s\n", dash(reg), dash(s.Registrar.AbuseEmail), dash(s.Registrar.AbusePhone), s.Registrar.URL)
	for _, p := range []struct {
		role string
		p    Person
	}{{"administrative", s.Registry.Administrative}, {"technical", s.Registry.Technical}} {
		fmt.Fprintf(tw, "registry .%s %s\t%s\t%s\t%s\t%s\n", s.TLD, p.role, dash(personName(p.p)), dash(p.p.Email), dash(p.p.Phone), s.Registry.RegistrationURL)
	}
	for _, c := range s.Configured {
		name := c.Name
		if c.Role != "" {
			name = strings.TrimSpace(name + " (" + c.Role + ")")
		}
		notes := strings.TrimSpace(strings.Join([]string{c.URL, c.Notes}, " "))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Key, dash(name), dash(c.Email), dash(c.Phone), notes)
	}
	tw.Flush()
	if len(s.Missing) > 0 {
		b.WriteString("\nMissing:\n")
		for _, m := range s.Missing {
			fmt.Fprintf(&b, "  - %s\n", m)
		}
	}
	return b.String()
}

func personName(p Person) string {
	switch {
	case p.Name != "" && p.Organisation != "" && p.Organisation != p.Name:
		return p.Name + ", " + p.Organisation
	case p.Name != "":
		return p.Name
	}
	return p.Organisation
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
