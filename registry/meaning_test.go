package registry

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// WHOIS answers read by meaning: labels that say expiry in any language,
// lines without a "key: value" shape, any common date shape, the day/month
// order decided from the answer, registrars printed as a block. Each row is
// a small answer in a registry's style; the expiry is checked to the
// registry's calendar date (east of UTC may land on the day before).
func TestParseWhoisByMeaning(t *testing.T) {
	for _, tc := range []struct {
		name, tld, answer string
		expiry            string // YYYY-MM-DD as printed
		registrar         string
		note              string // a parse note must contain this ("" = no note required)
	}{
		{"Spanish", "es", "Nombre de dominio: ejemplo.es\nFecha de creación: 15/03/2010\nFecha de vencimiento: 15/03/2027\nAgente Registrador: Registrador Ejemplo SL\n",
			"2027-03-15", "Registrador Ejemplo SL", ""},
		{"Spanish month name", "cl", "Nombre de dominio: ejemplo.cl\nFecha de expiración: 23 de agosto de 2027 (10:10:08 GMT)\nRegistrado por: NIC Chile\n",
			"2027-08-23", "NIC Chile", ""},
		{"Portuguese", "pt", "Nome de domínio / Domain Name: exemplo.pt\nData de expiração / Expiration Date (dd/mm/yyyy): 02/03/2027\nRegistrador: Exemplo Lda\n",
			"2027-03-02", "Exemplo Lda", ""},
		{"Portuguese, vencimento", "br", "domínio: exemplo.com.br\ncriado: 20100315\nvencimento: 20270315\n", "2027-03-15", "", ""},
		{"French", "fr", "nom de domaine: exemple.fr\nDate de création: 15/03/2010\nDate d'expiration: 15 mars 2027\nBureau d'enregistrement: OVH SAS\n",
			"2027-03-15", "OVH SAS", ""},
		{"French, échéance", "fr", "domaine: exemple.fr\nDate d'échéance: 02/03/2027\n", "2027-03-02", "", ""},
		{"German", "at", "Domain: beispiel.at\nRegistriert: 15.03.2010\nAblaufdatum: 02.03.2027\nRegistrar: Beispiel GmbH\n",
			"2027-03-02", "Beispiel GmbH", ""},
		{"German, gültig bis", "li", "Domainname: beispiel.li\nGültig bis: 2. März 2027\n", "2027-03-02", "", ""},
		{"Italian", "it", "Dominio: esempio.it\nData di creazione: 2010-03-15\nData di scadenza: 15 marzo 2027\n", "2027-03-15", "", ""},
		{"Dutch", "nl", "Domeinnaam: voorbeeld.nl\nVervaldatum: 15-03-2027\n", "2027-03-15", "", ""},
		{"Polish", "pl", "nazwa domeny: przyklad.pl\ndata wygaśnięcia: 2027.03.15 13:00:00\n", "2027-03-15", "", ""},
		{"Turkish", "tr", "** Domain Name: ornek.com.tr\nBitiş Tarihi..........: 15-Mar-2027.\n", "2027-03-15", "", ""},
		{"Russian", "ru", "domain: ПРИМЕР.РФ\nДата окончания регистрации: 15.03.2027\n", "2027-03-15", "", ""},
		{"Russian, paid-till", "ru", "domain: PRIMER.RU\nstate: REGISTERED, DELEGATED\nregistrar: RU-CENTER-RU\npaid-till: 2027-03-15T21:00:00Z\nfree-date: 2027-04-16\n",
			"2027-03-15", "RU-CENTER-RU", ""},
		{"Chinese", "cn", "域名: 例子.中国\n注册商: 示例注册商\n注册时间: 2010年03月15日\n过期时间: 2027年03月15日\n", "2027-03-15", "示例注册商", ""},
		{"Japanese", "jp", "[ドメイン名] EXAMPLE.JP\n[登録年月日] 2010/03/15\n[有効期限] 2027/03/31\n", "2027-03-31", "", ""},
		{"Korean", "kr", "도메인이름 : example.kr\n등록일 : 2010. 03. 15.\n사용 종료일 : 2027. 03. 15.\n등록대행자 : (주)가비아\n", "2027-03-15", "(주)가비아", ""},
		{"no key: value shape", "mo", "Domain Name: example.mo\nRecord created on 2018-02-05 22:59:12.55172\nRecord expires on 2027-02-05\n", "2027-02-05", "", ""},
		{".tw split at the clock's colon", "tw", "Domain Name: example.tw\n   Record expires on 2027-12-09 12:30:05 (UTC+8)\n   Record created on 2012-12-09 12:30:05 (UTC+8)\n",
			"2027-12-09", "", ""},
		{"month first, from the answer's other date", "tk", "Domain name:\n   EXAMPLE.TK\n   Domain registered: 12/18/2001\n   Record will expire on: 03/02/2027\n",
			"2027-03-02", "", "month first by the answer's \"12/18/2001\""},
		{"day first, from the answer's other date", "com", "Domain Name: example.com\nCreated: 18/12/2001\nExpires: 03/02/2027\n", "2027-02-03", "", ""},
		{"dotted, dot leader", "fi", "domain.............: example.fi\nexpires............: 4.7.2027 10:15:55\n", "2027-07-04", "", ""},
		{"dashed day first", "hk", "Domain Name: EXAMPLE.HK\nExpiry Date: 11-07-2027\n", "2027-07-11", "", ""},
		{"Korean dotted", "kr", "Domain Name : example.kr\nExpiration Date : 2027. 05. 19.\n", "2027-05-19", "", ""},
		{"compact", "br", "domain: example.com.br\nexpires: 20270519\n", "2027-05-19", "", ""},
		{"weekday first, zone abbreviation", "co", "Domain Name: EXAMPLE.CO\nDomain Expiration Date: Mon Apr 26 23:59:59 GMT 2027\n", "2027-04-26", "", ""},
		{"two-digit year", "com", "Domain Name: EXAMPLE.COM\n   Expires on: 01-Nov-27\n   Created on: 02-Mar-99\n", "2027-11-01", "", ""},
		{"registrar block (Nominet)", "uk", "    Domain name:\n        example.co.uk\n\n    Registrar:\n        Example Registrar Ltd t/a Example [Tag = EXAMPLE]\n        URL: http://www.example.net\n\n    Relevant dates:\n        Registered on: 14-Feb-1999\n        Expiry date:  14-Feb-2027\n",
			"2027-02-14", "Example Registrar Ltd", ""},
		{"registrar block (.it)", "it", "Domain:             example.it\nExpire Date:        2027-04-21\n\nRegistrar\n  Organization:     Example Registrar Srl\n  Name:             EXAMPLE-REG\n",
			"2027-04-21", "Example Registrar Srl", ""},
		{"registrar block (.pl)", "pl", "DOMAIN NAME:           example.pl\nrenewal date:          2027.09.18 14:00:00\noption expiration date:       2028.10.14 09:29:47\n\nREGISTRAR:\nExample Registrar S.A.\nul. Przykładowa 1\n",
			"2027-09-18", "Example Registrar S.A.", ""},
		{"expiry beats a past renewal", "th", "Domain: EXAMPLE.CO.TH\nRegistrar: T.H.NIC Co., Ltd.\nUpdated date: 7 Sep 2026\nRenew date: 8 Oct 2026\nExp date: 7 Oct 2027\n",
			"2027-10-07", "T.H.NIC Co., Ltd.", ""},
		{"a contact's dates are not the domain's", "tn", "Domain   \t: example.tn\nAdmin. Created\t: 2030-05-14 00:00:00\nExpires\t: 2027-05-14\n", "2027-05-14", "", ""},
		{"registry label beats the registrar's (better labelled)", "com",
			"Domain Name: EXAMPLE.COM\nCreation Date: 2010-01-01T00:00:00Z\nRegistrar Registration Expiration Date: 2026-06-01T00:00:00Z\nRegistry Expiry Date: 2027-01-01T00:00:00Z\nRegistrar: Example Registrar, Inc.\n",
			"2027-01-01", "Example Registrar, Inc.", "better labelled; whois-parser read 2026-06-01"},
		{"the date consistent with creation wins", "com",
			"Domain Name: EXAMPLE.COM\nCreation Date: 2010-01-01T00:00:00Z\nRegistrar Registration Expiration Date: 2027-06-01T00:00:00Z\nRegistry Expiry Date: 2009-01-01T00:00:00Z\nRegistrar: Example Registrar, Inc.\n",
			"2027-06-01", "Example Registrar, Inc.", "consistent with the answer's other dates; nsguard read 2009-01-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wd, err := parseWhois(tc.answer, tc.tld)
			if err != nil {
				t.Fatalf("parseWhois: %v", err)
			}
			if !rightDay(wd.Expiry, tc.expiry) {
				t.Errorf("expiry = %v, want %s", wd.Expiry, tc.expiry)
			}
			if tc.registrar != "" && wd.Registrar.Name != tc.registrar {
				t.Errorf("registrar = %q, want %q", wd.Registrar.Name, tc.registrar)
			}
			if tc.note != "" && !strings.Contains(strings.Join(wd.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", wd.Notes, tc.note)
			}
			// The same answer over the wire, CRLF line endings, reads the same.
			crlf, err := parseWhois(strings.ReplaceAll(tc.answer, "\n", "\r\n"), tc.tld)
			if err != nil || !crlf.Expiry.Equal(wd.Expiry) || crlf.Registrar.Name != wd.Registrar.Name {
				t.Errorf("CRLF reads differently: %v %v %q", err, crlf, wd.Registrar.Name)
			}
		})
	}
}

