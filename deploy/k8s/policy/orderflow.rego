# The rules the spec sets for orderflow's Kubernetes objects, checked on the
# rendered output of every overlay (deploy/check's TestPolicies; conftest
# reads the same file: `kustomize build overlays/prod-us-east-1 |
# conftest test --combine --namespace orderflow.k8s -p policy -`).
# input is the list of rendered objects, or conftest's --combine list of
# {path, contents} (contents one object or a list of them); deny holds one
# message per breach.
package orderflow.k8s

import rego.v1

objects := [o | some x in input; some o in docs(x)]

docs(x) := x.contents if is_array(x.contents)

docs(x) := [x.contents] if is_object(x.contents)

docs(x) := [x] if {
	not x.contents
	x.kind
}

deployments := [d | some d in objects; d.kind == "Deployment"]

pod(d) := d.spec.template.spec

# The spec: the api scales on CPU at 70 %; every CPU HPA aims at 70 %.
deny contains msg if {
	some h in objects
	h.kind == "HorizontalPodAutoscaler"
	some m in h.spec.metrics
	m.type == "Resource"
	m.resource.name == "cpu"
	m.resource.target.averageUtilization != 70
	msg := sprintf("HorizontalPodAutoscaler %s aims CPU at %v%%, the spec says 70%%", [h.metadata.name, m.resource.target.averageUtilization])
}

deny contains msg if {
	not api_cpu_hpa
	msg := "no HorizontalPodAutoscaler scales Deployment orderflow-api on CPU at 70%"
}

api_cpu_hpa if {
	some h in objects
	h.kind == "HorizontalPodAutoscaler"
	scales(h.spec.scaleTargetRef, "orderflow-api")
	some m in h.spec.metrics
	m.resource.name == "cpu"
	m.resource.target.averageUtilization == 70
}

# An autoscaler owns the replica count: a Deployment it scales sets none,
# or every apply would reset what the autoscaler chose.
autoscaled(name) if {
	some o in objects
	o.kind in {"HorizontalPodAutoscaler", "ScaledObject"}
	scales(o.spec.scaleTargetRef, name)
}

# A target scales Deployment name: the Deployment itself, or an Argo
# Rollouts Rollout whose pods are that Deployment's (workloadRef).
scales(ref, name) if {
	object.get(ref, "kind", "Deployment") == "Deployment"
	ref.name == name
}

scales(ref, name) if {
	ref.kind == "Rollout"
	some r in objects
	r.kind == "Rollout"
	r.metadata.name == ref.name
	r.spec.workloadRef.kind == "Deployment"
	r.spec.workloadRef.name == name
}

# A canary is judged: every Rollout's canary runs an analysis, on
# AnalysisTemplates that exist, and moves traffic on a route of a
# VirtualService that exists.
deny contains msg if {
	some r in objects
	r.kind == "Rollout"
	count(object.get(r.spec, ["strategy", "canary", "steps"], [])) == 0
	msg := sprintf("Rollout %s has no canary steps", [r.metadata.name])
}

deny contains msg if {
	some r in objects
	r.kind == "Rollout"
	count([s | some s in r.spec.strategy.canary.steps; s.analysis]) == 0
	msg := sprintf("Rollout %s promotes its canary with no analysis step", [r.metadata.name])
}

rollout_templates(r) := {t.templateName |
	some s in r.spec.strategy.canary.steps
	some t in s.analysis.templates
} | {t.templateName | some t in object.get(r.spec.strategy.canary, ["analysis", "templates"], [])}

deny contains msg if {
	some r in objects
	r.kind == "Rollout"
	some name in rollout_templates(r)
	count([a | some a in objects; a.kind == "AnalysisTemplate"; a.metadata.name == name]) == 0
	msg := sprintf("Rollout %s runs AnalysisTemplate %s, which is not there", [r.metadata.name, name])
}

deny contains msg if {
	some r in objects
	r.kind == "Rollout"
	vs := r.spec.strategy.canary.trafficRouting.istio.virtualService
	some route in vs.routes
	count([v | some v in objects; v.kind == "VirtualService"; v.metadata.name == vs.name; some h in v.spec.http; h.name == route]) == 0
	msg := sprintf("Rollout %s shifts traffic on route %s of VirtualService %s, which is not there", [r.metadata.name, route, vs.name])
}

deny contains msg if {
	some d in deployments
	autoscaled(d.metadata.name)
	d.spec.replicas
	msg := sprintf("Deployment %s sets replicas beside the autoscaler that owns them", [d.metadata.name])
}

deny contains msg if {
	some d in deployments
	not autoscaled(d.metadata.name)
	msg := sprintf("Deployment %s has no HorizontalPodAutoscaler or ScaledObject", [d.metadata.name])
}

