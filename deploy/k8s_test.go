package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const k8sDir = "k8s"

// k8sObject is the part of a Kubernetes manifest the tests read.
type k8sObject struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int           `yaml:"replicas"`
		Selector map[string]any `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		Metrics     []struct {
			Resource struct {
				Name   string `yaml:"name"`
				Target struct {
					AverageUtilization int `yaml:"averageUtilization"`
				} `yaml:"target"`
			} `yaml:"resource"`
		} `yaml:"metrics"`
		Ports []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPodSpec struct {
	ServiceAccountName            string `yaml:"serviceAccountName"`
	TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	TopologySpreadConstraints []struct {
		TopologyKey string `yaml:"topologyKey"`
	} `yaml:"topologySpreadConstraints"`
	Containers []k8sContainer `yaml:"containers"`
	Volumes    []struct {
		Name   string `yaml:"name"`
		Secret struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	LivenessProbe  k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// loadK8s parses every document of every manifest in deploy/k8s except the
// kustomization, and returns the objects by kind and name.
func loadK8s(t *testing.T) map[string]map[string]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]map[string]k8sObject{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(src))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" {
				continue
			}
			o.file = filepath.Base(f)
			if o.APIVersion == "" || o.Metadata.Name == "" {
				t.Errorf("%s: %s without apiVersion or metadata.name", f, o.Kind)
			}
			if objs[o.Kind] == nil {
				objs[o.Kind] = map[string]k8sObject{}
			}
			if _, dup := objs[o.Kind][o.Metadata.Name]; dup {
				t.Errorf("%s: %s %s defined twice", f, o.Kind, o.Metadata.Name)
			}
			objs[o.Kind][o.Metadata.Name] = o
		}
	}
	for _, role := range []string{"api", "processor"} {
		if _, ok := objs["Deployment"]["orderflow-"+role]; !ok {
			t.Fatalf("no Deployment orderflow-%s in %s (have %v)", role, k8sDir, sortedKeys(objs["Deployment"]))
		}
	}
	return objs
}

// k8sRoles maps each Deployment to the subcommand it runs and the setting
// whose default address it must listen on.
var k8sRoles = map[string]struct{ cmd, addr string }{
	"orderflow-api":       {"api", "ORDERFLOW_API_ADDR"},
	"orderflow-processor": {"processor", "ORDERFLOW_PROCESSOR_ADDR"},
}

// secretSettings returns the settings read through cmd/orderflow/config.go's
// p.secret, which also accept NAME_FILE.
func secretSettings(t *testing.T, settings map[string]string) map[string]bool {
	t.Helper()
	src := string(readFile(t, "cmd/orderflow/config.go"))
	out := map[string]bool{}
	for name := range settings {
		if strings.Contains(src, `p.secret("`+name+`")`) {
			out[name] = true
		}
	}
	if !out["JWT_SECRET"] || !out["ORDERFLOW_URL_SIGNING_KEY"] {
		t.Fatalf("found secret settings %v in cmd/orderflow/config.go, want JWT_SECRET and ORDERFLOW_URL_SIGNING_KEY", sortedKeys(out))
	}
	return out
}

func defaultPort(t *testing.T, settings map[string]string, name string) int {
	t.Helper()
	addr := settings[name]
	i := strings.LastIndex(addr, ":")
	p, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("%s default %q has no port", name, addr)
	}
	return p
}

func TestK8sKustomizationListsEveryManifest(t *testing.T) {
	var k struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/k8s/kustomization.yaml"), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && e.Name() != "kustomization.yaml" && (path.Ext(e.Name()) == ".yaml" || path.Ext(e.Name()) == ".yml") {
			files = append(files, e.Name())
		}
	}
	listed := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(listed, files) {
		t.Errorf("kustomization.yaml resources %v, want exactly the manifests in deploy/k8s %v", listed, files)
	}
	objs := loadK8s(t)
	if _, ok := objs["Namespace"][k.Namespace]; !ok || k.Namespace == "" {
		t.Errorf("kustomization namespace %q is not a Namespace of the manifests", k.Namespace)
	}
	for kind, byName := range objs {
		for name, o := range byName {
			if kind != "Namespace" && o.Metadata.Namespace != k.Namespace {
				t.Errorf("%s: %s %s in namespace %q, want %q", o.file, kind, name, o.Metadata.Namespace, k.Namespace)
			}
		}
	}
}

func TestK8sDeploymentsUseTheBinarysCommandsSettingsAndSecrets(t *testing.T) {
	objs := loadK8s(t)
	cmds := subcommands(t)
	settings := appSettings(t)
	secrets := secretSettings(t, settings)
	cm, ok := objs["ConfigMap"]["orderflow-config"]
	if !ok {
		t.Fatal("no ConfigMap orderflow-config")
	}
	for k := range cm.Data {
		if _, ok := settings[k]; !ok {
			t.Errorf("ConfigMap sets %s, which is no orderflow setting (cmd/orderflow/config.go)", k)
		}
	}
	for _, k := range []string{"ENV", "AWS_REGION", "SQS_QUEUE_URL", "SQS_DLQ_URL", "DDB_TABLE"} {
		if cm.Data[k] == "" {
			t.Errorf("ConfigMap misses %s", k)
		}
	}
	if cm.Data["ENV"] != "prod" {
		t.Errorf("ConfigMap ENV = %q, want prod", cm.Data["ENV"])
	}
	for _, k := range []string{"JWT_SECRET", "ORDERFLOW_URL_SIGNING_KEY", "ORDERFLOW_USERS_FILE"} {
		if _, ok := cm.Data[k]; ok {
			t.Errorf("ConfigMap carries the secret %s; it belongs in the Secret", k)
		}
	}
	// In AWS mode the queue's attributes (set by Terraform or orderflow
	// init) are the one home of its redelivery policy; the processor
	// reads them from the queue.
	for _, k := range []string{"ORDERFLOW_MAX_RECEIVES", "ORDERFLOW_VISIBILITY_TIMEOUT"} {
		if _, ok := cm.Data[k]; ok {
			t.Errorf("ConfigMap sets %s, a copy of the queue's own attribute (Terraform's RedrivePolicy and VisibilityTimeout)", k)
		}
	}
	for name, role := range k8sRoles {
		d := objs["Deployment"][name]
		ps := d.Spec.Template.Spec
		if len(ps.Containers) != 1 {
			t.Fatalf("%s has %d containers, want 1", name, len(ps.Containers))
		}
		c := ps.Containers[0]
		if len(c.Command) != 0 {
			t.Errorf("%s overrides the image's entrypoint with %v", name, c.Command)
		}
		if !slices.Equal(c.Args, []string{role.cmd}) || !cmds[c.Args[0]] {
			t.Errorf("%s runs %v, want [%s] (orderflow help lists %v)", name, c.Args, role.cmd, sortedKeys(cmds))
		}
		if !strings.HasPrefix(c.Image, "orderflow:") {
			t.Errorf("%s image %q, want the repository's orderflow image", name, c.Image)
		}
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef.Name != cm.Metadata.Name {
			t.Errorf("%s does not take its settings from ConfigMap %s", name, cm.Metadata.Name)
		}
		if _, ok := objs["ServiceAccount"][ps.ServiceAccountName]; !ok || ps.ServiceAccountName != name {
			t.Errorf("%s runs as ServiceAccount %q, want its own %s", name, ps.ServiceAccountName, name)
		}
		mounts := map[string]string{} // mount path → Secret name
		for _, m := range c.VolumeMounts {
			for _, v := range ps.Volumes {
				if v.Name == m.Name && v.Secret.SecretName != "" {
					mounts[m.MountPath] = v.Secret.SecretName
				}
			}
		}
		files := map[string]bool{}
		for _, e := range c.Env {
			_, isSetting := settings[e.Name]
			base, isFile := strings.CutSuffix(e.Name, "_FILE")
			if !isSetting && !(isFile && secrets[base]) {
				t.Errorf("%s sets %s, which is no orderflow setting nor the _FILE form of a secret one", name, e.Name)
			}
			if !isFile {
				if secrets[e.Name] {
					t.Errorf("%s sets the secret %s inline; use %s_FILE", name, e.Name, e.Name)
				}
				continue
			}
			files[e.Name] = true
			secret, ok := mounts[path.Dir(e.Value)]
			if !ok {
				t.Errorf("%s: %s=%s is not in a mounted Secret (mounts %v)", name, e.Name, e.Value, mounts)
				continue
			}
			s := objs["Secret"][secret]
			key := path.Base(e.Value)
			if _, has := s.StringData[key]; !has {
				if _, has := s.Data[key]; !has {
					t.Errorf("%s: %s=%s names no key of Secret %q", name, e.Name, e.Value, secret)
				}
			}
		}
		for _, want := range []string{"JWT_SECRET_FILE", "ORDERFLOW_URL_SIGNING_KEY_FILE", "ORDERFLOW_USERS_FILE"} {
			if !files[want] {
				t.Errorf("%s does not set %s", name, want)
			}
		}
	}
	for name := range objs["ServiceAccount"] {
		arn := objs["ServiceAccount"][name].Metadata.Annotations["eks.amazonaws.com/role-arn"]
		if !strings.HasPrefix(arn, "arn:aws:iam::") {
			t.Errorf("ServiceAccount %s has IRSA annotation %q, want an IAM role ARN", name, arn)
		}
	}
}

func TestK8sPortsProbesAndScrapeMatchTheBinarysDefaults(t *testing.T) {
	objs := loadK8s(t)
	settings := appSettings(t)
	for name, role := range k8sRoles {
		d := objs["Deployment"][name]
		c := d.Spec.Template.Spec.Containers[0]
		want := defaultPort(t, settings, role.addr)
		for _, e := range c.Env {
			if e.Name == role.addr {
				t.Errorf("%s overrides %s; the ports here assume its default %s", name, role.addr, settings[role.addr])
			}
		}
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != want {
			t.Fatalf("%s container ports %v, want only %d (%s default %s)", name, c.Ports, want, role.addr, settings[role.addr])
		}
		for probe, p := range map[string]k8sProbe{"/health": c.LivenessProbe, "/ready": c.ReadinessProbe} {
			if p.HTTPGet == nil {
				t.Errorf("%s has no httpGet probe for %s", name, probe)
				continue
			}
			port := strconv.Itoa(want)
			if got := strings.TrimSpace(toString(p.HTTPGet.Port)); p.HTTPGet.Path != probe || (got != port && got != c.Ports[0].Name) {
				t.Errorf("%s probes %s on port %v, want %s on %d", name, p.HTTPGet.Path, p.HTTPGet.Port, probe, want)
			}
		}
		ann := d.Spec.Template.Metadata.Annotations
		if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(want) || ann["prometheus.io/path"] != "/metrics" {
			t.Errorf("%s scrape annotations %v, want scrape=true port=%d path=/metrics", name, ann, want)
		}
		svc, ok := objs["Service"][name]
		if !ok || len(svc.Spec.Ports) == 0 {
			t.Errorf("no Service %s", name)
			continue
		}
		for _, p := range svc.Spec.Ports {
			if tp := toString(p.TargetPort); tp != c.Ports[0].Name && tp != strconv.Itoa(want) {
				t.Errorf("Service %s targets port %q, want %s (%d)", name, p.TargetPort, c.Ports[0].Name, want)
			}
		}
		if !selects(svc.selector(), d.Spec.Template.Metadata.Labels) {
			t.Errorf("Service %s selects %v, not the pods of Deployment %s", name, svc.selector(), name)
		}
	}
}

// selector returns the labels an object selects: spec.selector of a
// Service, spec.selector.matchLabels of a Deployment or PodDisruptionBudget.
func (o k8sObject) selector() map[string]string {
	m := o.Spec.Selector
	if o.Kind != "Service" {
		m, _ = m["matchLabels"].(map[string]any)
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = toString(v)
	}
	return out
}

// toString returns an int or string YAML value (an IntOrString) as text.
func toString(v any) string {
	switch v := v.(type) {
	case int:
		return strconv.Itoa(v)
	case string:
		return v
	}
	return ""
}

// selects reports whether every label of sel is on labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestK8sProcessorGetsTheDrainTimeoutPlusTenSeconds(t *testing.T) {
	objs := loadK8s(t)
	drain, err := time.ParseDuration(appSettings(t)["ORDERFLOW_DRAIN_TIMEOUT"])
	if err != nil {
		t.Fatalf("ORDERFLOW_DRAIN_TIMEOUT default: %v", err)
	}
	want := drain + 10*time.Second
	for name := range k8sRoles {
		g := objs["Deployment"][name].Spec.Template.Spec.TerminationGracePeriodSeconds
		if name == "orderflow-processor" && g == nil {
			t.Errorf("%s sets no terminationGracePeriodSeconds, want at least %v (drain %v + 10 s)", name, want, drain)
		}
		if name == "orderflow-processor" && g != nil && time.Duration(*g)*time.Second < want {
			t.Errorf("%s terminationGracePeriodSeconds %d, want at least %v (drain %v + 10 s)", name, *g, want, drain)
		}
		// The api's own shutdown takes up to 10 s; Kubernetes' default of 30 s covers it.
		if g != nil && *g < 30 {
			t.Errorf("%s terminationGracePeriodSeconds %d is below Kubernetes' default 30", name, *g)
		}
	}
}

func TestK8sPodsRunNonRootReadOnlyWithoutCapabilities(t *testing.T) {
	objs := loadK8s(t)
	for name := range k8sRoles {
		ps := objs["Deployment"][name].Spec.Template.Spec
		if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
			t.Errorf("%s pod securityContext lacks runAsNonRoot: true", name)
		}
		if u := ps.SecurityContext.RunAsUser; u == nil || *u == 0 {
			t.Errorf("%s pod runs as user %v, want the image's non-root 65532", name, u)
		}
		c := ps.Containers[0]
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", name)
		}
		if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
			t.Errorf("%s drops capabilities %v, want [ALL]", name, sc.Capabilities.Drop)
		}
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
			t.Errorf("%s resources %+v, want cpu and memory requests (the HPA needs the cpu one) and a memory limit", name, c.Resources)
		}
	}
}

func TestK8sDeploymentsAreSpreadScaledAndProtected(t *testing.T) {
	objs := loadK8s(t)
	for name := range k8sRoles {
		d := objs["Deployment"][name]
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("%s replicas %v, want at least 2", name, d.Spec.Replicas)
		}
		if !selects(d.selector(), d.Spec.Template.Metadata.Labels) {
			t.Errorf("%s selector %v does not match its pod labels %v", name, d.selector(), d.Spec.Template.Metadata.Labels)
		}
		zones := false
		for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
			zones = zones || c.TopologyKey == "topology.kubernetes.io/zone"
		}
		if !zones {
			t.Errorf("%s is not spread across zones (topologySpreadConstraints on topology.kubernetes.io/zone)", name)
		}
		for _, kind := range []string{"HorizontalPodAutoscaler", "PodDisruptionBudget"} {
			found := false
			for _, o := range objs[kind] {
				if kind == "HorizontalPodAutoscaler" && o.Spec.ScaleTargetRef.Kind == "Deployment" && o.Spec.ScaleTargetRef.Name == name {
					found = true
					if o.Spec.MinReplicas < 2 || len(o.Spec.Metrics) != 1 || o.Spec.Metrics[0].Resource.Name != "cpu" || o.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
						t.Errorf("HPA %s: minReplicas %d, metrics %+v; want at least 2 and cpu at 70%%", o.Metadata.Name, o.Spec.MinReplicas, o.Spec.Metrics)
					}
				}
				if kind == "PodDisruptionBudget" && selects(o.selector(), d.Spec.Template.Metadata.Labels) {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s for Deployment %s", kind, name)
			}
		}
	}
	for kind, byName := range objs {
		for n, o := range byName {
			switch kind {
			case "HorizontalPodAutoscaler":
				if _, ok := objs["Deployment"][o.Spec.ScaleTargetRef.Name]; !ok || o.Spec.ScaleTargetRef.Kind != "Deployment" {
					t.Errorf("HPA %s scales %s %s, which is no Deployment here", n, o.Spec.ScaleTargetRef.Kind, o.Spec.ScaleTargetRef.Name)
				}
			case "PodDisruptionBudget":
				if !matchesSomeDeployment(objs, o.selector()) {
					t.Errorf("PDB %s selects %v, the pods of no Deployment here", n, o.selector())
				}
			}
		}
	}
}

func matchesSomeDeployment(objs map[string]map[string]k8sObject, sel map[string]string) bool {
	for _, d := range objs["Deployment"] {
		if selects(sel, d.Spec.Template.Metadata.Labels) {
			return true
		}
	}
	return false
}