// Zones: an offset or zone name in the text wins; a bare date is in the
// registry's zone.
func TestParseWhoisDateZones(t *testing.T) {
	for _, tc := range []struct{ answer, tld, want string }{
		{"Domain: x.com\nExpiry Date: 2027-03-15 23:30:00 EST\n", "com", "2027-03-16T04:30:00Z"},
		{"Domain: x.cl\nFecha de expiración: 2027-11-20 14:48:02 CLST\n", "cl", "2027-11-20T17:48:02Z"},
		{"Domain: x.br\nexpires: 2027-07-23 15:43:32 (BRT -03:00)\n", "br", "2027-07-23T18:43:32Z"},
		{"Domain Name: x.cn\nExpiration Time: 2027-03-17 12:48:36\n", "cn", "2027-03-17T04:48:36Z"},
		{"Domain Name: x.ua\nexpires: 2027-07-21 18:03:50+03\n", "ua", "2027-07-21T15:03:50Z"},
	} {
		wd, err := parseWhois(tc.answer, tc.tld)
		if err != nil {
			t.Errorf("%q: %v", tc.answer, err)
			continue
		}
		if got := wd.Expiry.Format(time.RFC3339); got != tc.want {
			t.Errorf("%q: expiry %s, want %s", tc.answer, got, tc.want)
		}
	}
}

