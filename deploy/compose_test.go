package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const composeFile = "compose/compose.yaml"

// composeBuild is a service's build: the image orderflow's Dockerfile
// makes, with the version it reports.
type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
}

// composeService is the part of a compose service the tests read.
type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Profiles    []string          `yaml:"profiles"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck map[string]any    `yaml:"healthcheck"`
	DependsOn   any               `yaml:"depends_on"`
	Networks    map[string]struct {
		Aliases []string `yaml:"aliases"`
	} `yaml:"networks"`
}

// dependsOn returns the service's dependencies and their conditions
// (the short list form has condition service_started).
func (s composeService) dependsOn() map[string]string {
	out := map[string]string{}
	switch d := s.DependsOn.(type) {
	case []any:
		for _, n := range d {
			out[fmt.Sprint(n)] = "service_started"
		}
	case map[string]any:
		for n, v := range d {
			m, _ := v.(map[string]any)
			out[n] = fmt.Sprint(m["condition"])
		}
	}
	return out
}

func loadCompose(t *testing.T) map[string]composeService {
	t.Helper()
	src, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(src, &f); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	if len(f.Services) == 0 {
		t.Fatalf("%s has no services", composeFile)
	}
	return f.Services
}

// orderflowServices are the services that run the orderflow image.
func orderflowServices(svcs map[string]composeService) map[string]composeService {
	out := map[string]composeService{}
	for name, s := range svcs {
		if s.Build != nil || s.Image == "orderflow:local" {
			out[name] = s
		}
	}
	return out
}

func TestComposeHasTheWholeStack(t *testing.T) {
	svcs := loadCompose(t)
	for _, name := range []string{"localstack", "moto", "init", "api", "processor", "prometheus", "grafana", "otel-collector", "jaeger"} {
		if _, ok := svcs[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}
	of := orderflowServices(svcs)
	if got := sortedKeys(of); !slices.Equal(got, []string{"api", "init", "processor"}) {
		t.Errorf("services running the orderflow image: %v, want api, init, processor", got)
	}
	for name, s := range of {
		if b := s.Build; b == nil || b.Context != "../.." || b.Dockerfile != "Dockerfile" || s.Image != "orderflow:local" {
			t.Errorf("%s builds %+v as %q, want the repository's Dockerfile (context ../..) as orderflow:local", name, b, s.Image)
		} else if want := map[string]string{"VERSION": "${VERSION:-}", "COMMIT": "${COMMIT:-}", "DATE": "${DATE:-}"}; !maps.Equal(b.Args, want) {
			t.Errorf("%s passes the build args %v, want %v: the Dockerfile's, for what orderflow version reports", name, b.Args, want)
		}
	}
	if _, err := os.Stat(filepath.Join("compose", svcs["init"].Build.Context, "Dockerfile")); err != nil {
		t.Errorf("build context: %v", err)
	}
}

func TestComposeEmulatorsAreInterchangeable(t *testing.T) {
	svcs := loadCompose(t)
	dotenv, err := os.ReadFile("compose/.env")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dotenv), "\nCOMPOSE_PROFILES=localstack\n") {
		t.Errorf("compose/.env must make LocalStack the default: COMPOSE_PROFILES=localstack")
	}
	for name, profile := range map[string]string{"localstack": "localstack", "moto": "moto"} {
		s := svcs[name]
		if !slices.Equal(s.Profiles, []string{profile}) {
			t.Errorf("%s has profiles %v, want [%s]", name, s.Profiles, profile)
		}
		if !slices.Contains(s.Networks["default"].Aliases, "aws") {
			t.Errorf("%s must answer as aws on the compose network", name)
		}
		if !slices.Contains(s.Ports, "4566:4566") {
			t.Errorf("%s ports %v, want 4566:4566 (the port of dev.tfvars)", name, s.Ports)
		}
		if s.Healthcheck == nil {
			t.Errorf("%s needs a healthcheck: init waits for service_healthy", name)
		}
	}
	if ep := strings.Join(svcs["moto"].Entrypoint, " "); !strings.Contains(ep, "moto_server") || !strings.Contains(ep, "-p 4566") {
		t.Errorf("moto's entrypoint %q must run moto_server on port 4566", ep)
	}
	if !strings.HasPrefix(interpolate(svcs["moto"].Image), "motoserver/moto:") {
		t.Errorf("moto image %q, want motoserver/moto", svcs["moto"].Image)
	}
	deps := svcs["init"].dependsOn()
	for _, emu := range []string{"localstack", "moto"} {
		if deps[emu] != "service_healthy" {
			t.Errorf("init depends on %s with %q, want service_healthy", emu, deps[emu])
		}
	}
}

// Every orderflow service runs a real subcommand with real settings.
func TestComposeServicesUseTheBinarysCommandsAndSettings(t *testing.T) {
	svcs := loadCompose(t)
	cmds := subcommands(t)
	settings := appSettings(t)
	// The AWS SDK's credential chain reads these; they are not orderflow's.
	sdkEnv := map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true}
	for name, s := range orderflowServices(svcs) {
		if len(s.Command) == 0 || !cmds[s.Command[0]] {
			t.Errorf("%s runs %v, not an orderflow command (orderflow help lists %v)", name, s.Command, sortedKeys(cmds))
		}
		if len(s.Command) > 0 && s.Command[0] != name {
			t.Errorf("service %s runs orderflow %s", name, s.Command[0])
		}
		for k := range s.Environment {
			if _, ok := settings[k]; !ok && !sdkEnv[k] {
				t.Errorf("%s sets %s, which is no orderflow setting (cmd/orderflow/config.go)", name, k)
			}
		}
		env := s.Environment
		if ep := env["AWS_ENDPOINT_URL"]; ep != "http://aws:4566" {
			t.Errorf("%s AWS_ENDPOINT_URL = %q, want http://aws:4566", name, ep)
		}
	}
	for _, name := range []string{"api", "processor"} {
		env := svcs[name].Environment
		q, dlq, table := interpolate(env["SQS_QUEUE_URL"]), interpolate(env["SQS_DLQ_URL"]), interpolate(env["DDB_TABLE"])
		if !strings.HasSuffix(q, "/"+env["ORDERFLOW_QUEUE_NAME"]) || !strings.HasSuffix(dlq, "/"+env["ORDERFLOW_DLQ_NAME"]) || table != env["ORDERFLOW_TABLE_NAME"] {
			t.Errorf("%s uses queue %s, DLQ %s, table %s: not the ones init makes (%s, %s, %s)", name,
				q, dlq, table, env["ORDERFLOW_QUEUE_NAME"], env["ORDERFLOW_DLQ_NAME"], env["ORDERFLOW_TABLE_NAME"])
		}
		if u, err := url.Parse(q); err != nil || u.Host != "aws:4566" {
			t.Errorf("%s SQS_QUEUE_URL %q should point at the emulator aws:4566", name, q)
		}
		if got := svcs[name].dependsOn()["init"]; got != "service_completed_successfully" {
			t.Errorf("%s depends on init with %q, want service_completed_successfully", name, got)
		}
	}
	if got := svcs["api"].Environment["ORDERFLOW_API_ADDR"]; got != ":8000" || !slices.Contains(svcs["api"].Ports, "8000:8000") {
		t.Errorf("api listens on %q with ports %v, want :8000 published as 8000", got, svcs["api"].Ports)
	}
	if got := svcs["processor"].Environment["ORDERFLOW_PROCESSOR_ADDR"]; got != ":9090" || !slices.Contains(svcs["processor"].Ports, "9090:9090") {
		t.Errorf("processor listens on %q with ports %v, want :9090 published as 9090", got, svcs["processor"].Ports)
	}
}

func TestComposePrometheusScrapesBothWithTheRules(t *testing.T) {
	svcs := loadCompose(t)
	p := svcs["prometheus"]
	if len(p.Ports) != 1 || !strings.HasSuffix(p.Ports[0], ":9090") || strings.HasPrefix(p.Ports[0], "9090:") || strings.HasPrefix(p.Ports[0], "8000:") {
		t.Errorf("prometheus ports %v: want its 9090 published on a port that is not the api's or the processor's", p.Ports)
	}
	mounts := map[string]string{}
	for _, v := range p.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[0], ".") {
			mounts[parts[1]] = parts[0]
			if _, err := os.Stat(filepath.Join("compose", parts[0])); err != nil {
				t.Errorf("prometheus mounts %s: %v", parts[0], err)
			}
		}
	}
	if mounts["/etc/prometheus/prometheus.yml"] != "../prometheus/prometheus.yml" || mounts["/etc/prometheus/alerts.yml"] != "../prometheus/alerts.yml" {
		t.Errorf("prometheus mounts %v, want deploy/prometheus/prometheus.yml and alerts.yml in /etc/prometheus", mounts)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/prometheus/prometheus.yml"), &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml rule_files %v, want alerts.yml", cfg.RuleFiles)
	}
	targets := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[sc.JobName] = tg
			}
		}
	}
	// Alert rules select on these job names.
	want := map[string]string{"orderflow-api": "api:8000", "orderflow-processor": "processor:9090"}
	if !mapsEqual(targets, want) {
		t.Errorf("scrape targets %v, want %v", targets, want)
	}
	rules := string(readFile(t, "deploy/prometheus/alerts.yml"))
	for job := range want {
		if !strings.Contains(rules, job) && !strings.Contains(rules, `job=~"orderflow-.*"`) {
			t.Errorf("no alert watches job %s", job)
		}
	}
}

func TestComposeGrafanaIsProvisionedWithTheDashboard(t *testing.T) {
	svcs := loadCompose(t)
	g := svcs["grafana"]
	mounts := map[string]string{}
	for _, v := range g.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[0], ".") {
			mounts[parts[1]] = parts[0]
		}
	}
	if mounts["/etc/grafana/provisioning"] != "../grafana/provisioning" {
		t.Errorf("grafana mounts %v, want ../grafana/provisioning at /etc/grafana/provisioning", mounts)
	}
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/grafana/provisioning/datasources/prometheus.yml"), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("datasources %+v, want the compose Prometheus at http://prometheus:9090", ds.Datasources)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/grafana/provisioning/dashboards/orderflow.yml"), &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 {
		t.Fatalf("want one dashboard provider, got %+v", prov.Providers)
	}
	path := prov.Providers[0].Options.Path
	if mounts[path] != "../grafana/dashboards" {
		t.Errorf("the dashboard provider reads %s, but grafana mounts %v", path, mounts)
	}
	d := loadDashboard(t)
	if d.UID != "orderflow" || len(d.Panels) < 5 {
		t.Errorf("dashboard uid %q with %d panels, want uid orderflow and the panels", d.UID, len(d.Panels))
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Query == "prometheus" {
			dsVar = true
		}
	}
	if !dsVar {
		t.Error("the dashboard needs a datasource variable of type prometheus")
	}
	if home := g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != path+"/orderflow.json" {
		t.Errorf("home dashboard %q, want %s/orderflow.json", home, path)
	}
}

// dashboard is the part of the Grafana dashboard JSON the tests read.
type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, "deploy/grafana/dashboards/orderflow.json"), &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	return d
}

// collectorConfig is the part of an OpenTelemetry Collector configuration
// the tests read.
type collectorConfig struct {
	Receivers  map[string]map[string]any `yaml:"receivers"`
	Processors map[string]any            `yaml:"processors"`
	Exporters  map[string]map[string]any `yaml:"exporters"`
	Extensions map[string]any            `yaml:"extensions"`
	Service    struct {
		Extensions []string `yaml:"extensions"`
		Pipelines  map[string]struct {
			Receivers, Processors, Exporters []string
		} `yaml:"pipelines"`
	} `yaml:"service"`
}

// The api and the processor export their traces to the collector, whose
// configuration is whole (every name a pipeline uses is defined) and
// forwards them to Jaeger, which Grafana has as a data source.
func TestComposeTracesGoThroughTheCollectorToJaeger(t *testing.T) {
	svcs := loadCompose(t)
	col := svcs["otel-collector"]
	if !strings.HasPrefix(interpolate(col.Image), "otel/opentelemetry-collector-contrib:") {
		t.Errorf("collector image %q, want otel/opentelemetry-collector-contrib", col.Image)
	}
	config, ok := strings.CutPrefix(strings.Join(col.Command, " "), "--config=")
	if !ok || !slices.Contains(col.Volumes, "../otel/collector.yaml:"+config+":ro") {
		t.Fatalf("collector runs %v with volumes %v, want --config= the mounted deploy/otel/collector.yaml", col.Command, col.Volumes)
	}
	var cfg collectorConfig
	if err := yaml.Unmarshal(readFile(t, "deploy/otel/collector.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	traces, ok := cfg.Service.Pipelines["traces"]
	if !ok || len(traces.Receivers) == 0 || len(traces.Exporters) == 0 {
		t.Fatalf("collector pipelines %+v, want a traces pipeline with receivers and exporters", cfg.Service.Pipelines)
	}
	for name, p := range cfg.Service.Pipelines {
		for _, r := range p.Receivers {
			if _, ok := cfg.Receivers[r]; !ok {
				t.Errorf("pipeline %s uses receiver %q, which is not defined", name, r)
			}
		}
		for _, pr := range p.Processors {
			if _, ok := cfg.Processors[pr]; !ok {
				t.Errorf("pipeline %s uses processor %q, which is not defined", name, pr)
			}
		}
		for _, e := range p.Exporters {
			if _, ok := cfg.Exporters[e]; !ok {
				t.Errorf("pipeline %s uses exporter %q, which is not defined", name, e)
			}
		}
	}
	for _, e := range cfg.Service.Extensions {
		if _, ok := cfg.Extensions[e]; !ok {
			t.Errorf("service uses extension %q, which is not defined", e)
		}
	}

	// The apps' endpoint is the collector's OTLP/HTTP receiver.
	httpPort := ""
	for _, r := range traces.Receivers {
		protocols, _ := cfg.Receivers[r]["protocols"].(map[string]any)
		if h, ok := protocols["http"].(map[string]any); ok {
			_, httpPort, _ = strings.Cut(fmt.Sprint(h["endpoint"]), ":")
		}
	}
	for _, name := range []string{"api", "processor"} {
		ep := svcs[name].Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
		u, err := url.Parse(ep)
		if err != nil || u.Hostname() != "otel-collector" || u.Port() != httpPort || httpPort == "" {
			t.Errorf("%s OTEL_EXPORTER_OTLP_ENDPOINT %q, want the collector's OTLP/HTTP receiver http://otel-collector:%s", name, ep, httpPort)
		}
		if svcs[name].dependsOn()["otel-collector"] == "" {
			t.Errorf("%s does not depend on otel-collector", name)
		}
	}

	// The collector forwards to the jaeger service's OTLP port.
	var toJaeger bool
	for _, e := range traces.Exporters {
		if host, port, _ := strings.Cut(fmt.Sprint(cfg.Exporters[e]["endpoint"]), ":"); host == "jaeger" && port == "4317" {
			toJaeger = true
		}
	}
	if !toJaeger {
		t.Errorf("the traces pipeline exports to %v, none to jaeger:4317", traces.Exporters)
	}
	jaeger := svcs["jaeger"]
	if !strings.HasPrefix(interpolate(jaeger.Image), "jaegertracing/jaeger:") || !slices.Contains(jaeger.Ports, "16686:16686") {
		t.Errorf("jaeger image %q ports %v, want jaegertracing/jaeger with its UI on 16686", jaeger.Image, jaeger.Ports)
	}

	// Grafana reads Jaeger.
	var ds struct {
		Datasources []struct{ UID, Type, URL string } `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/grafana/provisioning/datasources/jaeger.yml"), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "jaeger" || ds.Datasources[0].URL != "http://jaeger:16686" {
		t.Errorf("datasources %+v, want the compose Jaeger at http://jaeger:16686", ds.Datasources)
	}
	if svcs["grafana"].dependsOn()["jaeger"] == "" {
		t.Error("grafana does not depend on jaeger")
	}
}