# Every workload has a PodDisruptionBudget selecting its pods.
deny contains msg if {
	some d in deployments
	not has_pdb(d)
	msg := sprintf("Deployment %s has no PodDisruptionBudget selecting its pods", [d.metadata.name])
}

has_pdb(d) if {
	some p in objects
	p.kind == "PodDisruptionBudget"
	count(p.spec.selector.matchLabels) > 0
	every k, v in p.spec.selector.matchLabels {
		d.spec.template.metadata.labels[k] == v
	}
}

# Spread across zones (the spec: several zones).
deny contains msg if {
	some d in deployments
	not spread_on(d, "topology.kubernetes.io/zone")
	msg := sprintf("Deployment %s is not spread across zones (topologySpreadConstraints on topology.kubernetes.io/zone)", [d.metadata.name])
}

spread_on(d, key) if {
	some c in pod(d).topologySpreadConstraints
	c.topologyKey == key
}

# Non-root, read-only, no capabilities, seccomp, no API token.
deny contains msg if {
	some d in deployments
	not pod(d).securityContext.runAsNonRoot
	msg := sprintf("Deployment %s: the pod does not set runAsNonRoot: true", [d.metadata.name])
}

deny contains msg if {
	some d in deployments
	pod(d).securityContext.runAsUser == 0
	msg := sprintf("Deployment %s runs as root (runAsUser 0)", [d.metadata.name])
}

deny contains msg if {
	some d in deployments
	pod(d).securityContext.seccompProfile.type != "RuntimeDefault"
	msg := sprintf("Deployment %s: seccompProfile is not RuntimeDefault", [d.metadata.name])
}

deny contains msg if {
	some d in deployments
	pod(d).automountServiceAccountToken != false
	msg := sprintf("Deployment %s mounts the Kubernetes API token, which it does not use", [d.metadata.name])
}

deny contains msg if {
	some d in deployments
	some c in pod(d).containers
	not container_locked_down(c)
	msg := sprintf("Deployment %s: container %s must set allowPrivilegeEscalation false, readOnlyRootFilesystem true and drop ALL capabilities", [d.metadata.name, c.name])
}

container_locked_down(c) if {
	c.securityContext.allowPrivilegeEscalation == false
	c.securityContext.readOnlyRootFilesystem == true
	"ALL" in c.securityContext.capabilities.drop
}

# Images are released versions: a tag other than latest, or a digest.
deny contains msg if {
	some d in deployments
	some c in pod(d).containers
	not pinned(c.image)
	msg := sprintf("Deployment %s: container %s runs image %q, with no version (latest)", [d.metadata.name, c.name, c.image])
}

pinned(image) if contains(image, "@sha256:")