// What is a record, a refusal or a missing domain is decided by what the
// answer states, not by phrases in its terms of use or its addresses.
func TestParseWhoisRecordOrRefusal(t *testing.T) {
	record := "Domain Name: EXAMPLE.COM\nRegistrar: Example Registrar, Inc.\nCreation Date: 2010-01-01T00:00:00Z\nRegistry Expiry Date: 2027-01-01T00:00:00Z\n"
	for _, tc := range []struct {
		name, answer, tld string
		want              error // nil: a record
	}{
		{"terms of use: make excessive queries", record + "\nBy querying you agree not to make excessive queries.\n", "com", nil},
		{"terms of use: exceed the query limit", record + "You must not exceed our query rate limit; too many queries will be blocked.\n", "com", nil},
		{"not found, terms mention excessive queries", "No match for \"EXAMPLE.COM\".\nBy using this service you agree not to make excessive queries.\n", "com", ErrNotRegistered},
		{"a refusal", "Error: too many queries from your address. Please try again later.\n", "com", ErrRateLimited},
		{"Spanish labels", "Nombre de dominio: ejemplo.cl\nTitular: Ejemplo SpA\nAgente Registrador: NIC Chile\nFecha de expiración: 2027-01-01 00:00:00 CLST\nServidor de Nombre: ns1.ejemplo.cl\n", "cl", nil},
		{"addresses say NOT AVAILABLE", "Titular:\nEjemplo S.A.\n    NOT AVAILABLE    NOT AVAILABLE\n\n   Nombre de Dominio: ejemplo.uy\n   Fecha de Creacion: 2012-07-03 20:58:58\n\n   Servidor(es) de Nombres de Dominio:\n\n   - ns1.ejemplo.uy\n", "uy", nil},
		{"not found in Spanish, no facts", "%% whois.nic.cl\n\nejemplo.cl: no entries found.\n", "cl", ErrNotRegistered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wd, err := parseWhois(tc.answer, tc.tld)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("parseWhois = %v, want a record", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("parseWhois = %v (%+v), want %v", err, wd, tc.want)
			}
			if got := isQuotaAnswer(tc.answer); got != errors.Is(tc.want, ErrRateLimited) {
				t.Errorf("isQuotaAnswer = %v", got)
			}
		})
	}
}