// The embedded mode's compose file keeps the database on a named volume at
// the image's /data and replicates it: serve with ORDERFLOW_DB on the
// volume and ORDERFLOW_REPLICA_URL required, every variable a setting.
func TestComposeEmbeddedKeepsTheDatabaseOnAVolumeAndReplicatesIt(t *testing.T) {
	var f struct {
		Services map[string]composeService `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/compose/embedded.yaml"), &f); err != nil {
		t.Fatal(err)
	}
	s, ok := f.Services["orderflow"]
	if !ok || len(f.Services) != 1 {
		t.Fatalf("want one service, orderflow; got %v", sortedKeys(f.Services))
	}
	if len(s.Command) != 1 || s.Command[0] != "serve" {
		t.Errorf("orderflow runs %v, want serve", s.Command)
	}
	settings := appSettings(t)
	for k := range s.Environment {
		if _, ok := settings[k]; !ok && k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY" {
			t.Errorf("it sets %s, which is no orderflow setting (cmd/orderflow/config.go)", k)
		}
	}
	db := s.Environment["ORDERFLOW_DB"]
	mounted := false
	for _, v := range s.Volumes {
		name, target, _ := strings.Cut(v, ":")
		if _, named := f.Volumes[name]; named && strings.HasPrefix(db, strings.TrimSuffix(target, "/")+"/") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("ORDERFLOW_DB %s is on none of the named volumes %v", db, s.Volumes)
	}
	if r := s.Environment["ORDERFLOW_REPLICA_URL"]; !strings.Contains(r, ":?") {
		t.Errorf("ORDERFLOW_REPLICA_URL = %q, want it required (${ORDERFLOW_REPLICA_URL:?...})", r)
	}
}
