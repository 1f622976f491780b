package check

import "testing"

// Every kustomization of deploy/k8s builds, with every component.
func TestEveryOverlayBuilds(t *testing.T) {
	builds := buildAll(t, k8sDir)
	for name, objs := range builds {
		if len(objs) == 0 {
			t.Errorf("%s renders nothing", name)
		}
	}
	t.Logf("built %d kustomizations", len(builds))
}
