package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("grafana/nsguard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatal("grafana/nsguard.json is not valid JSON")
	}
	var d grafanaDashboard
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("uid %q, title %q, schemaVersion %d: all are needed for provisioning", d.UID, d.Title, d.SchemaVersion)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" {
			hasDS = true
		}
		if m := regexp.MustCompile(`label_values\((\w+)`).FindStringSubmatch(v.Definition); m != nil && !exportedMetrics[m[1]] {
			t.Errorf("variable %s queries %s, which nsguard does not export", v.Name, m[1])
		}
	}
	if !hasDS {
		t.Error("no datasource variable: the dashboard would be tied to one Prometheus")
	}

	ids := map[int]bool{}
	used := map[string]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
			}
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if other, ok := taken[cell{x, y}]; ok {
						t.Errorf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
						goto placed
					}
					taken[cell{x, y}] = p.Title
				}
			}
		placed:
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				names, err := promqlMetrics(tg.Expr)
				if err != nil {
					t.Errorf("panel %q: %v", p.Title, err)
					continue
				}
				bad, _ := unknownMetrics(tg.Expr)
				if len(bad) > 0 {
					t.Errorf("panel %q queries %v, which nsguard does not export", p.Title, bad)
				}
				for _, n := range names {
					used[n] = true
				}
			}
		}
	}
	walk(d.Panels)

	// Every nsguard series appears somewhere (the histogram through _bucket).
	for m := range exportedMetrics {
		if strings.HasPrefix(m, "nsguard_") && !strings.HasSuffix(m, "_sum") && !strings.HasSuffix(m, "_count") && !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}
