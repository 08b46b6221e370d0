package reglab

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// answer is what a WHOIS server does for one query: write text, or
// misbehave in one of the Behaviour ways.
type answer struct {
	text string
	how  Behaviour
}

type whoisServer struct {
	lab  *Lab
	name string
	ln   net.Listener
	addr string
	fn   func(query string) answer

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startWhois(l *Lab, name string, fn func(string) answer) (*whoisServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &whoisServer{lab: l, name: name, ln: ln, addr: ln.Addr().String(), fn: fn, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *whoisServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handle(c)
		}()
	}
}

func (s *whoisServer) handle(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 1024)).ReadString('\n')
	if err != nil {
		return
	}
	q := strings.TrimSpace(line)
	s.lab.record(s.name, q)
	a := s.fn(q)
	c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	switch a.how {
	case Hang:
		// Read nothing more, write nothing, close nothing.
		<-s.lab.done
	case Huge:
		line := strings.Repeat("% padding: this registry's answer goes on and on and on and on.", 1) + "\r\n"
		buf := []byte(strings.Repeat(line, (64<<10)/len(line)))
		for n := 0; n < HugeSize; n += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	case Malformed:
		c.Write([]byte("\x00\x01\x02\xff\xfe binary \x1b[31m noise \xc3\x28 ::: [[[ ]]] \x00\r\n\xde\xad\xbe\xef"))
	default:
		io.WriteString(c, strings.ReplaceAll(a.text, "\n", "\r\n"))
	}
}