pinned(image) if {
	parts := split(image, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	not endswith(last, ":latest")
}

# TLS on every host that is served.
deny contains msg if {
	some i in objects
	i.kind == "Ingress"
	some r in i.spec.rules
	not tls_host(i, r.host)
	msg := sprintf("Ingress %s serves %s without TLS", [i.metadata.name, r.host])
}

tls_host(i, host) if {
	some t in i.spec.tls
	host in t.hosts
	t.secretName != ""
}

deny contains msg if {
	some i in objects
	i.kind == "Ingress"
	not i.metadata.annotations["cert-manager.io/cluster-issuer"]
	msg := sprintf("Ingress %s names no cert-manager ClusterIssuer", [i.metadata.name])
}

deny contains msg if {
	some g in objects
	g.kind == "Gateway"
	some s in g.spec.servers
	s.port.protocol == "HTTP"
	not s.tls.httpsRedirect
	msg := sprintf("Gateway %s serves plain HTTP on %v without redirecting to HTTPS", [g.metadata.name, s.port.number])
}

# No secret value comes from the repository: no Secret object, no secret
# setting in a ConfigMap or inline in an env (only its *_FILE form).
deny contains msg if {
	some s in objects
	s.kind == "Secret"
	msg := sprintf("Secret %s is applied from the repository; secrets come from Vault (or a Secret made outside it)", [s.metadata.name])
}

secret_name(n) if regex.match(`(SECRET|PASSWORD|TOKEN|SIGNING_KEY|PRIVATE_KEY|ACCESS_KEY)`, n)

deny contains msg if {
	some c in objects
	c.kind == "ConfigMap"
	some k, _ in c.data
	secret_name(k)
	not endswith(k, "_FILE")
	msg := sprintf("ConfigMap %s carries the secret %s", [c.metadata.name, k])
}

deny contains msg if {
	some d in deployments
	some c in pod(d).containers
	some e in c.env
	secret_name(e.name)
	not endswith(e.name, "_FILE")
	e.value
	msg := sprintf("Deployment %s: container %s sets the secret %s inline", [d.metadata.name, c.name, e.name])
}

# Nothing reaches the pods but what a policy lets in: a default deny, and
# each role's policy admits only its callers' namespaces (the api: the
# ingress controller and Prometheus; the processor: Prometheus).
allowed_sources := {
	"orderflow-api": {"ingress-nginx", "istio-system", "monitoring"},
	"orderflow-processor": {"monitoring"},
}

deny contains "no default-deny NetworkPolicy (podSelector {} with no ingress rule)" if {
	not default_deny
}

default_deny if {
	some n in objects
	n.kind == "NetworkPolicy"
	count(object.get(n.spec.podSelector, "matchLabels", {})) == 0
	"Ingress" in n.spec.policyTypes
	count(object.get(n.spec, "ingress", [])) == 0
}

deny contains msg if {
	some n in objects
	n.kind == "NetworkPolicy"
	app := n.spec.podSelector.matchLabels["app.kubernetes.io/name"]
	some rule in n.spec.ingress
	some from in rule.from
	ns := object.get(from, ["namespaceSelector", "matchLabels", "kubernetes.io/metadata.name"], "any namespace")
	not ns in allowed_sources[app]
	msg := sprintf("NetworkPolicy %s lets %s be reachable from %s", [n.metadata.name, app, ns])
}

deny contains msg if {
	some n in objects
	n.kind == "NetworkPolicy"
	some rule in n.spec.ingress
	some from in rule.from
	not from.podSelector
	msg := sprintf("NetworkPolicy %s admits every pod of a namespace, not its callers' pods", [n.metadata.name])
}

deny contains msg if {
	some d in deployments
	not network_policy_for(d.metadata.name)
	msg := sprintf("Deployment %s has no NetworkPolicy of its own", [d.metadata.name])
}

network_policy_for(name) if {
	some n in objects
	n.kind == "NetworkPolicy"
	n.spec.podSelector.matchLabels["app.kubernetes.io/name"] == name
}

# HSTS at the edge: NGINX sends it on every TLS host when it redirects http
# to https (its hsts option, on by default); an Istio route sets it itself.
deny contains msg if {
	some i in objects
	i.kind == "Ingress"
	object.get(i.metadata.annotations, "nginx.ingress.kubernetes.io/force-ssl-redirect", "false") != "true"
	msg := sprintf("Ingress %s does not force https (nginx.ingress.kubernetes.io/force-ssl-redirect)", [i.metadata.name])
}

deny contains msg if {
	some v in objects
	v.kind == "VirtualService"
	some route in v.spec.http
	not startswith(object.get(route, ["headers", "response", "set", "Strict-Transport-Security"], ""), "max-age=")
	msg := sprintf("VirtualService %s: route %v sets no Strict-Transport-Security", [v.metadata.name, object.get(route, "name", "")])
}

# A NetworkPolicy that selects no pod protects nothing, silently.
deny contains msg if {
	some n in objects
	n.kind == "NetworkPolicy"
	sel := object.get(n.spec.podSelector, "matchLabels", {})
	count(sel) > 0
	not selects_some_pods(sel)
	msg := sprintf("NetworkPolicy %s selects %v, the pods of no Deployment", [n.metadata.name, sel])
}

selects_some_pods(sel) if {
	some d in deployments
	every k, v in sel {
		d.spec.template.metadata.labels[k] == v
	}
}

# Argo CD's sync waves: what a pod reads (its settings, its secrets, the
# ServiceAccount its credentials come through) is applied before any
# workload, and the namespace before all of them.
wave(o) := to_number(object.get(o.metadata, ["annotations", "argocd.argoproj.io/sync-wave"], "0"))

workloads := [w | some w in objects; w.kind in {"Deployment", "Rollout"}]

deny contains msg if {
	some c in objects
	c.kind in {"ConfigMap", "Secret", "ServiceAccount", "TriggerAuthentication"}
	some w in workloads
	wave(c) >= wave(w)
	msg := sprintf("%s %s syncs in wave %v, not before %s %s (wave %v)", [c.kind, c.metadata.name, wave(c), w.kind, w.metadata.name, wave(w)])
}

deny contains msg if {
	some n in objects
	n.kind == "Namespace"
	some o in objects
	o.kind != "Namespace"
	wave(n) >= wave(o)
	msg := sprintf("Namespace %s syncs in wave %v, not before %s %s (wave %v)", [n.metadata.name, wave(n), o.kind, o.metadata.name, wave(o)])
}
