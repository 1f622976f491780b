# The rules for orderflow's Argo CD objects (deploy/k8s/argocd), checked by
# deploy/check's TestArgoCDPolicies; with conftest: `kustomize build
# deploy/k8s/argocd | conftest test --combine -n orderflow.argocd -p
# deploy/k8s/policy -`. input as in orderflow.rego; deny holds one message
# per breach. An ApplicationSet's template is held to the rules of an
# Application.
package orderflow.argocd

import rego.v1

objects := [o | some x in input; some o in docs(x)]

docs(x) := x.contents if is_array(x.contents)

docs(x) := [x.contents] if is_object(x.contents)

docs(x) := [x] if {
	not x.contents
	x.kind
}

projects := {p.metadata.name: p | some p in objects; p.kind == "AppProject"}

# apps are the Applications, each as {name, spec}: the Applications and the
# templates of the ApplicationSets.
apps contains {"name": sprintf("Application %s", [a.metadata.name]), "spec": a.spec} if {
	some a in objects
	a.kind == "Application"
}

apps contains {"name": sprintf("ApplicationSet %s's template", [s.metadata.name]), "spec": s.spec.template.spec} if {
	some s in objects
	s.kind == "ApplicationSet"
}

# Every Application belongs to a project of its own (never "default", which
# may deploy anything anywhere), defined here.
deny contains msg if {
	some a in apps
	not projects[a.spec.project]
	msg := sprintf("%s is in project %q, not one defined beside it", [a.name, a.spec.project])
}

# A project fences its sources and destinations: no wildcard repository, no
# wildcard namespace.
deny contains msg if {
	some name, p in projects
	some r in p.spec.sourceRepos
	contains(r, "*")
	msg := sprintf("AppProject %s allows any repository (%q)", [name, r])
}

deny contains msg if {
	some name, p in projects
	some d in p.spec.destinations
	contains(object.get(d, "namespace", "*"), "*")
	msg := sprintf("AppProject %s allows any namespace on %v", [name, object.get(d, "name", object.get(d, "server", ""))])
}

deny contains msg if {
	some a in apps
	p := projects[a.spec.project]
	not a.spec.source.repoURL in p.spec.sourceRepos
	msg := sprintf("%s syncs from %s, which project %s does not allow", [a.name, a.spec.source.repoURL, a.spec.project])
}

deny contains msg if {
	some a in apps
	p := projects[a.spec.project]
	every d in p.spec.destinations {
		d.namespace != a.spec.destination.namespace
	}
	msg := sprintf("%s deploys into namespace %s, which project %s does not allow", [a.name, a.spec.destination.namespace, a.spec.project])
}

# GitOps: git is the truth. Sync on every change, delete what git no longer
# holds, undo changes made by hand.
deny contains msg if {
	some a in apps
	not a.spec.syncPolicy.automated.prune == true
	msg := sprintf("%s does not prune (syncPolicy.automated.prune)", [a.name])
}

deny contains msg if {
	some a in apps
	not a.spec.syncPolicy.automated.selfHeal == true
	msg := sprintf("%s does not self-heal (syncPolicy.automated.selfHeal)", [a.name])
}

deny contains msg if {
	some a in apps
	not "CreateNamespace=true" in object.get(a.spec.syncPolicy, "syncOptions", [])
	msg := sprintf("%s does not create its namespace (syncOptions CreateNamespace=true)", [a.name])
}

# A failed sync (a webhook not ready yet, a CRD still being installed) is
# retried, backing off, a bounded number of times.
deny contains msg if {
	some a in apps
	not a.spec.syncPolicy.retry.backoff.duration
	msg := sprintf("%s retries a failed sync without backoff (syncPolicy.retry.backoff)", [a.name])
}

deny contains msg if {
	some a in apps
	not to_number(object.get(a.spec.syncPolicy, ["retry", "limit"], 0)) > 0
	msg := sprintf("%s does not retry a failed sync (syncPolicy.retry.limit)", [a.name])
}

deny contains msg if {
	some a in apps
	to_number(object.get(a.spec.syncPolicy, ["retry", "backoff", "factor"], 2)) < 2
	msg := sprintf("%s retries without backing off (syncPolicy.retry.backoff.factor below 2)", [a.name])
}

# A tracked branch or tag, never whatever HEAD happens to be.
deny contains msg if {
	some a in apps
	object.get(a.spec.source, "targetRevision", "HEAD") == "HEAD"
	msg := sprintf("%s follows HEAD, not a named branch or tag", [a.name])
}