func (s *whoisServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// answerIANA answers like whois.iana.org for a TLD: the operator, its
// contacts, and "whois:" naming the lab's registry WHOIS server.
func (l *Lab) answerIANA(q string) answer {
	q = canonical(q)
	l.mu.Lock()
	t, ok := l.tlds[q]
	l.mu.Unlock()
	head := "%% IANA WHOIS server\n%% for more information on IANA, visit http://www.iana.org\n%% This query returned %d object%s\n\n"
	if !ok {
		return answer{text: fmt.Sprintf(head, 0, "s")}
	}
	var b strings.Builder
	fmt.Fprintf(&b, head, 1, "")
	fmt.Fprintf(&b, "refer:        %s\n\n", l.WhoisAddr())
	fmt.Fprintf(&b, "domain:       %s\n\n", strings.ToUpper(t.Name))
	fmt.Fprintf(&b, "organisation: %s\naddress:      Registry Street 1\naddress:      Registry Town\n\n", t.Operator)
	for _, c := range []struct {
		role string
		c    Contact
	}{{"administrative", t.Admin}, {"technical", t.Tech}} {
		if c.c == (Contact{}) {
			continue
		}
		fmt.Fprintf(&b, "contact:      %s\nname:         %s\norganisation: %s\naddress:      Registry Street 1\n", c.role, c.c.Name, c.c.Organisation)
		if c.c.Phone != "" {
			fmt.Fprintf(&b, "phone:        %s\n", c.c.Phone)
		}
		if c.c.Email != "" {
			fmt.Fprintf(&b, "e-mail:       %s\n", c.c.Email)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "nserver:      A.NIC.%s 192.0.2.53 2001:db8:0:0:0:0:0:53\n\n", strings.ToUpper(t.Name))
	fmt.Fprintf(&b, "whois:        %s\n\n", l.WhoisAddr())
	fmt.Fprintf(&b, "status:       ACTIVE\nremarks:      Registration information: https://nic.%s/\n\n", t.Name)
	b.WriteString("created:      1985-01-01\nchanged:      2023-12-07\nsource:       IANA\n")
	return answer{text: b.String()}
}

// Rate-limit refusals as the real registries word them.
var quotaText = map[string]string{
	"verisign": "WHOIS LIMIT EXCEEDED - SEE WWW.VERISIGN.COM FOR DETAILS\n",
	"pir":      "WHOIS LIMIT EXCEEDED - SEE WWW.PIR.ORG/WHOIS FOR DETAILS\n",
	"cnnic":    "Queried interval is too short.\n",
	"denic":    "55000000002 Connection refused; access control limit reached.\n",
	"jprs":     "Query rate limit exceeded. Please try again later.\n",
	"nicchile": "Ha excedido el límite de consultas (too many queries). Intente más tarde.\n",
}

// answerRegistry answers like the TLD's registry WHOIS.
func (l *Lab) answerRegistry(q string) answer {
	name := canonical(strings.TrimSuffix(q, "/e"))
	d, t, ok := l.lookup(name)
	if ok && d.WHOIS != Normal && d.WHOIS != NotFound {
		if d.WHOIS == RateLimited {
			return answer{text: quotaText[t.Format]}
		}
		return answer{how: d.WHOIS}
	}
	if !ok || d.WHOIS == NotFound {
		return answer{text: notFoundText(t.Format, name)}
	}
	switch t.Format {
	case "cnnic":
		return answer{text: cnnicText(d)}
	case "denic":
		return answer{text: denicText(d)}
	case "jprs":
		return answer{text: jprsText(d)}
	case "nicchile":
		return answer{text: nicChileText(d)}
	case "pir":
		return answer{text: gtldText(d, d.Expiry, "", true)}
	}
	ref := d.WhoisReferral
	if ref == "" {
		ref = l.RegistrarWhoisAddr()
	}
	return answer{text: gtldText(d, d.Expiry, ref, false)}
}

// answerRegistrar answers like a registrar's WHOIS (thick, its own expiry).
func (l *Lab) answerRegistrar(q string) answer {
	d, _, ok := l.lookup(q)
	if !ok || d.RegistrarWHOIS == NotFound {
		return answer{text: fmt.Sprintf("No match for %q.\n", strings.ToUpper(q))}
	}
	switch d.RegistrarWHOIS {
	case RateLimited:
		return answer{text: "Number of allowed queries exceeded.\n"}
	case Normal:
	default:
		return answer{how: d.RegistrarWHOIS}
	}
	exp := d.RegistrarExpiry
	if exp.IsZero() {
		exp = d.Expiry
	}
	return answer{text: registrarText(d, exp, l.RegistrarWhoisAddr())}
}

func notFoundText(format, name string) string {
	switch format {
	case "cnnic":
		return "No matching record.\n"
	case "denic":
		return fmt.Sprintf("Domain: %s\nStatus: free\n", name)
	case "jprs":
		return "[ JPRS database provides information on network administration. Its use is    ]\n[ restricted to network administration purposes.                              ]\n\nNo match!!\n"
	case "pir":
		return "NOT FOUND\n"
	case "nicchile":
		return fmt.Sprintf("%%%%\n%%%% This is the NIC Chile Whois server (whois.nic.cl).\n%%%%\n\n%s: no entries found.\n", name)
	}
	return fmt.Sprintf("No match for %q.\n>>> Last update of whois database: 2026-01-06T19:00:01Z <<<\n", strings.ToUpper(name))
}

// gtldText is the ICANN-specified registry layout (Verisign thin, PIR).
func gtldText(d Domain, expiry time.Time, referral string, thick bool) string {
	var b strings.Builder
	p := func(k, v string) { fmt.Fprintf(&b, "   %s: %s\n", k, v) }
	p("Domain Name", strings.ToUpper(d.Name))
	p("Registry Domain ID", strings.ToUpper(strings.ReplaceAll(d.Name, ".", "_"))+"_DOMAIN-LAB")
	p("Registrar WHOIS Server", referral)
	p("Registrar URL", "http://www."+slug(d.Registrar)+".example")
	p("Updated Date", rfc3339(d.Updated))
	p("Creation Date", rfc3339(d.Created))
	p("Registry Expiry Date", rfc3339(expiry))
	p("Registrar", d.Registrar)
	p("Registrar IANA ID", d.IANAID)
	p("Registrar Abuse Contact Email", d.AbuseEmail)
	p("Registrar Abuse Contact Phone", d.AbusePhone)
	for _, s := range d.Statuses {
		p("Domain Status", s+" https://icann.org/epp#"+s)
	}
	if thick {
		p("Registrant Organization", d.Registrant)
		p("Registrant Country", "US")
	}
	for _, n := range d.NS {
		p("Name Server", strings.ToUpper(n))
	}
	if len(d.DS) > 0 {
		p("DNSSEC", "signedDelegation")
		for _, ds := range d.DS {
			p("DNSSEC DS Data", ds)
		}
	} else {
		p("DNSSEC", "unsigned")
	}
	p("URL of the ICANN Whois Inaccuracy Complaint Form", "https://www.icann.org/wicf/")
	b.WriteString(">>> Last update of whois database: 2026-01-06T19:00:01Z <<<\n\n")
	b.WriteString(`For more information on Whois status codes, please visit https://icann.org/epp

NOTICE: The expiration date displayed in this record is the date the
registrar's sponsorship of the domain name registration in the registry is
currently set to expire. This date does not necessarily reflect the expiration
date of the domain name registrant's agreement with the sponsoring
registrar.  Users may consult the sponsoring registrar's Whois database to
view the registrar's reported date of expiration for this registration.

TERMS OF USE: You are not authorized to access or query our Whois
database through the use of electronic processes that are high-volume and
automated except as reasonably necessary to register domain names or
modify existing registrations.
`)
	return b.String()
}

// registrarText is a registrar's thick WHOIS (MarkMonitor's layout, with
// numeric zone offsets and the registrar's own expiry).
func registrarText(d Domain, expiry time.Time, self string) string {
	pdt := time.FixedZone("PDT", -7*3600)
	f := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(pdt).Format("2006-01-02T15:04:05-0700")
	}
	var b strings.Builder
	p := func(k, v string) { fmt.Fprintf(&b, "%s: %s\n", k, v) }
	p("Domain Name", d.Name)
	p("Registry Domain ID", strings.ToUpper(strings.ReplaceAll(d.Name, ".", "_"))+"_DOMAIN-LAB")
	p("Registrar WHOIS Server", self)
	p("Registrar URL", "http://www."+slug(d.Registrar)+".example")
	p("Updated Date", f(d.Updated))
	p("Creation Date", f(d.Created))
	p("Registrar Registration Expiration Date", f(expiry))
	p("Registrar", d.Registrar)
	p("Registrar IANA ID", d.IANAID)
	p("Registrar Abuse Contact Email", d.AbuseEmail)
	p("Registrar Abuse Contact Phone", d.AbusePhone)
	for _, s := range d.Statuses {
		p("Domain Status", s+" (https://www.icann.org/epp#"+s+")")
	}
	p("Registrant Organization", d.Registrant)
	p("Registrant Country", "US")
	p("Registrant Email", "Select Request Email Form at https://domains.registrar.example/whois")
	for _, n := range d.NS {
		p("Name Server", n)
	}
	if len(d.DS) > 0 {
		p("DNSSEC", "signedDelegation")
	} else {
		p("DNSSEC", "unsigned")
	}
	b.WriteString(">>> Last update of WHOIS database: 2026-01-06T11:00:01-0800 <<<\n\nThe data in this WHOIS database is provided for information purposes only.\n")
	return b.String()
}

// cnnicText is CNNIC's layout: Beijing local time, no zone.
func cnnicText(d Domain) string {
	cst := time.FixedZone("CST", 8*3600)
	var b strings.Builder
	p := func(k, v string) { fmt.Fprintf(&b, "%s: %s\n", k, v) }
	p("Domain Name", d.Name)
	p("ROID", "20030311s10001s00033735-cn")
	for _, s := range d.Statuses {
		p("Domain Status", s)
	}
	p("Registrant", d.Registrant)
	p("Registrant Contact Email", "dns-admin@"+d.Name)
	p("Sponsoring Registrar", d.Registrar)
	for _, n := range d.NS {
		p("Name Server", n)
	}
	p("Registration Time", d.Created.In(cst).Format("2006-01-02 15:04:05"))
	p("Expiration Time", d.Expiry.In(cst).Format("2006-01-02 15:04:05"))
	if len(d.DS) > 0 {
		p("DNSSEC", "signedDelegation")
	} else {
		p("DNSSEC", "unsigned")
	}
	return b.String()
}

// denicText is DENIC's public layout: no registrar, no expiry date.
func denicText(d Domain) string {
	var b strings.Builder
	b.WriteString("% Restricted rights.\n%\n% Terms and Conditions of Use\n%\n% The above data may only be used within the scope of technical or\n% administrative necessities of Internet operation or to remedy legal\n% problems.\n\n")
	fmt.Fprintf(&b, "Domain: %s\n", d.Name)
	for _, n := range d.NS {
		fmt.Fprintf(&b, "Nserver: %s\n", n)
	}
	for _, ds := range d.DS {
		fmt.Fprintf(&b, "Dnskey: %s\n", ds)
	}
	status := "connect"
	if len(d.OtherStatuses) > 0 {
		status = d.OtherStatuses[0]
	}
	fmt.Fprintf(&b, "Status: %s\n", status)
	fmt.Fprintf(&b, "Changed: %s\n", d.Updated.In(time.FixedZone("CET", 3600)).Format(time.RFC3339))
	return b.String()
}

// jprsText is JPRS's English layout ("/e"): bracketed keys, JST dates.
func jprsText(d Domain) string {
	jst := time.FixedZone("JST", 9*3600)
	var b strings.Builder
	b.WriteString("[ JPRS database provides information on network administration. Its use is    ]\n[ restricted to network administration purposes. For further information,     ]\n[ use 'whois -h whois.jprs.jp help'. To suppress Japanese output, add'/e'     ]\n[ at the end of command, e.g. 'whois -h whois.jprs.jp xxx/e'.                 ]\n\n")
	b.WriteString("Domain Information:\n")
	p := func(k, v string) { fmt.Fprintf(&b, "%-32s%s\n", "["+k+"]", v) }
	p("Domain Name", strings.ToUpper(d.Name))
	b.WriteString("\n")
	p("Registrant", d.Registrant)
	b.WriteString("\n")
	for _, n := range d.NS {
		p("Name Server", n)
	}
	p("Signing Key", strings.Join(d.DS, " "))
	b.WriteString("\n")
	p("Created on", d.Created.In(jst).Format("2006/01/02"))
	p("Expires on", d.Expiry.In(jst).Format("2006/01/02"))
	p("Status", "Active")
	for _, s := range d.OtherStatuses {
		p("Lock Status", s)
	}
	p("Last Updated", d.Updated.In(jst).Format("2006/01/02 15:04:05")+" (JST)")
	b.WriteString("\nContact Information:\n")
	p("Name", d.Registrant)
	p("Email", "dns-admin@"+d.Name)
	return b.String()
}

// nicChileText is NIC Chile's layout: Spanish labels, dates in Chilean
// summer time with the zone abbreviation, no EPP statuses, and terms of
// use that talk about excessive queries.
func nicChileText(d Domain) string {
	clst := time.FixedZone("CLST", -3*3600)
	var b strings.Builder
	b.WriteString("%%\n%% This is the NIC Chile Whois server (whois.nic.cl).\n%%\n%% Rights restricted by copyright.\n" +
		"%% See https://www.nic.cl/normativa/politica-publicacion-de-datos-cl.pdf\n%%\n\n")
	p := func(k, v string) { fmt.Fprintf(&b, "%s: %s\n", k, v) }
	p("Nombre de dominio", d.Name)
	p("Titular", d.Registrant)
	p("Agente Registrador", d.Registrar)
	p("Fecha de creación", d.Created.In(clst).Format("2006-01-02 15:04:05 MST"))
	p("Fecha de expiración", d.Expiry.In(clst).Format("2006-01-02 15:04:05 MST"))
	for _, n := range d.NS {
		p("Servidor de Nombre", n)
	}
	b.WriteString("\n%%\n%% Para comunicarse con los contactos del dominio use el sitio web.\n" +
		"%% No haga consultas excesivas (do not make excessive queries).\n%%\n")
	return b.String()
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "registrar"
	}
	return b.String()
}
